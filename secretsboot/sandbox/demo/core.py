"""``secretsboot demo``: the whole story on a local sandbox, in one command.

1. start the sandbox (HTTPS fakes of Kubernetes, Entra ID, IMDS, ARM and Key
   Vault, and a real OpenBao), all on 127.0.0.1;
   holding what the spec expects to exist already (``sandbox up --spec``);
2. seed the secret values a platform already has, through the stores' own APIs
   as ``secretsboot sandbox secret set`` does (random values, shown only as
   fingerprints);
3. ``provision`` the spec, unchanged, through the operator's endpoint overrides
   (``secretsboot sandbox env``), then plan again (nothing left to do);
4. run ``secretsboot fetch`` for each service the way its init container would:
   in a subprocess, with the service's own freshly minted service-account token,
   the environment the workload-identity webhook (or NMI, or the kubelet) gives
   the pod, and the ``fetch.yaml`` provision wrote into its ConfigMap; then show
   what each got (names and fingerprints) and check them against what was seeded;
5. show a denial: one service reaching for another's secret;
6. ``inject`` the services' Deployments, ``audit`` the result and write the HTML
   report;
7. say where everything is and stop the sandbox (``--keep`` keeps it up until
   Ctrl-C).

Any failed step stops the demo with an error naming the step (non-zero exit).
No secret value is ever printed: values are random and shown as ``sha256:...``.
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from secretsboot.errors import BadInputError, SecretsbootError, UnavailableError
from secretsboot.sandbox.demo.base import (
    DEFAULT_DIR,
    STEPS,
    TITLES,
    DemoResult,
    DemoStepFailed,
    Echo,
    find_example,
    patched_environ,
    write_private,
)
from secretsboot.sandbox.demo.pods import PodSteps
from secretsboot.secret import SecretValue
from secretsboot.spec import ServiceSpec, Spec, load_spec


class Demo(PodSteps):
    """One run of the demo. ``run()`` returns a :class:`DemoResult` or raises
    :class:`DemoStepFailed`."""

    def __init__(
        self,
        workdir: Path = DEFAULT_DIR,
        *,
        spec_path: Path | None = None,
        keep: bool = False,
        echo: Echo = print,
        wait_forever: Callable[[], None] | None = None,
    ) -> None:
        self.workdir = workdir.resolve()
        self.spec_path = spec_path or find_example()
        self.keep = keep
        self.echo = echo
        self.wait_forever = wait_forever
        self.sb: Any = None
        self.spec: Spec = load_spec(self.spec_path)
        self.seeded: dict[tuple[str, str], str] = {}  # (service, secret) -> fingerprint
        self.values: dict[str, SecretValue] = {}  # source uri -> value
        self.stem = self.spec_path.stem  # every output is named after the spec
        self.result = DemoResult(
            self.workdir, self.spec_path, self.workdir / f"{self.stem}.sandbox.env"
        )

    # -- driver ----------------------------------------------------------------------

    def run(self) -> DemoResult:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # the folder holds fetched secret values: keep it out of git, whatever the repo says
        (self.workdir / ".gitignore").write_text("# written by secretsboot demo\n*\n")
        shutil.rmtree(self.workdir / "pods", ignore_errors=True)  # no stale values from a last run
        self.echo(
            f"secretsboot demo: {self.spec.metadata.name} ({len(self.spec.services)} services) "
            "on a local sandbox: Kubernetes, Entra ID, IMDS, ARM and Key Vault fakes + OpenBao"
        )
        try:
            for number, name in enumerate(STEPS, 1):
                step: Callable[[], str] = getattr(self, f"_step_{name}")
                self.echo(f"[{number}/{len(STEPS)}] {name}: {TITLES[name]}")
                t0 = time.monotonic()
                try:
                    line = step()
                except SecretsbootError as exc:
                    self.echo(f"      FAILED: {exc}")
                    raise DemoStepFailed(name, exc) from exc
                except Exception as exc:  # a bug: name the step, then let main() report it
                    self.echo(f"      FAILED: {type(exc).__name__}: {str(exc)[:200]} (a bug)")
                    raise
                took = time.monotonic() - t0
                self.echo(f"      ok: {line} ({took:.1f} s)")
            self.result.seconds = time.monotonic() - started
            self._summary()
            if self.keep:
                self._keep_running()
        finally:
            if self.sb is not None:
                self.sb.stop()
                self.sb = None
                self.echo("sandbox stopped")
        return self.result

    # -- 1. sandbox --------------------------------------------------------------------

    def _step_sandbox(self) -> str:
        from secretsboot.sandbox import Sandbox
        from secretsboot.sandbox.seed import OPERATOR_FILE

        try:
            self.sb = Sandbox.start(self.workdir / "sandbox", spec=self.spec)
        except OSError as exc:
            raise UnavailableError(f"the sandbox did not start: {exc}") from None
        sb = self.sb
        hidden = {"VAULT_TOKEN", "AZURE_CLIENT_SECRET"}  # each read from its 0600 file
        lines = [
            f"export {k}={shlex.quote(v)}" for k, v in sorted(sb.env().items()) if k not in hidden
        ]
        if sb.vault is not None:
            lines.append(
                f'export VAULT_TOKEN="$(cat {shlex.quote(str(sb.vault.root_token_path))})"'
            )
        if sb.operator is not None:
            read = "import json,sys; print(json.load(open(sys.argv[1]))['client_secret'])"
            operator = shlex.quote(str(sb.state_dir / OPERATOR_FILE))
            lines.append(f'export AZURE_CLIENT_SECRET="$(python3 -c "{read}" {operator})"')
        write_private(self.result.sandbox_env_file, "\n".join(lines) + "\n")
        ends = ", ".join(
            f"{k} {v}" for k, v in sb.endpoints().items() if k in ("kubernetes", "openbao")
        )
        return f"up on 127.0.0.1: {ends}"

    # -- 2. seed -----------------------------------------------------------------------

    def _step_seed(self) -> str:
        """Every primary source gets a fresh random value, set through the store's own API
        as ``secretsboot sandbox secret set`` does; fallbacks are synced by provision."""
        from secretsboot.sandbox.operate import set_secret

        if self.spec.azure is None:
            raise BadInputError("the demo spec has no azure section")
        env = self.sb.env()
        for svc in self.spec.services:
            for s in svc.secrets:
                uri = str(s.source)
                value = self.values.get(uri)
                if value is None:
                    value = SecretValue(f"demo-{s.name}-{secrets.token_urlsafe(18)}")
                    self.values[uri] = value
                    set_secret(env, uri, value, namespace=svc.resolved_namespace(self.spec))
                self.seeded[(svc.name, s.name)] = value.fingerprint
        stores = sorted(
            {str(s.source).split("/")[2] for svc in self.spec.services for s in svc.secrets}
        )
        return (
            f"{len(self.values)} secret values in {', '.join(stores)} (the spec is used unchanged)"
        )

    # -- 3. provision ------------------------------------------------------------------

    def _provision_env(self) -> dict[str, str]:
        """What ``eval "$(secretsboot sandbox env)"`` gives the operator's shell."""
        return dict(self.sb.env())

    def _step_provision(self) -> str:
        from secretsboot.provision.apply import Options, Provisioner

        with patched_environ(self._provision_env()):
            with Provisioner.connect(self.spec, Options(sync_fallbacks=True)) as prov:
                plan = prov.plan()
                result = prov.apply(plan)
            with Provisioner.connect(self.spec, Options(sync_fallbacks=True)) as prov:
                again = prov.plan()
        by_system: dict[str, int] = {}
        for change in result.applied:
            by_system[change.key.system] = by_system.get(change.key.system, 0) + 1
        if again.has_changes:
            first = again.pending[0]
            raise UnavailableError(
                f"provision is not idempotent: a second plan still has {len(again.pending)} "
                f"change(s), e.g. {first.action.value} {first.key.system}:{first.key.kind}/"
                f"{first.key.name}",
                hint="run `secretsboot plan` against the sandbox to see them",
            )
        parts = ", ".join(f"{k} {v}" for k, v in sorted(by_system.items()))
        return f"{len(result.applied)} changes applied ({parts}); planned again: no changes"

    # -- 4. fetch ----------------------------------------------------------------------

    # -- 6. inject, 7. audit -------------------------------------------------------------

    def _step_inject(self) -> str:
        from secretsboot.inject import dump_documents, inject_documents

        docs = [app_deployment(self.spec, svc) for svc in self.spec.services]
        plain = self.workdir / "manifests" / f"{self.stem}.yaml"
        write_private(plain, dump_documents(docs), 0o644)
        result = inject_documents(docs, self.spec, with_config=True)
        skipped = [o for o in result.outcomes if o.action != "injected"]
        if skipped:
            raise UnavailableError(f"inject skipped {skipped[0].ref}: {skipped[0].reason}")
        injected = self.workdir / "manifests" / f"{self.stem}.injected.yaml"
        write_private(injected, dump_documents(result.documents), 0o644)
        self.result.injected_manifests = injected
        for o in result.outcomes:
            for w in o.warnings:
                self.echo(f"      note: {o.ref}: {w}")
        return f"{len(result.injected)} Deployments injected -> {injected}"

    def _step_audit(self) -> str:
        from secretsboot.audit.engine import audit_paths
        from secretsboot.audit.model import Severity
        from secretsboot.audit.report import render

        assert self.result.injected_manifests is not None  # noqa: S101
        result = audit_paths([self.result.injected_manifests])
        report = self.workdir / f"{self.stem}-audit.html"
        write_private(report, render(result, "html"), 0o644)
        self.result.report = report
        for w in result.workloads:
            ids = ", ".join(sorted(a.id for a in w.approaches)) or "none"
            self.echo(f"      {w.ref:<40} {ids}")
        counts: dict[str, int] = {}
        for f in result.findings:
            counts[f.severity.label] = counts.get(f.severity.label, 0) + 1
        high = [f for f in result.findings if f.severity >= Severity.HIGH]
        if high:
            f = high[0]
            raise UnavailableError(
                f"the injected manifests have {len(high)} high finding(s), e.g. {f.rule_id} "
                f"{f.evidence.object}: {f.message}"
            )
        found = ", ".join(f"{n} {label}" for label, n in sorted(counts.items())) or "none"
        return f"{len(result.workloads)} workloads, findings: {found}; no high -> {report}"

    # -- the end -----------------------------------------------------------------------

    def _summary(self) -> None:
        r = self.result
        self.echo("")
        self.echo(f"done in {r.seconds:.1f} s. Everything is under {r.workdir}:")
        self.echo(f"  the spec (unchanged)          {r.spec_path}")
        self.echo(f"  each pod's files              {r.workdir / 'pods'}/<service>/")
        self.echo(f"  manifests (plain, injected)   {r.workdir / 'manifests'}/")
        self.echo(f"  audit report (HTML)           {r.report}")
        self.echo(f"  sandbox environment           {r.sandbox_env_file}")

    def _keep_running(self) -> None:
        try:
            self.echo(
                "the sandbox keeps running (--keep): in another shell, "
                f"`. {self.result.sandbox_env_file}`; press Ctrl-C here to stop it"
            )
            if self.wait_forever is not None:
                self.wait_forever()
                return
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:  # Ctrl-C is how a kept sandbox is stopped: not an error
            self.echo("")


def app_deployment(spec: Spec, svc: ServiceSpec) -> dict[str, Any]:
    """The Deployment a team writes for ``svc`` before secretsboot (hardened, pinned)."""
    labels = {"app.kubernetes.io/name": svc.name, "app.kubernetes.io/part-of": spec.metadata.name}
    container: dict[str, Any] = {
        "name": svc.name,
        "image": f"ghcr.io/secretsboot-examples/{svc.name}:1.0.0",
        "ports": [{"name": "http", "containerPort": 8080}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if any(s.env for s in svc.secrets):
        container["command"] = ["dotnet", f"Fabrikam.DroneDelivery.{svc.name.title()}.dll"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": svc.name, "namespace": svc.resolved_namespace(spec), "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": svc.name}},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
        },
    }
