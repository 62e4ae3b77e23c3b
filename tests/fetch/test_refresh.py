"""The refresh loop with fake stores: versions first, whole-set publish, failures kept apart."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    UnavailableError,
    WriteError,
)
from secretsboot.fetch import FetchConfig
from secretsboot.fetch.health import HealthState
from secretsboot.fetch.refresh import Options, Refresher, TokenFile, parse_interval
from secretsboot.refs import Ref
from secretsboot.secret import SecretValue

CANARY = "canary-refresh-7f3e"


class VersionedStore:
    """A store of ``{uri: (version, value)}`` (or an exception), logging each call."""

    client = "fake"

    def __init__(self, scheme: str, data: dict[str, Any], *, versions: bool = True) -> None:
        self.scheme = scheme
        self.data = data
        self.calls: list[tuple[str, str]] = []
        self.closed = 0
        self._lock = threading.Lock()
        if not versions:
            self.version = None  # type: ignore[assignment]

    def _answer(self, ref: Ref) -> tuple[str, str]:
        answer = self.data.get(str(ref), NotFoundError(f"{ref} not found"))
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    def version(self, ref: Ref, timeout: float) -> str:
        with self._lock:
            self.calls.append(("version", str(ref)))
        return self._answer(ref)[0]

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        with self._lock:
            self.calls.append(("get", str(ref)))
        return SecretValue(self._answer(ref)[1])

    def describe_identity(self) -> str:
        return "fake identity"

    def close(self) -> None:
        self.closed += 1

    def take_calls(self) -> list[tuple[str, str]]:
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


def cfg(spec: str) -> FetchConfig:
    return FetchConfig.from_env(
        {"SECRETSBOOT_SECRETS": spec, "VAULT_ADDR": "https://127.0.0.1:1",
         "SECRETSBOOT_VAULT_ROLE": "r", "SECRETSBOOT_IDENTITY": "workload-identity",
         "AZURE_TENANT_ID": "t"}
    )  # fmt: skip


class Published:
    """A publish callback that records each set (names -> revealed values)."""

    def __init__(self) -> None:
        self.sets: list[dict[str, str]] = []
        self.fail: Exception | None = None

    def __call__(self, config: FetchConfig, values: Any) -> None:
        if self.fail is not None:
            raise self.fail
        assert {s.name for s in config.secrets} == set(values)
        self.sets.append({k: v.reveal() for k, v in values.items()})


def make(
    spec: str, stores: dict[str, VersionedStore], **options: Any
) -> tuple[Refresher, Published, list[str]]:
    published = Published()
    lines: list[str] = []
    refresher = Refresher(
        cfg(spec),
        published,
        Options(interval=options.pop("interval", 10.0), **options),
        env={},
        backends=stores,
        log=lines.append,
    )
    refresher.start(timeout=2, propagation_window=0)
    for store in stores.values():
        store.take_calls()
    return refresher, published, lines


TEN = ";".join(f"s{i}=vault://secret/app/s{i}#k" for i in range(10))


def ten_secrets() -> VersionedStore:
    return VersionedStore(
        "vault", {f"vault://secret/app/s{i}#k": ("1", f"{CANARY}-{i}") for i in range(10)}
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h", 3600.0), ("1.5m", 90.0), (" 2M ", 120.0)],
)
def test_interval_forms(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5x", "ten", "0", "0.5s", "-5", "30d"])
def test_bad_intervals_are_refused_with_the_forms(text: str) -> None:
    with pytest.raises(BadInputError, match="--refresh"):
        parse_interval(text)


def test_unchanged_versions_cost_one_small_request_per_secret() -> None:
    store = ten_secrets()
    refresher, published, _ = make(TEN, {"vault": store})
    refresher.cycle()  # the first cycle learns each source's version (one full read each)
    store.take_calls()
    for _ in range(3):
        report = refresher.cycle()
        assert report.requests == 10 and not report.changed and not report.published
        calls = store.take_calls()
        assert sorted(calls) == sorted(("version", f"vault://secret/app/s{i}#k") for i in range(10))
    assert len(published.sets) == 1  # only the first write


def test_a_changed_secret_is_read_in_full_and_the_whole_set_published() -> None:
    store = ten_secrets()
    refresher, published, lines = make(TEN, {"vault": store})
    refresher.cycle()
    store.data["vault://secret/app/s3#k"] = ("2", f"{CANARY}-new")
    store.take_calls()
    report = refresher.cycle()
    assert report.changed == ("s3",) and report.published
    gets = [c for c in store.take_calls() if c[0] == "get"]
    assert gets == [("get", "vault://secret/app/s3#k")]
    assert published.sets[-1]["s3"] == f"{CANARY}-new"
    assert published.sets[-1]["s4"] == f"{CANARY}-4"  # the whole set, not just the change
    assert refresher.health.metrics.get("secretsboot_refresh_changes_total") == 1
    assert not any(CANARY in line for line in lines)


def test_a_new_version_with_the_same_value_publishes_nothing() -> None:
    store = ten_secrets()
    refresher, published, _ = make(TEN, {"vault": store})
    refresher.cycle()
    store.data["vault://secret/app/s1#k"] = ("2", f"{CANARY}-1")
    assert not refresher.cycle().published
    store.take_calls()
    refresher.cycle()  # and the new version is now the known one
    assert all(kind == "version" for kind, _ in store.take_calls())
    assert len(published.sets) == 1


def test_a_store_without_versions_is_read_once_per_secret_and_compared() -> None:
    store = VersionedStore("k8s", {"k8s://db#pw": ("", CANARY)}, versions=False)
    refresher, published, _ = make("db=k8s://db#pw", {"k8s": store})
    assert refresher.cycle().requests == 1 and len(published.sets) == 1
    store.data["k8s://db#pw"] = ("", CANARY + "-2")
    assert refresher.cycle().changed == ("db",)
    assert published.sets[-1]["db"] == CANARY + "-2"


def test_a_pinned_version_is_never_asked_again() -> None:
    store = VersionedStore("keyvault", {"keyvault://kv-app/db@abc": ("abc", CANARY)})
    refresher, _, _ = make("db=keyvault://kv-app/db@abc", {"keyvault": store})
    refresher.cycle()
    store.take_calls()
    assert refresher.cycle().requests == 0 and store.take_calls() == []


def test_failures_keep_the_last_set_and_back_off_honouring_retry_after() -> None:
    store = ten_secrets()
    refresher, published, lines = make(TEN, {"vault": store}, interval=60.0)
    refresher.cycle()
    good = published.sets[-1]
    store.data["vault://secret/app/s0#k"] = UnavailableError("Vault answered 503", retry_after=7)
    store.data["vault://secret/app/s1#k"] = UnavailableError("Vault answered 503")
    lines.clear()
    report = refresher.cycle()
    assert [o.name for o in report.failed] == ["s0", "s1"] and not report.published
    assert published.sets[-1] == good
    assert len(lines) == 1 and "vault unavailable" in lines[0] and "'s0', 's1'" in lines[0]
    assert 7 <= refresher.next_delay() <= 60
    assert (
        refresher.health.metrics.get(
            "secretsboot_refresh_failures_total", store="vault", reason="unavailable"
        )
        == 1
    )
    store.data["vault://secret/app/s0#k"] = ("1", f"{CANARY}-0")
    store.data["vault://secret/app/s1#k"] = ("1", f"{CANARY}-1")
    assert refresher.cycle().ok
    assert any("recovered after 1 failed cycle" in line for line in lines)
    assert 54 <= refresher.next_delay() <= 60  # back to the interval, jittered downwards


def test_backoff_grows_from_one_second_and_stops_at_the_interval() -> None:
    store = VersionedStore("k8s", {"k8s://db#pw": ("1", CANARY)})
    refresher, _, _ = make("db=k8s://db#pw", {"k8s": store}, interval=10.0)
    store.data["k8s://db#pw"] = UnavailableError("Kubernetes API answered 500")
    ceilings = []
    for _ in range(6):
        refresher.cycle()
        ceilings.append(max(refresher.next_delay() for _ in range(50)))
    assert ceilings[0] <= 1.0 and ceilings[1] <= 2.0 and ceilings[2] <= 4.0
    assert all(c <= 10.0 for c in ceilings) and ceilings[-1] > 5.0


def test_only_not_found_walks_the_fallback_chain_during_refresh() -> None:
    kv = VersionedStore("keyvault", {"keyvault://kv-app/db": ("1", CANARY)})
    k8s = VersionedStore("k8s", {"k8s://db#pw": ("9", CANARY + "-fallback")})
    refresher, published, _ = make(
        "db=keyvault://kv-app/db|k8s://db#pw", {"keyvault": kv, "k8s": k8s}
    )
    kv.data["keyvault://kv-app/db"] = UnavailableError("Key Vault kv answered 503")
    assert refresher.cycle().failed and k8s.take_calls() == []  # no switch on an outage
    kv.data.pop("keyvault://kv-app/db")
    report = refresher.cycle()
    assert report.changed == ("db",) and published.sets[-1]["db"] == CANARY + "-fallback"


def test_a_deleted_secret_is_reported_and_kept_unless_asked() -> None:
    store = VersionedStore("k8s", {"k8s://a#k": ("1", "A"), "k8s://b#k": ("1", "B")})
    refresher, published, lines = make("a=k8s://a#k;b=k8s://b#k", {"k8s": store})
    del store.data["k8s://b#k"]
    report = refresher.cycle()
    assert report.deleted == ("b",) and not report.published and len(published.sets) == 1
    assert any("'b' is deleted in every source; its file is kept" in line for line in lines)

    store2 = VersionedStore("k8s", {"k8s://a#k": ("1", "A"), "k8s://b#k": ("1", "B")})
    refresher2, published2, _ = make(
        "a=k8s://a#k;b=k8s://b#k", {"k8s": store2}, remove_deleted=True
    )
    del store2.data["k8s://b#k"]
    assert refresher2.cycle().published
    assert published2.sets[-1] == {"a": "A"}
    assert not refresher2.cycle().published  # removed once, not again each cycle


def test_a_failed_publish_is_tried_again_next_cycle() -> None:
    store = VersionedStore("k8s", {"k8s://db#pw": ("1", "old")})
    refresher, published, lines = make("db=k8s://db#pw", {"k8s": store})
    store.data["k8s://db#pw"] = ("2", "new")
    published.fail = WriteError("disk full")
    assert not refresher.cycle().published
    assert any("cannot publish" in line for line in lines)
    published.fail = None
    assert refresher.cycle().changed == ("db",)
    assert published.sets[-1] == {"db": "new"}


def test_a_store_that_worked_and_now_denies_is_rebuilt_for_a_fresh_login() -> None:
    store = VersionedStore("vault", {"vault://secret/a#k": ("1", "v")})
    refresher, _, lines = make("a=vault://secret/a#k", {"vault": store})
    store.data["vault://secret/a#k"] = DeniedError("Vault denied reading secret/a")
    report = refresher.cycle()
    assert refresher.refused_tokens(report) == ["vault"]
    assert any("refused our token; logging in again" in line for line in lines)
    # a second denial right after a fresh login is a real denial: not retried again
    assert refresher.refused_tokens(refresher.cycle()) == []


def test_notifiers_hear_of_changes_only() -> None:
    heard: list[tuple[str, ...]] = []

    class Ear:
        def notify(self, changed: Any) -> None:
            heard.append(tuple(changed))

    store = VersionedStore("k8s", {"k8s://db#pw": ("1", "old")})
    refresher = Refresher(
        cfg("db=k8s://db#pw"), Published(), Options(interval=5), env={},
        backends={"k8s": store}, notifiers=[Ear()],
    )  # fmt: skip
    refresher.start(timeout=2, propagation_window=0)
    refresher.cycle()
    store.data["k8s://db#pw"] = ("2", "new")
    refresher.cycle()
    refresher.cycle()
    assert heard == [("db",)]


def test_token_file_change_is_seen_through_kubelets_symlink_swap(tmp_path: Any) -> None:
    # kubelet's projected volume: token -> ..data/token, ..data -> ..TIMESTAMP
    first = tmp_path / "..2026_01"
    first.mkdir()
    (first / "token").write_text("one")
    os.symlink("..2026_01", tmp_path / "..data")
    os.symlink("..data/token", tmp_path / "token")
    watched = TokenFile(str(tmp_path / "token"))
    assert not watched.changed()
    second = tmp_path / "..2026_02"
    second.mkdir()
    (second / "token").write_text("two")
    os.symlink("..2026_02", tmp_path / "..data_tmp")
    os.replace(tmp_path / "..data_tmp", tmp_path / "..data")
    assert watched.changed() and not watched.changed()


def test_run_stops_within_a_second_mid_cycle() -> None:
    class Slow(VersionedStore):
        def version(self, ref: Ref, timeout: float) -> str:
            time.sleep(5)
            return "1"

    store = Slow("k8s", {"k8s://db#pw": ("1", "v")})
    refresher = Refresher(
        cfg("db=k8s://db#pw"), Published(), Options(interval=1, min_backoff=0.1), env={},
        backends={"k8s": store},
    )  # fmt: skip
    refresher.start(timeout=2, propagation_window=0)
    stop = threading.Event()
    runner = threading.Thread(target=refresher.run, args=(stop,))
    runner.start()
    time.sleep(1.3)  # the first cycle is now inside the slow request
    started = time.monotonic()
    stop.set()
    runner.join(2)
    assert not runner.is_alive() and time.monotonic() - started < 1.0


def test_livez_reports_a_failing_store_once_past_the_bound() -> None:
    health = HealthState(stale_after=0.2)
    health.mark_ready()
    assert health.readyz()[0] == 200 and health.livez()[0] == 200
    health.failure("keyvault", "unavailable", "Key Vault kv answered 503")
    time.sleep(0.3)
    status, body = health.livez()
    assert status == 503 and "keyvault: Key Vault kv answered 503" in body
    health.success()
    assert health.livez() == (200, "ok\n")


def test_keys_of_one_object_share_one_version_request() -> None:
    data = {f"vault://secret/app/db#k{i}": ("3", f"{CANARY}-{i}") for i in range(4)}
    store = VersionedStore("vault", data)
    spec = ";".join(f"k{i}=vault://secret/app/db#k{i}" for i in range(4))
    refresher, _, _ = make(spec, {"vault": store})
    refresher.cycle()
    store.take_calls()
    assert refresher.cycle().requests == 1
    calls = store.take_calls()
    assert len(calls) == 1 and calls[0][0] == "version"


def test_an_object_that_moves_while_read_is_not_published_half_new() -> None:
    class Moving(VersionedStore):
        """The object changes (v2 -> v3) right after its first full read of a cycle."""

        moved = False

        def get(self, ref: Ref, timeout: float) -> SecretValue:
            value = super().get(ref, timeout)
            if not self.moved and self.data[str(ref)][0] == "2":
                self.moved = True
                for k in list(self.data):
                    self.data[k] = ("3", self.data[k][1].replace("gen2", "gen3"))
            return value

    data = {f"vault://secret/app/db#k{i}": ("1", f"gen1-{i}") for i in range(3)}
    store = Moving("vault", data)
    spec = ";".join(f"k{i}=vault://secret/app/db#k{i}" for i in range(3))
    refresher, published, _ = make(spec, {"vault": store})
    refresher.cycle()
    for k in list(store.data):
        store.data[k] = ("2", store.data[k][1].replace("gen1", "gen2"))
    assert not refresher.cycle().published  # read during a move: held back
    assert refresher.next_delay() == refresher.options.min_backoff  # and looked at again soon
    assert refresher.cycle().published
    assert set(published.sets[-1].values()) == {"gen3-0", "gen3-1", "gen3-2"}


class LeasedStore(VersionedStore):
    """A store whose token lives ``ttl`` seconds and can be renewed (like Vault's)."""

    def __init__(self, *args: Any, ttl: float, renewable: bool = True, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.ttl = ttl
        self.renewable = renewable
        self.renewals = 0

    def token_ttl(self) -> float:
        return self.ttl

    def renew_token(self, timeout: float) -> None:
        if not self.renewable:
            raise DeniedError("the token is not renewable")
        self.renewals += 1


def test_a_token_is_renewed_at_two_thirds_of_its_ttl_before_the_interval() -> None:
    store = LeasedStore("vault", {"vault://secret/a#k": ("1", "v")}, ttl=3.0)
    refresher, _, lines = make("a=vault://secret/a#k", {"vault": store}, interval=60.0)
    assert refresher.next_delay() <= 2.0  # 2/3 of the 3 s TTL, long before the 60 s interval
    time.sleep(2.05)
    refresher.cycle()
    assert store.renewals == 1 and any("renewed the vault token" in line for line in lines)
    assert 1.5 < refresher.next_delay() <= 2.0  # the next renewal is planned from now


def test_a_token_that_cannot_be_renewed_is_replaced_by_a_fresh_login() -> None:
    store = LeasedStore("vault", {"vault://secret/a#k": ("1", "v")}, ttl=0.3, renewable=False)
    refresher, _, lines = make("a=vault://secret/a#k", {"vault": store}, interval=60.0)
    time.sleep(0.25)
    refresher.cycle()
    assert any("cannot renew the vault token" in line for line in lines)
    assert (
        refresher.health.metrics.get("secretsboot_refresh_token_renewals_total", store="vault") == 1
    )


def test_a_denied_version_check_falls_back_to_full_reads_and_says_so_once() -> None:
    class NoMetadata(VersionedStore):
        def version(self, ref: Ref, timeout: Any) -> str:
            super().version(ref, timeout)
            raise DeniedError("Vault denied reading secret/metadata/app/s0")

    store = NoMetadata("vault", {"vault://secret/app/s0#k": ("1", CANARY)})
    refresher, published, lines = make("s0=vault://secret/app/s0#k", {"vault": store})
    for _ in range(3):
        assert refresher.cycle().ok
    assert sum("its version cannot" in line for line in lines) == 1
    store.take_calls()
    assert refresher.cycle().requests == 1 and store.take_calls() == [
        ("get", "vault://secret/app/s0#k")
    ]
    store.data["vault://secret/app/s0#k"] = ("2", CANARY + "-new")
    assert refresher.cycle().changed == ("s0",)
    assert published.sets[-1] == {"s0": CANARY + "-new"}
