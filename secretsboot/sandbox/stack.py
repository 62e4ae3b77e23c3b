"""The whole sandbox: one CA, the Kubernetes fake, the Azure fakes and OpenBao.

In process (tests)::

    with Sandbox.start(tmp_path, components=("kubernetes", "openbao")) as sb:
        os.environ.update(sb.env())

In the background (the CLI): ``python -m secretsboot.sandbox.stack serve --dir D``
runs the same stack until SIGTERM and writes ``D/state.json`` once every
component is healthy (see :mod:`secretsboot.cli.sandbox`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secretsboot._fs import atomic_write_text
from secretsboot.errors import BadInputError
from secretsboot.sandbox import seed
from secretsboot.sandbox._http import FakeServer, Faults
from secretsboot.sandbox._running import Running
from secretsboot.sandbox.kube import KubeFake
from secretsboot.sandbox.openbao import OpenBao
from secretsboot.sandbox.pki import CertificateAuthority
from secretsboot.sandbox.vaultfront import VaultFront

if TYPE_CHECKING:
    from secretsboot.sandbox.azure import AzureFakes
    from secretsboot.spec import Spec

log = logging.getLogger(__name__)

COMPONENTS = ("kubernetes", "azure", "openbao")
AZURE_FAULT_COMPONENTS = ("entra", "imds", "arm", "keyvault")
FAULT_COMPONENTS = ("kubernetes", *AZURE_FAULT_COMPONENTS, "openbao")
CONTROL_DIR = "control"
STATE_FILE = "state.json"
PKI_DIR = "pki"  # the CA, and every certificate and key it issued
REVIEWER_NAMESPACE = "kube-system"
REVIEWER_SA = "openbao-token-reviewer"
_REVIEWER_TOKEN_SECONDS = 30 * 24 * 3600
#: each role assignment, access policy and FIC written over ARM takes effect after a
#: random delay in this range (seconds), as grants propagate in Azure; ``(0, 0)``: at once
DEFAULT_PROPAGATION = (1.0, 8.0)
#: the short range of the test suite's shared sandbox: the windows are exercised, briefly
TEST_PROPAGATION = (0.2, 1.0)


def parse_propagation(text: str) -> tuple[float, float]:
    """``"1-8"`` -> ``(1.0, 8.0)``; ``"2"`` -> ``(2.0, 2.0)``; ``"0"`` turns delays off."""
    low_text, _, high_text = text.strip().partition("-")
    try:
        low = float(low_text)
        high = float(high_text) if high_text else low
    except ValueError:
        low = high = -1.0
    if not 0 <= low <= high <= 3600:
        raise BadInputError(
            f"--propagation {text!r} is not a delay range",
            hint="give seconds as LOW-HIGH (e.g. 1-8) or one number; 0 turns delays off",
        )
    return low, high


def check_components(components: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(components))
    unknown = [c for c in chosen if c not in COMPONENTS]
    if unknown:
        raise BadInputError(
            f"unknown sandbox component(s): {', '.join(unknown)}",
            hint=f"choose from {', '.join(COMPONENTS)}",
        )
    if not chosen:
        raise BadInputError(
            "no sandbox component chosen", hint=f"choose from {', '.join(COMPONENTS)}"
        )
    return chosen


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True)
    atomic_write_text(path, text, mode=0o600, what="sandbox state")


class Sandbox(Running):
    """A running sandbox. Build it with :meth:`start`; stop it with :meth:`stop`."""

    def __init__(self, state_dir: Path, ca: CertificateAuthority, components: tuple[str, ...]):
        self.state_dir = state_dir
        self.ca = ca
        self.components = components
        self.kube: KubeFake | None = None
        self.azure: AzureFakes | None = None
        self.vault: OpenBao | None = None
        self.operator: seed.Operator | None = None
        self.vault_front: FakeServer | None = None
        self.started_in: float = 0.0

    @property
    def ca_path(self) -> Path:
        return self.ca.ca_path

    @classmethod
    def start(
        cls,
        state_dir: Path | str,
        components: Sequence[str] = COMPONENTS,
        *,
        spec: Spec | None = None,
        propagation: tuple[float, float] = DEFAULT_PROPAGATION,
    ) -> Sandbox:
        """Start the chosen components on 127.0.0.1 (free ports) and wait until healthy.

        ``propagation``: each role assignment, access policy and federated credential
        written over ARM takes effect at Key Vault and Entra after a random delay in this
        range (seconds), as in Azure; ``(0, 0)`` turns the delays off.

        OpenBao is spawned first and boots while the fakes start; its ``kubernetes``
        and ``jwt`` auth methods are configured against the Kubernetes fake. With a
        ``spec``, the sandbox also holds what that spec expects to exist already
        (see :mod:`secretsboot.sandbox.seed`).
        """
        t0 = time.monotonic()
        chosen = check_components(components)
        state_dir = Path(state_dir).resolve()
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        sb = cls(state_dir, CertificateAuthority.create(state_dir / PKI_DIR), chosen)
        try:
            if "openbao" in chosen:
                sb.vault = OpenBao.launch(state_dir, sb.ca)
            if "kubernetes" in chosen:
                sb.kube = KubeFake.start(sb.ca, state_dir)
            if "azure" in chosen:
                from secretsboot.sandbox.azure import AzureFakes

                sb.azure = AzureFakes.start(sb.ca, state_dir, **seed.spec_identity(spec))
                sb.azure.set_propagation(*propagation)
                sb.operator = seed.create_operator(sb)
            if spec is not None:
                seed.adopt_cluster(sb, spec)
                seed.seed_azure(sb, spec, sb.operator)
            if sb.vault is not None:
                reviewer_jwt = sb._finish_openbao(sb.vault)
                if spec is not None:
                    seed.seed_vault(sb, spec, reviewer_jwt)
        except BaseException:
            sb.stop()
            raise
        sb.started_in = time.monotonic() - t0
        log.info("sandbox started in %.2f s", sb.started_in)
        return sb

    def _finish_openbao(self, vault: OpenBao) -> str | None:
        try:
            vault.wait_healthy(15)
        except Exception:
            # the probed port may have been taken meanwhile: one clean retry
            vault.stop()
            vault = self.vault = OpenBao.start(self.state_dir, self.ca)
        cert = self.ca.issue_server_cert(name="openbao-front")
        app = VaultFront(vault.address, self.ca.ca_path)
        front = FakeServer(app, ssl_context=cert.ssl_context())
        self.vault_front = front.start()
        vault.attach_front(front.url)
        if self.azure is not None:  # Vault's azure auth, at auth/azure as `vault auth enable`
            from secretsboot.sandbox.vault_azure_login import SandboxDirectory

            app.enable_azure_auth(
                vault.root_token, self.azure.authority_host, SandboxDirectory(self.azure.state)
            )
            vault.configure_azure(self.azure.tenant_id)
        if self.kube is None:
            return None
        kube = self.kube
        kube.store.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": REVIEWER_SA, "namespace": REVIEWER_NAMESPACE},
            }
        )
        kube.store.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": REVIEWER_SA},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:auth-delegator",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": REVIEWER_SA, "namespace": REVIEWER_NAMESPACE}
                ],
            }
        )
        reviewer_jwt = kube.app.mint_token(
            REVIEWER_NAMESPACE, REVIEWER_SA, None, _REVIEWER_TOKEN_SECONDS
        )
        vault.configure_kubernetes(kube.url, self.ca.ca_pem, token_reviewer_jwt=reviewer_jwt)
        vault.configure_jwt(
            f"{kube.url}/openid/v1/jwks", self.ca.ca_pem, bound_issuer=kube.oidc_issuer
        )
        return reviewer_jwt

    # -- what clients need ---------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """The environment a client needs to use this sandbox (see the sandbox contract)."""
        ca = str(self.ca_path)
        env = {"REQUESTS_CA_BUNDLE": ca, "SSL_CERT_FILE": ca}
        if self.kube is not None:
            env["KUBECONFIG"] = str(self.kube.kubeconfig_path)
            if (
                self.kube.app.issuer_url
            ):  # the spec's issuer, served by the fake (provision checks it)
                env["SECRETSBOOT_OIDC_ISSUER_URL"] = self.kube.url
        if self.azure is not None:
            env.update(self.azure.env())
        if self.operator is not None:
            env.update(self.operator.env())
        if self.vault is not None:
            env.update(
                {
                    "VAULT_ADDR": self.vault.address,
                    "VAULT_TOKEN": self.vault.root_token,
                    "VAULT_CACERT": ca,
                }
            )
        return env

    def endpoints(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.kube is not None:
            out["kubernetes"] = self.kube.url
        if self.azure is not None:
            out.update(self._azure_endpoints())
        if self.vault is not None:
            out["openbao"] = self.vault.address
        return out

    def _azure_endpoints(self) -> dict[str, str]:
        azure = self.azure
        if azure is None:
            return {}
        out = {"entra": azure.authority_host, "imds": azure.imds_url, "arm": azure.arm_url}
        prefix = "SECRETSBOOT_KEYVAULT_"
        for name, url in azure.env().items():
            if name.startswith(prefix):
                out["keyvault-" + name[len(prefix) :].lower().replace("_", "-")] = url
        return out

    def health(self) -> dict[str, bool]:
        out: dict[str, bool] = {}
        if self.kube is not None:
            out["kubernetes"] = self.kube.healthy()
        if self.azure is not None:
            out["azure"] = self.azure.healthy()
        if self.vault is not None:
            out["openbao"] = self.vault.healthy()
        return out

    def state(self) -> dict[str, Any]:
        """What ``state.json`` holds (no secret values: the root token stays in its file)."""
        secret_names = ("VAULT_TOKEN", "AZURE_CLIENT_SECRET")  # each kept in its 0600 file
        env = {k: v for k, v in self.env().items() if k not in secret_names}
        return {
            "pid": os.getpid(),
            "command": "secretsboot.sandbox.stack serve",
            "started_at": time.time(),
            "startup_seconds": round(self.started_in, 3),
            "state_dir": str(self.state_dir),
            "components": list(self.components),
            "endpoints": self.endpoints(),
            "ca_path": str(self.ca_path),
            "kubeconfig": str(self.kube.kubeconfig_path) if self.kube else None,
            "root_token_file": str(self.vault.root_token_path) if self.vault else None,
            "openbao_pid": self.vault.pid if self.vault else None,
            "env": env,
        }

    def faults(self, component: str) -> Faults:
        """The fault knobs of ``kubernetes``, ``entra``, ``imds``, ``arm``, ``keyvault``
        or ``openbao`` (its HTTPS front: ``stop`` refuses connections)."""
        if component == "kubernetes" and self.kube is not None:
            return self.kube.app.faults
        if component == "openbao" and self.vault_front is not None:
            return self.vault_front.app.faults
        if component in AZURE_FAULT_COMPONENTS and self.azure is not None:
            return self.azure.faults(component)  # type: ignore[arg-type]
        running = [c for c in FAULT_COMPONENTS if c != "kubernetes" or self.kube is not None]
        running = [c for c in running if c != "openbao" or self.vault_front is not None]
        if self.azure is None:
            running = [c for c in running if c not in AZURE_FAULT_COMPONENTS]
        raise BadInputError(
            f"no fault knobs for {component!r} in this sandbox",
            hint=f"choose from {', '.join(running) or '(none)'}",
        )

    def stop(self) -> None:
        """Stop every component (idempotent; OpenBao is terminated and reaped)."""
        for stop in (
            self.vault_front.stop if self.vault_front else None,
            self.vault_front.app.close if self.vault_front else None,  # type: ignore[attr-defined]
            self.vault.stop if self.vault else None,
            self.azure.stop if self.azure else None,
            self.kube.stop if self.kube else None,
        ):
            if stop is not None:
                try:
                    stop()
                except Exception:
                    log.exception("sandbox: stopping a component failed")

    def __repr__(self) -> str:
        return f"Sandbox({self.state_dir}, components={self.components})"


# -- background mode ---------------------------------------------------------------------
def apply_fault(sb: Sandbox, command: dict[str, Any]) -> dict[str, Any]:
    """Apply one fault command ``{"component": ..., "action": ..., ...}`` (the CLI's knobs).

    Actions: ``throttle`` (``rate``, ``retry_after``), ``fail_next`` (``count``,
    ``status``), ``latency`` (``seconds``), ``stop``, ``start``, ``clear``; for
    ``keyvault``, ``firewall`` (``closed``: every vault's network rules refuse callers).
    """
    faults = sb.faults(str(command.get("component")))
    action = command.get("action")
    if action == "firewall":
        if command.get("component") != "keyvault" or sb.azure is None:
            raise BadInputError("--firewall applies to keyvault only")
        sb.azure.set_keyvault_firewall(None, closed=bool(command.get("closed")))
    elif action == "throttle":
        faults.throttle(float(command["rate"]), int(command.get("retry_after", 1)))
    elif action == "fail_next":
        faults.fail_next(int(command["count"]), int(command.get("status", 503)))
    elif action == "latency":
        faults.latency(float(command["seconds"]))
    elif action == "stop":
        faults.stop()
    elif action == "start":
        faults.start()
    elif action == "clear":
        faults.clear()
    else:
        raise BadInputError(f"unknown fault action {action!r}")
    return {"ok": True, "component": command.get("component"), "action": action}


def _process_control(sb: Sandbox, control: Path) -> None:
    for request in sorted(control.glob("*.request.json")):
        response = request.with_name(request.name.replace(".request.", ".response."))
        try:
            command = json.loads(request.read_text(encoding="utf-8"))
            result = apply_fault(sb, command)
        except BadInputError as exc:
            result = {"ok": False, "error": str(exc)}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            result = {"ok": False, "error": f"bad fault command: {type(exc).__name__} {exc}"}
        with contextlib.suppress(FileNotFoundError):
            request.unlink()
        _write_private_json(response, result)


def serve(
    state_dir: Path,
    components: Sequence[str],
    spec_file: Path | None = None,
    propagation: tuple[float, float] = DEFAULT_PROPAGATION,
) -> int:
    """Run the sandbox until SIGTERM/SIGINT; ``state.json`` appears once it is healthy."""
    stop_event = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop_event.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    state_path = state_dir / STATE_FILE
    try:
        spec = None
        if spec_file is not None:
            from secretsboot.spec import load_spec

            spec = load_spec(spec_file)
        sb = Sandbox.start(state_dir, components, spec=spec, propagation=propagation)
    except Exception as exc:
        log.exception("the sandbox did not start")
        _write_private_json(
            state_dir / "error.json", {"pid": os.getpid(), "error": f"{type(exc).__name__}: {exc}"}
        )
        return 1
    try:
        state = {**sb.state(), "ready": True}
        _write_private_json(state_path, state)
        log.warning("sandbox ready in %.2f s: %s", sb.started_in, sb.endpoints())
        control = state_dir / CONTROL_DIR
        control.mkdir(mode=0o700, exist_ok=True)
        while not stop_event.wait(0.1):
            _process_control(sb, control)
            # vaults created later (ARM PUT) get their own endpoint: keep state.json current
            endpoints, env = sb.endpoints(), sb.state()["env"]
            if endpoints != state["endpoints"] or env != state["env"]:
                state = {**state, "endpoints": endpoints, "env": env}
                _write_private_json(state_path, state)
            if sb.vault is not None and sb.vault.process.poll() is not None:
                log.error("OpenBao exited (code %s); stopping", sb.vault.process.returncode)
                break
    finally:
        sb.stop()
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m secretsboot.sandbox.stack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the sandbox in the foreground until SIGTERM")
    run.add_argument("--dir", required=True, type=Path)
    run.add_argument("--components", default=",".join(COMPONENTS))
    run.add_argument("--spec", type=Path, default=None)
    run.add_argument("--propagation", default="{:g}-{:g}".format(*DEFAULT_PROPAGATION))
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    components = [c.strip() for c in str(args.components).split(",") if c.strip()]
    propagation = parse_propagation(str(args.propagation))
    return serve(Path(args.dir).resolve(), components, args.spec, propagation)


if __name__ == "__main__":
    sys.exit(main())
