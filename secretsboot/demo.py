"""``secretsboot demo``: the whole story on a local sandbox, in one command.

1. start the sandbox (HTTPS fakes of Kubernetes, Entra ID, IMDS, ARM and Key
   Vault, and a real OpenBao), all on 127.0.0.1;
2. seed what a platform already has: the Key Vaults and their secrets, the Vault
   KV data (random values, shown only as fingerprints);
3. ``provision`` the Drone Delivery spec pointed at the sandbox, then plan again
   (nothing left to do);
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

import contextlib
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotImplementedYetError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.inject import needs_service_account_token
from secretsboot.secret import SecretValue, fingerprint
from secretsboot.spec import Delivery, Identity, ServiceSpec, Spec, load_spec, load_spec_text

DEFAULT_DIR = Path(".secretsboot-demo")
EXAMPLE = Path("examples") / "drone-delivery.yaml"
FETCH_TIMEOUT = 60.0
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
STEPS = ("sandbox", "seed", "provision", "fetch", "fallback", "denial", "inject", "audit")
TITLES = {
    "sandbox": "start Kubernetes, Entra ID, IMDS, ARM and Key Vault fakes and OpenBao",
    "seed": "create the Key Vaults and the secret values a platform already has",
    "provision": "identities, federated credentials, grants, Vault roles, service accounts",
    "fetch": "each service's init container, as its pod runs it (own token, own identity)",
    "fallback": "Key Vault down: a secret comes from its Kubernetes Secret fallback",
    "denial": "one service reaching for another's secret",
    "inject": "add the init container to the services' Deployments",
    "audit": "classify how each workload gets its secrets, write the HTML report",
}

Echo = Callable[[str], None]


class DemoStepFailed(SecretsbootError):
    """A demo step failed; the message names the step. Exit code of the cause."""

    def __init__(self, step: str, cause: SecretsbootError) -> None:
        super().__init__(f"demo step '{step}' failed: {cause.message}", hint=cause.hint)
        self.step = step
        self.exit_code = cause.exit_code


def find_example(start: Path | None = None) -> Path:
    """``examples/drone-delivery.yaml`` in the current folder or the source checkout."""
    candidates = [(start or Path.cwd()) / EXAMPLE, Path(__file__).resolve().parents[1] / EXAMPLE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BadInputError(
        f"{EXAMPLE} not found (looked in {', '.join(str(c.parent.parent) for c in candidates)})",
        hint="run the demo from the repository root, or pass --spec",
    )


@dataclass
class Fetched:
    """What one service's pod got: per secret, where it landed and its fingerprint."""

    service: str
    identity: str
    rows: list[tuple[str, str, str, bool]] = field(default_factory=list)  # name, where, fp, ok
    seconds: float = 0.0


@dataclass
class DemoResult:
    workdir: Path
    spec_path: Path
    sandbox_env_file: Path
    fetched: list[Fetched] = field(default_factory=list)
    denial: str = ""
    injected_manifests: Path | None = None
    report: Path | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def _patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


