"""The demo's pod steps: fetch as each pod, the Kubernetes fallback, a denial.

Each pod is a subprocess running ``secretsboot fetch`` (or ``run``) with the
environment its cluster would give it: its own projected tokens, the
workload-identity webhook's variables (or NMI's IMDS), and the endpoint
overrides that send the spec's real-looking addresses to the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from secretsboot.contract import WI_CLIENT_ID_ANNOTATION, WORKLOAD_IDENTITY_AUDIENCE
from secretsboot.errors import BadInputError, DeniedError, UnavailableError
from secretsboot.inject import needs_service_account_token
from secretsboot.sandbox.demo.base import FETCH_TIMEOUT, DemoResult, Echo, Fetched, write_private
from secretsboot.secret import fingerprint
from secretsboot.spec import Delivery, Identity, ServiceSpec, Spec

#: What a pod's init container gets from the sandbox besides its identity: the CA and
#: the overrides that send the spec's endpoints to the sandbox (as DNS would).
ENDPOINT_OVERRIDES = ("AZURE_AUTHORITY_HOST", "VAULT_ADDR", "VAULT_CACERT")


class PodSteps:
    """Steps 4-6 of :class:`~secretsboot.sandbox.demo.core.Demo` (a mixin)."""

    sb: Any
    spec: Spec
    workdir: Path
    seeded: dict[tuple[str, str], str]
    result: DemoResult
    echo: Echo

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

            text = FetchConfig.from_spec(self.spec, svc.name).to_yaml()
        else:
            try:
                cm = self.sb.kube.store.get("configmaps", f"secretsboot-{svc.name}", ns)
            except Exception as exc:
                raise UnavailableError(
                    f"ConfigMap {ns}/secretsboot-{svc.name} was not provisioned ({exc})"
                ) from None
            text = cm["data"]["fetch.yaml"]
        write_private(path, text, 0o644)
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
        sandbox_env = sb.env()
        env.update({k: v for k, v in sandbox_env.items() if k in ENDPOINT_OVERRIDES})
        env.update({k: v for k, v in sandbox_env.items() if k.startswith("SECRETSBOOT_KEYVAULT_")})
        if needs_service_account_token(svc):
            # the folder inject projects into the init container (token, CA, namespace)
            sa_dir = pod / "serviceaccount"
            token = sb.kube.mint_token(
                ns, sa, audiences=list(sb.kube.app.api_audiences), expiration_seconds=600
            )
            write_private(sa_dir / "token", token)
            write_private(sa_dir / "ca.crt", sb.ca_path.read_text(encoding="utf-8"), 0o644)
            write_private(sa_dir / "namespace", ns, 0o644)
            env["SECRETSBOOT_SERVICEACCOUNT_DIR"] = str(sa_dir)
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            # what the azure-workload-identity webhook injects
            account = sb.kube.store.get("serviceaccounts", sa, ns)
            annotations = account["metadata"].get("annotations") or {}
            client_id = annotations.get(WI_CLIENT_ID_ANNOTATION)
            if not client_id:
                raise UnavailableError(
                    f"ServiceAccount {ns}/{sa} has no azure.workload.identity/client-id annotation"
                )
            wi_token = pod / "azure" / "azure-identity-token"
            wi_token_value = sb.kube.mint_token(ns, sa, [WORKLOAD_IDENTITY_AUDIENCE], 3600)
            write_private(wi_token, wi_token_value)
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
        write_private(config, yaml.safe_dump(cfg, sort_keys=False), 0o644)
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
        kv = self.spec.azure.key_vault(store) if self.spec.azure else None
        own["azure"]["keyVaults"][store] = (
            kv.vault_url if kv else f"https://{store}.vault.azure.net"
        )
        own["secrets"] = [{"name": target.name, "from": target.from_}]
        config = pod / "config" / "fetch.yaml"
        write_private(config, yaml.safe_dump(own, sort_keys=False), 0o644)
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
