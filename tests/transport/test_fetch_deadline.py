"""The fetch over the real transport against misbehaving Kubernetes API servers.

- a reply that is not JSON is *unavailable*: retried, and never read as "not found",
  so the fetch does not slide to the next source;
- a 429 storm is ridden out to the deadline;
- ``secretsboot fetch --timeout N`` (the real CLI, a subprocess) exits within N+1 s
  whatever the server does: drip, silent handshake, silence after the request,
  ``Retry-After: 30``, a storm of 429s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import TLS, ScriptServer, answer, drip, read_request, reply, silent

from secretsboot.backends.kubernetes import Kubernetes
from secretsboot.contract import FetchConfig
from secretsboot.errors import UnavailableError
from secretsboot.fetch import fetch_secrets
from secretsboot.identity.kubernetes import ApiAccess

SECRET_A = json.dumps({"data": {"k": "ZnJvbS1h"}}).encode()  # "from-a"
SECRET_B = json.dumps({"data": {"k": "ZnJvbS1i"}}).encode()  # "from-b"


@pytest.fixture
def store(tls: TLS) -> Iterator[Callable[[ScriptServer], Kubernetes]]:
    made: list[Kubernetes] = []

    def make(server: ScriptServer) -> Kubernetes:
        access = ApiAccess(server=server.url, token="t", namespace="shop", ca_file=tls.ca_file)
        made.append(Kubernetes(access, env={}))
        return made[-1]

    yield make
    for k8s in made:  # a store handed to fetch_secrets belongs to the caller
        k8s.close()


def config(spec: str) -> FetchConfig:
    return FetchConfig.from_env({"SECRETSBOOT_SECRETS": spec})


def test_bad_json_is_retried_and_never_falls_back(tls: TLS, store: Callable[..., Any]) -> None:
    served: list[str] = []

    def api(sock: object, server: ScriptServer) -> None:
        while request := read_request(sock, server):  # type: ignore[arg-type]
            path = request.split(b" ", 2)[1].decode()
            served.append(path)
            if path.endswith("/a") and served.count(path) == 1:
                body = reply(200, b"<html>502 from a load balancer</html>")
            else:
                body = reply(200, SECRET_A if path.endswith("/a") else SECRET_B)
            sock.sendall(body)  # type: ignore[attr-defined]

    with ScriptServer(api, tls) as server:
        k8s = store(server)
        values = fetch_secrets(config("x=k8s://a#k|k8s://b#k"), backends={"k8s": k8s}, timeout=10)
    assert values["x"].reveal() == "from-a"
    assert served == ["/api/v1/namespaces/shop/secrets/a"] * 2, "b, the fallback, never asked"


def test_bad_json_to_the_end_is_unavailable_not_missing(
    tls: TLS, store: Callable[..., Any]
) -> None:
    with (
        ScriptServer(answer(reply(200, b"not json")), tls) as server,
        pytest.raises(UnavailableError, match="not JSON"),
    ):
        fetch_secrets(config("x=k8s://a#k"), backends={"k8s": store(server)}, timeout=2)


def test_a_429_storm_is_ridden_out_to_the_deadline(tls: TLS, store: Callable[..., Any]) -> None:
    storm = reply(429, b'{"kind": "Status"}', {"Retry-After": "1"})
    with ScriptServer(answer(storm), tls) as server:
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="asked to retry after 1 s") as info:
            fetch_secrets(config("x=k8s://a#k"), backends={"k8s": store(server)}, timeout=6)
        elapsed = time.monotonic() - started
    assert 5.5 < elapsed < 7.0, elapsed
    assert len(server.requests) >= 4, "retried through the storm, not abandoned early"
    assert "429" in str(info.value)


# ---- the real CLI: --timeout N is a deadline ---------------------------------------------

BEHAVIOURS = {
    "drip": (drip(reply(200, SECRET_A * 20)), True),
    "silent TLS handshake": (silent, False),
    "silent after the request": (
        lambda sock, server: (read_request(sock, server), server.sleep(30)),
        True,
    ),
    "Retry-After 30": (answer(reply(429, b"{}", {"Retry-After": "30"})), True),
    "429 storm": (answer(reply(429, b"{}", {"Retry-After": "1"})), True),
}


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_fetch_exits_within_timeout_plus_one_second(
    tls: TLS, tmp_path: Path, behaviour: str
) -> None:
    script, handshake = BEHAVIOURS[behaviour]
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("t")
    (sa / "namespace").write_text("shop")
    (sa / "ca.crt").write_text(Path(tls.ca_file).read_text())
    with ScriptServer(script, tls, handshake=handshake) as server:  # type: ignore[arg-type]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(server.port),
            "SECRETSBOOT_SERVICEACCOUNT_DIR": str(sa),
            "SECRETSBOOT_SECRETS": "db=k8s://db#k",
        }
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "secretsboot", "fetch", "--out", str(tmp_path / "out"),
             "--timeout", "3"],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert result.returncode == 5, result.stderr
    # N+1 s, plus what merely starting the interpreter and importing the fetch path costs
    # on this machine right now (the deadline starts with the fetch; on a quiet machine
    # that start is ~0.1 s, under the load of a shared CI box it can be a second)
    begun = time.monotonic()
    subprocess.run([sys.executable, "-c", "import secretsboot.fetch._cli"], env=env, check=True)
    start_cost = time.monotonic() - begun
    assert elapsed < 4.0 + start_cost, f"{behaviour}: {elapsed:.2f} s (start {start_cost:.2f} s)"
    assert not (tmp_path / "out" / "db").exists()


@pytest.mark.parametrize(
    ("variables", "what"),
    [
        ({"VAULT_ADDR": "http://127.0.0.1:9", "SECRETSBOOT_SECRETS": "db=vault://secret/x#k",
          "SECRETSBOOT_VAULT_ROLE": "r"}, "Vault"),
        ({"AZURE_AUTHORITY_HOST": "http://127.0.0.1:9", "AZURE_TENANT_ID": "t",
          "AZURE_CLIENT_ID": "c", "AZURE_FEDERATED_TOKEN_FILE": "/dev/null",
          "SECRETSBOOT_SECRETS": "db=keyvault://kvshop/db"}, "Entra ID"),
    ],
)  # fmt: skip
def test_cleartext_is_refused_with_exit_2_unless_the_dev_setting_says_so(
    tmp_path: Path, variables: dict[str, str], what: str
) -> None:
    (tmp_path / "token").write_text("a-service-account-jwt")
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SECRETSBOOT_SERVICEACCOUNT_DIR": str(tmp_path), **variables}  # fmt: skip
    out = str(tmp_path / "out")
    argv = [sys.executable, "-m", "secretsboot", "fetch", "--out", out, "--timeout", "2"]
    refused = subprocess.run(argv, env=base, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2, refused.stderr
    assert f"the {what} URL http://127.0.0.1:9 is http://" in refused.stderr
    assert "use https://" in refused.stderr
    allowed = subprocess.run(
        argv, env={**base, "SECRETSBOOT_INSECURE_ALLOW_HTTP": "1"},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert "WARNING: SECRETSBOOT_INSECURE_ALLOW_HTTP=1" in allowed.stderr
    assert allowed.returncode != 2, allowed.stderr  # it got as far as the network