class Demo:
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
        self.sandbox_spec: Spec | None = None
        self.seeded: dict[tuple[str, str], str] = {}  # (service, secret) -> fingerprint
        self.values: dict[str, SecretValue] = {}  # source uri -> value
        self.operator_env: dict[str, str] = {}
        self.result = DemoResult(
            self.workdir,
            self.workdir / f"{self.spec_path.stem}.sandbox.yaml",
            self.workdir / "sandbox.env",
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
                except ImportError as exc:
                    missing = getattr(exc, "name", None) or str(exc)
                    self.echo(f"      FAILED: cannot import {missing}")
                    raise DemoStepFailed(
                        name,
                        NotImplementedYetError(
                            f"{missing} is missing (is this step's module built yet?)",
                            hint="see the README's roadmap",
                        ),
                    ) from exc
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

        try:
            self.sb = Sandbox.start(self.workdir / "sandbox")
        except OSError as exc:
            raise UnavailableError(f"the sandbox did not start: {exc}") from None
        sb = self.sb
        env = sb.env()
        lines = [
            f"export {k}={shlex.quote(v)}" for k, v in sorted(env.items()) if k != "VAULT_TOKEN"
        ]
        if sb.vault is not None:
            lines.append(
                f'export VAULT_TOKEN="$(cat {shlex.quote(str(sb.vault.root_token_path))})"'
            )
        _write_private(self.result.sandbox_env_file, "\n".join(lines) + "\n")
        ends = ", ".join(
            f"{k} {v}" for k, v in sb.endpoints().items() if k in ("kubernetes", "openbao")
        )
        return f"up on 127.0.0.1: {ends}"

    # -- 2. seed -----------------------------------------------------------------------

    def _step_seed(self) -> str:
        sb = self.sb
        spec = self.spec
        if spec.azure is None:
            raise BadInputError("the demo spec has no azure section")
        for kv in spec.azure.key_vaults:
            sb.azure.create_keyvault(
                kv.name, mode=kv.mode.value, resource_group=spec.azure.resource_group
            )
        # every primary source gets a fresh random value; fallbacks are synced by provision
        vault_paths: dict[tuple[str, str], dict[str, str]] = {}
        for svc in spec.services:
            for s in svc.secrets:
                ref = s.source
                uri = str(ref)
                value = self.values.get(uri)
                if value is None:
                    value = SecretValue(f"demo-{s.name}-{secrets.token_urlsafe(18)}")
                    self.values[uri] = value
                    if ref.scheme == "keyvault":
                        sb.azure.set_secret(ref.store, ref.path, value)
                    elif ref.scheme == "vault":
                        vault_paths.setdefault((ref.store, ref.path), {})[ref.key or ""] = (
                            value.reveal()
                        )
                self.seeded[(svc.name, s.name)] = value.fingerprint
        client = sb.vault.client()
        try:
            for (mount, path), data in vault_paths.items():
                client.secrets.kv.v2.create_or_update_secret(
                    path=path, secret=data, mount_point=mount
                )
        finally:
            client.adapter.close()
        # the operator who runs provision: a service principal of the sandbox tenant
        operator_id = str(uuid.uuid4())
        operator_secret = secrets.token_urlsafe(24)
        operator_oid = sb.azure.add_service_principal(operator_id, operator_secret)
        # provision copies a primary value into each fallback Secret: the operator reads them
        for kv in spec.azure.key_vaults:
            if kv.mode.value == "rbac":
                sb.azure.assign_role(
                    sb.azure.vault_id(kv.name), operator_oid, KEY_VAULT_SECRETS_USER
                )
            else:
                sb.azure.add_access_policy(kv.name, operator_oid, ["get"])
        self.operator_env = {"AZURE_CLIENT_ID": operator_id, "AZURE_CLIENT_SECRET": operator_secret}
        self._write_sandbox_spec()
        modes = sorted({kv.mode.value for kv in spec.azure.key_vaults})
        return (
            f"{len(spec.azure.key_vaults)} Key Vaults ({', '.join(modes)}), "
            f"{len(self.values)} secret values, {len(vault_paths)} Vault path(s); "
            f"spec pointed at the sandbox: {self.result.spec_path}"
        )

    def _write_sandbox_spec(self) -> None:
        """The example spec with every endpoint replaced by the sandbox's."""
        sb = self.sb
        data = self.spec.model_dump(by_alias=True, exclude_none=True, mode="json")
        azure = data["azure"]
        azure["tenantId"] = sb.azure.tenant_id
        azure["subscriptionId"] = sb.azure.subscription_id
        azure["authorityHost"] = sb.azure.authority_host
        azure["oidcIssuer"] = sb.kube.oidc_issuer
        for kv in azure["keyVaults"]:
            kv["url"] = sb.azure.keyvault_url(kv["name"])
        if "vault" in data:
            data["vault"]["address"] = sb.vault.address
            if sb.vault.address.startswith("https://"):
                data["vault"]["caCert"] = str(sb.ca_path)
            kube_auth = data["vault"].get("auth", {}).get("kubernetes")
            if kube_auth is not None:
                kube_auth["host"] = sb.kube.url
        data["kubernetes"].pop("context", None)
        text = (
            "# Generated by `secretsboot demo`: the example spec pointed at the local sandbox.\n"
            + yaml.safe_dump(data, sort_keys=False)
        )
        _write_private(self.result.spec_path, text)
        self.sandbox_spec = load_spec_text(text, str(self.result.spec_path))

    # -- 3. provision ------------------------------------------------------------------

    def _provision_env(self) -> dict[str, str]:
        env = dict(self.sb.env())
        env.update(self.operator_env)
        env.pop("AZURE_FEDERATED_TOKEN_FILE", None)
        return env

    def _step_provision(self) -> str:
        from secretsboot.provision.apply import Options, Provisioner

        assert self.sandbox_spec is not None  # noqa: S101 - set by the seed step
        with _patched_environ(self._provision_env()):
            with Provisioner.connect(self.sandbox_spec, Options(sync_fallbacks=True)) as prov:
                plan = prov.plan()
                result = prov.apply(plan)
            with Provisioner.connect(self.sandbox_spec, Options(sync_fallbacks=True)) as prov:
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

    def _pod_dir(self, name: str) -> Path:
        path = self.workdir / "pods" / name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _config_for(self, svc: ServiceSpec, pod: Path) -> Path:
        """The fetch.yaml the pod mounts: the ConfigMap provision wrote (CSI: from the spec)."""
        ns = svc.resolved_namespace(self.spec)
        path = pod / "config" / "fetch.yaml"
        if svc.delivery is Delivery.CSI:
            from secretsboot.contract import FetchConfig

            assert self.sandbox_spec is not None  # noqa: S101
            text = FetchConfig.from_spec(self.sandbox_spec, svc.name).to_yaml()
        else:
            try:
                cm = self.sb.kube.store.get("configmaps", f"secretsboot-{svc.name}", ns)
            except Exception as exc:
                raise UnavailableError(
                    f"ConfigMap {ns}/secretsboot-{svc.name} was not provisioned ({exc})"
                ) from None
            text = cm["data"]["fetch.yaml"]
        _write_private(path, text, 0o644)
        return path

    def _pod_env(self, svc: ServiceSpec, pod: Path) -> dict[str, str]:
        """The environment the pod's init container sees, as the cluster would set it."""
        sb = self.sb
        ns = svc.resolved_namespace(self.spec)
        sa = svc.service_account_name
        ca = str(sb.ca_path)
        server = urlsplit(sb.kube.url)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(pod),
            "LANG": "C.UTF-8",
            "SSL_CERT_FILE": ca,  # the sandbox CA stands in for the public roots
            "KUBERNETES_SERVICE_HOST": server.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(server.port or 443),
        }
        if os.environ.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        if sb.vault is not None and sb.vault.address.startswith("http://"):
            env["SECRETSBOOT_INSECURE_ALLOW_HTTP"] = "1"  # until the sandbox's OpenBao has TLS
        if needs_service_account_token(svc):
            # the folder inject projects into the init container (token, CA, namespace)
            sa_dir = pod / "serviceaccount"
            token = sb.kube.mint_token(
                ns, sa, audiences=list(sb.kube.app.api_audiences), expiration_seconds=600
            )
            _write_private(sa_dir / "token", token)
            _write_private(sa_dir / "ca.crt", sb.ca_path.read_text(encoding="utf-8"), 0o644)
            _write_private(sa_dir / "namespace", ns, 0o644)
            env["SECRETSBOOT_SERVICEACCOUNT_DIR"] = str(sa_dir)
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            # what the azure-workload-identity webhook injects
            account = sb.kube.store.get("serviceaccounts", sa, ns)
            annotations = account["metadata"].get("annotations") or {}
            client_id = annotations.get("azure.workload.identity/client-id")
            if not client_id:
                raise UnavailableError(
                    f"ServiceAccount {ns}/{sa} has no azure.workload.identity/client-id annotation"
                )
            wi_token = pod / "azure" / "azure-identity-token"
            _write_private(wi_token, sb.kube.mint_token(ns, sa, expiration_seconds=3600))
            env.update(
                {
                    "AZURE_CLIENT_ID": client_id,
                    "AZURE_TENANT_ID": sb.azure.tenant_id,
                    "AZURE_FEDERATED_TOKEN_FILE": str(wi_token),
                    "AZURE_AUTHORITY_HOST": sb.azure.authority_host,
                }
            )
        elif svc.identity is Identity.POD_IDENTITY:
            # NMI: IMDS answers for the identity bound to the pod's aadpodidbinding label
            binding = self._pod_identity_client_id(svc)
            sb.azure.bind_pod_identity(binding, selector=svc.name)
            env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = sb.azure.imds_url
        return env

    def _pod_identity_client_id(self, svc: ServiceSpec) -> str:
        """The client id in the AzureIdentity provision created (what NMI reads)."""
        ns = svc.resolved_namespace(self.spec)
        try:
            found = self.sb.kube.store.get("azureidentities", svc.identity_name, ns)
        except Exception as exc:
            raise UnavailableError(
                f"AzureIdentity {ns}/{svc.identity_name} was not provisioned ({exc})"
            ) from None
        return str(found["spec"]["clientID"])

    def _fetch_cmd(self, config: Path, out: Path, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "secretsboot",
            "fetch",
            "--config",
            str(config),
            "--out",
            str(out),
            *extra,
        ]

    def _run(
        self, cmd: list[str], env: dict[str, str], what: str
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=FETCH_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise UnavailableError(f"{what} did not finish in {FETCH_TIMEOUT:.0f} s") from None

    def _step_fetch(self) -> str:
        for svc in self.spec.services:
            self.result.fetched.append(self._fetch_service(svc))
        width = max(len(s.name) for s in self.spec.services)
        for f in self.result.fetched:
            for name, where, fp, ok in f.rows:
                mark = "= seeded" if ok else "!= seeded"
                self.echo(
                    f"      {f.service:<{width}}  {f.identity:<23} {name:<24} {fp} {mark}  {where}"
                )
        total = sum(len(f.rows) for f in self.result.fetched)
        return f"{total} secrets fetched by {len(self.result.fetched)} pods, each as itself"

    def _fetch_service(self, svc: ServiceSpec) -> Fetched:
        pod = self._pod_dir(svc.name)
        config = self._config_for(svc, pod)
        env = self._pod_env(svc, pod)
        out = pod / "secrets"
        out.mkdir(exist_ok=True, mode=0o700)
        t0 = time.monotonic()
        if svc.identity is Identity.POD_IDENTITY:
            self.sb.azure.set_imds_caller(svc.name)
        try:
            done = self._run(self._fetch_cmd(config, out), env, f"fetch for {svc.name}")
        finally:
            if svc.identity is Identity.POD_IDENTITY:
                self.sb.azure.set_imds_caller(None)
        if done.returncode != 0:
            detail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise UnavailableError(
                f"`secretsboot fetch` for {svc.name} exited {done.returncode}: {detail}"
            )
        label = svc.identity.value if svc.identity is not Identity.NONE else "vault-kubernetes"
        if svc.delivery is Delivery.CSI:
            label += " (csi)"
        got = Fetched(svc.name, label, seconds=time.monotonic() - t0)
        env_only = []
        for s in svc.secrets:
            want = self.seeded[(svc.name, s.name)]
            if s.file_name is None:
                env_only.append(s)
                continue
            path = out / s.file_name
            if not path.is_file():
                raise UnavailableError(f"{svc.name}: {s.name} was not written to {path}")
            fp = fingerprint(path.read_bytes())
            mode = f"{path.stat().st_mode & 0o777:04o}"
            got.rows.append((s.name, f"{path} {mode}", fp, fp == want))
        if env_only:
            got.rows.extend(self._check_env(svc, config, env, env_only))
        bad = [r for r in got.rows if not r[3]]
        if bad:
            raise UnavailableError(f"{svc.name}: {bad[0][0]} does not match the seeded value")
        return got

    def _check_env(
        self, svc: ServiceSpec, config: Path, env: dict[str, str], secrets_: list[Any]
    ) -> list[tuple[str, str, str, bool]]:
        """``secretsboot run`` as the app's entrypoint: the child prints fingerprints only."""
        names = [s.env for s in secrets_]
        probe = (
            "import hashlib, json, os, sys; "
            "print(json.dumps({n: 'sha256:' + "
            "hashlib.sha256(os.environ[n].encode()).hexdigest()[:12] for n in sys.argv[1:]}))"
        )
        cmd = [
            sys.executable,
            "-m",
            "secretsboot",
            "run",
            "--config",
            str(config),
            "--",
            sys.executable,
            "-c",
            probe,
            *names,
        ]
        done = self._run(cmd, env, f"run for {svc.name}")
        if done.returncode != 0:
            detail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise UnavailableError(
                f"`secretsboot run` for {svc.name} exited {done.returncode}: {detail}"
            )
        seen = json.loads(done.stdout.strip().splitlines()[-1])
        rows = []
        for s in secrets_:
            fp = str(seen.get(s.env, "missing"))
            rows.append(
                (s.name, f"${s.env} (secretsboot run)", fp, fp == self.seeded[(svc.name, s.name)])
            )
        return rows

    # -- 5. fallback -------------------------------------------------------------------

    def _step_fallback(self) -> str:
        found = [
            (svc, s)
            for svc in self.spec.services
            for s in svc.secrets
            if s.source.scheme == "keyvault" and any(r.scheme == "k8s" for r in s.sources[1:])
        ]
        if not found:
            return "no secret of the spec has a Kubernetes Secret fallback: nothing to show"
        svc, secret = found[0]
        pod = self._pod_dir(f"{svc.name}-fallback")
        cfg = yaml.safe_load(self._config_for(svc, pod).read_text(encoding="utf-8"))
        cfg["secrets"] = [e for e in cfg["secrets"] if e.get("name") == secret.name]
        config = pod / "config" / "fetch.yaml"
        _write_private(config, yaml.safe_dump(cfg, sort_keys=False), 0o644)
        env = self._pod_env(svc, pod)
        out = pod / "secrets"
        out.mkdir(exist_ok=True, mode=0o700)
        faults = self.sb.azure.faults("keyvault")
        faults.stop()  # every vault refuses connections
        try:
            done = self._run(
                self._fetch_cmd(config, out, "--timeout", "30"), env, "the fallback fetch"
            )
        finally:
            faults.start()
        if done.returncode != 0:
            detail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise UnavailableError(f"the fallback fetch exited {done.returncode}: {detail}")
        path = out / (secret.file_name or secret.name)
        fp = fingerprint(path.read_bytes())
        if fp != self.seeded[(svc.name, secret.name)]:
            raise UnavailableError(f"{svc.name}: the fallback value of {secret.name} differs")
        fallback = next(str(r) for r in secret.sources[1:] if r.scheme == "k8s")
        self.echo(
            f"      {svc.name}: {secret.name} <- {fallback} (read with the pod's own token, "
            f"Role scoped by resourceNames) {fp} = seeded"
        )
        return f"{svc.name} started with Key Vault unreachable"

    # -- 6. denial ---------------------------------------------------------------------

    def _denial_pair(self) -> tuple[ServiceSpec, ServiceSpec, Any]:
        """A workload-identity service and another's Key Vault secret in a vault it cannot use
        (an RBAC-mode vault when there is one: the common case)."""
        assert self.spec.azure is not None  # noqa: S101 - checked by the seed step
        candidates: list[tuple[bool, ServiceSpec, ServiceSpec, Any]] = []
        for thief in self.spec.services:
            if thief.identity is not Identity.WORKLOAD_IDENTITY or thief.delivery is Delivery.CSI:
                continue
            own = {r.store for s in thief.secrets for r in s.sources if r.scheme == "keyvault"}
            for victim in self.spec.services:
                for secret in victim.secrets if own and victim is not thief else []:
                    ref = secret.source
                    if ref.scheme == "keyvault" and ref.store not in own:
                        kv = self.spec.azure.key_vault(ref.store)
                        rbac = kv is not None and kv.mode.value == "rbac"
                        candidates.append((not rbac, thief, victim, secret))
        if not candidates:
            raise BadInputError(
                "the spec has no service whose Key Vault another workload-identity service "
                "cannot use, so there is no denial to show",
                hint="run the demo on examples/drone-delivery.yaml",
            )
        _, thief, victim, secret = min(candidates, key=lambda c: c[0])
        return thief, victim, secret

    def _step_denial(self) -> str:
        thief, victim, target = self._denial_pair()
        pod = self._pod_dir(f"{thief.name}-denied")
        own = yaml.safe_load(self._config_for(thief, pod).read_text(encoding="utf-8"))
        store = target.source.store
        own["azure"]["keyVaults"][store] = self.sb.azure.keyvault_url(store)
        own["secrets"] = [{"name": target.name, "from": target.from_}]
        config = pod / "config" / "fetch.yaml"
        _write_private(config, yaml.safe_dump(own, sort_keys=False), 0o644)
        env = self._pod_env(thief, pod)
        out = pod / "secrets"
        out.mkdir(exist_ok=True, mode=0o700)
        done = self._run(
            self._fetch_cmd(config, out, "--propagation-window", "0"), env, "the denial fetch"
        )
        if done.returncode == 0:
            raise UnavailableError(
                f"{thief.name} read {victim.name}'s {target.from_}: isolation is broken"
            )
        if done.returncode != int(DeniedError.exit_code):
            detail = " | ".join(done.stderr.strip().splitlines()[-2:])
            raise UnavailableError(
                f"the denial fetch failed for another reason (exit {done.returncode}): {detail}"
            )
        if any(out.iterdir()):
            raise UnavailableError("the denied fetch left files behind")
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "denied"
        self.result.denial = reason
        self.echo(
            f"      {thief.name} -> {victim.name}'s {target.from_}: exit {done.returncode} "
            "(denied), nothing written"
        )
        self.echo(f"      {reason}")
        return f"{thief.name} cannot read {victim.name}'s secret"

    # -- 6. inject, 7. audit -------------------------------------------------------------

    def _step_inject(self) -> str:
        from secretsboot.inject import dump_documents, inject_documents

        docs = [app_deployment(self.spec, svc) for svc in self.spec.services]
        plain = self.workdir / "manifests" / "drone-delivery.yaml"
        _write_private(plain, dump_documents(docs), 0o644)
        result = inject_documents(docs, self.spec, with_config=True)
        skipped = [o for o in result.outcomes if o.action != "injected"]
        if skipped:
            raise UnavailableError(f"inject skipped {skipped[0].ref}: {skipped[0].reason}")
        injected = self.workdir / "manifests" / "drone-delivery.injected.yaml"
        _write_private(injected, dump_documents(result.documents), 0o644)
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
        report = self.workdir / "audit-report.html"
        _write_private(report, render(result, "html"), 0o644)
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
        self.echo(f"  spec pointed at the sandbox  {r.spec_path}")
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
