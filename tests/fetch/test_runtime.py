"""The fetch runtime with fake stores: parallelism, the fallback chain, one line per failure."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    PropagationPendingError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.fetch import FetchConfig, env_for, fetch_secrets
from secretsboot.refs import Ref
from secretsboot.secret import SecretValue
from secretsboot.transport import Deadline


class FakeStore:
    """Answers from a dict: a value, or an exception to raise (every time)."""

    def __init__(self, scheme: str, answers: dict[str, Any], delay: float = 0.0) -> None:
        self.scheme = scheme
        self.answers = answers
        self.delay = delay
        self.calls: list[str] = []
        self.threads: set[int] = set()
        self.closed = False
        self._lock = threading.Lock()

    def get(self, ref: Ref, deadline: Deadline) -> SecretValue:
        with self._lock:
            self.calls.append(str(ref))
            self.threads.add(threading.get_ident())
        time.sleep(self.delay)
        answer = self.answers.get(str(ref), NotFoundError(f"{ref} not found"))
        if isinstance(answer, Exception):
            raise answer
        return SecretValue(answer)

    def describe_identity(self) -> str:
        return "fake identity"

    def version(self, ref: Ref, deadline: Deadline) -> str:
        return "1"

    def close(self, deadline: Deadline | None = None) -> None:
        self.closed = True


def cfg(spec: str, **env: str) -> FetchConfig:
    return FetchConfig.from_env(
        {"SECRETSBOOT_SECRETS": spec, "VAULT_ADDR": "http://127.0.0.1:1",
         "SECRETSBOOT_VAULT_ROLE": "r", **env}
    )  # fmt: skip


def test_secrets_are_fetched_in_parallel() -> None:
    n = 12
    store = FakeStore("k8s", {f"k8s://s{i}#k": f"v{i}" for i in range(n)}, delay=0.1)
    started = time.monotonic()
    values = fetch_secrets(
        cfg(";".join(f"s{i}=k8s://s{i}#k" for i in range(n))), backends={"k8s": store}
    )
    assert time.monotonic() - started < 0.6
    assert len(store.threads) > 1
    assert values["s7"].reveal() == "v7"


def test_not_found_and_unavailable_fall_back_in_order() -> None:
    vault = FakeStore("vault", {"vault://secret/a#k": UnavailableError("Vault answered 503")})
    k8s = FakeStore("k8s", {"k8s://b#k": "from-k8s"})
    config = cfg("x=k8s://missing#k|vault://secret/a#k|k8s://b#k")
    values = fetch_secrets(
        config, backends={"vault": vault, "k8s": k8s}, timeout=1, propagation_window=0
    )
    assert values["x"].reveal() == "from-k8s"
    assert k8s.calls == ["k8s://missing#k", "k8s://b#k"]
    assert len(vault.calls) > 1  # retried before giving up on it


@pytest.mark.parametrize("fallback_on_denied", [False, True])
def test_denied_falls_back_only_when_configured(fallback_on_denied: bool) -> None:
    k8s = FakeStore(
        "k8s",
        {"k8s://a#k": DeniedError("Kubernetes denied fake identity"), "k8s://b#k": "spare"},
    )
    config = cfg(
        "x=k8s://a#k|k8s://b#k",
        SECRETSBOOT_FALLBACK_ON_DENIED="true" if fallback_on_denied else "false",
    )
    if fallback_on_denied:
        assert fetch_secrets(config, backends={"k8s": k8s})["x"].reveal() == "spare"
    else:
        with pytest.raises(DeniedError) as info:
            fetch_secrets(config, backends={"k8s": k8s})
        assert "k8s://b#k" not in k8s.calls
        assert str(info.value).startswith("secret 'x': k8s://a#k: Kubernetes denied")


def test_propagation_denial_is_reported_as_a_denial_after_the_window() -> None:
    k8s = FakeStore("k8s", {"k8s://a#k": PropagationPendingError("Key Vault denied X")})
    with pytest.raises(DeniedError) as info:
        fetch_secrets(cfg("x=k8s://a#k"), backends={"k8s": k8s}, propagation_window=0.3)
    assert type(info.value) is DeniedError
    assert len(k8s.calls) > 1


def test_one_line_per_failing_secret_of_the_first_kind() -> None:
    k8s = FakeStore(
        "k8s",
        {
            "k8s://ok#k": "fine",
            "k8s://no#k": DeniedError("denied"),
            "k8s://bad#k": BadInputError("bad"),
        },
    )  # fmt: skip
    with pytest.raises(SecretsbootError) as info:
        fetch_secrets(
            cfg("a=k8s://ok#k;b=k8s://no#k;c=k8s://gone#k;d=k8s://bad#k"), backends={"k8s": k8s}
        )
    lines = str(info.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["secret 'b'", "secret 'c'", "secret 'd'"]
    assert isinstance(info.value, DeniedError)
    assert "fine" not in str(info.value)


def test_an_unexpected_client_error_is_reported_without_its_text() -> None:
    k8s = FakeStore("k8s", {"k8s://a#k": RuntimeError("CANARY-leak in a client message")})
    with pytest.raises(SecretsbootError) as info:
        fetch_secrets(cfg("x=k8s://a#k"), backends={"k8s": k8s})
    assert "CANARY" not in str(info.value)
    assert "RuntimeError" in str(info.value)


def test_env_for_uses_env_names_or_upper_case_names() -> None:
    config = cfg("db-password=k8s://a#k;api=k8s://b#k")
    values = {"db-password": SecretValue("1"), "api": SecretValue("2")}
    assert env_for(config, values) == {"DB_PASSWORD": "1", "API": "2"}


def test_unknown_scheme_is_bad_input() -> None:
    from secretsboot.backends import store_module

    with pytest.raises(BadInputError, match="unknown scheme 'ftp'"):
        store_module("ftp")


def test_a_failed_secret_stops_the_others_retrying() -> None:
    k8s = FakeStore(
        "k8s",
        {"k8s://denied#k": DeniedError("denied at once"), "k8s://down#k": UnavailableError("503")},
        delay=0.05,
    )
    started = time.monotonic()
    with pytest.raises(DeniedError) as info:
        fetch_secrets(
            cfg("a=k8s://denied#k;b=k8s://down#k"),
            backends={"k8s": k8s},
            timeout=30,
            propagation_window=0,
        )
    assert time.monotonic() - started < 2, "b stops retrying once a has failed"
    assert str(info.value).splitlines() == [
        "secret 'a': k8s://denied#k: denied at once",
        "not fetched, retries stopped after the failure above: 'b'",
    ]
