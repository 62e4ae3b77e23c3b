"""The refresh loop against the sandbox: Key Vault (Azure fakes), Vault (real OpenBao) and
the Kubernetes fake, with the real backends and the real writer.

The loop runs in this process (a thread) so each test can change the stores and watch
the files and the fakes' call logs.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fetch_support import (
    Pod,
    config,
    keyvault,
    make_pod,
    put_vault,
    unique,
    vault_role,
    workload_identity,
)
from test_fetch_k8s_fallback import _k8s_secret

from secretsboot.contract import FetchConfig
from secretsboot.fetch.refresh import Options, Refresher
from secretsboot.fetch.writer import write_secrets

pytestmark = pytest.mark.integration
INTERVAL = 1.0


@pytest.fixture(autouse=True)
def trust_the_sandbox(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(sandbox.ca_path))


@dataclass
class Loop:
    refresher: Refresher
    stop: threading.Event
    thread: threading.Thread
    out: Path
    lines: list[str]

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


@dataclass
class Three:
    """A pod reading one secret from each store, with handles to change them."""

    pod: Pod
    doc: dict[str, Any]
    kv: str
    vault_path: str
    k8s_name: str


def three_stores(sb: Any, tmp: Path) -> Three:
    if sb.azure is None:
        pytest.skip("the sandbox has no Azure fakes")
    pod = make_pod(sb, tmp)
    kv = keyvault(sb)
    workload_identity(sb, pod, kv)
    sb.azure.set_secret(kv, "api-key", "CANARY-r1-kv-0")
    base = unique("refresh")
    vault_role(sb, pod, [f"secret/data/{base}/*", f"secret/metadata/{base}/*"])
    put_vault(sb, f"{base}/db", {"password": "CANARY-r1-vault-0"})
    _k8s_secret(sb, pod, "cache", {"token": "CANARY-r1-k8s-0"})
    secrets = [
        {"name": "api-key", "from": f"keyvault://{kv}/api-key"},
        {"name": "db-password", "from": f"vault://secret/{base}/db#password"},
        {"name": "cache-token", "from": "k8s://cache#token"},
    ]
    doc = config(pod, secrets, sb=sb, identity="workload-identity")
    return Three(pod, doc, kv, f"{base}/db", "cache")


def set_k8s(sb: Any, pod: Pod, name: str, key: str, value: str) -> None:
    store = sb.kube.store
    obj = store.get("secrets", name, pod.namespace)
    obj["data"] = {key: base64.b64encode(value.encode()).decode()}
    store.update(obj)


def short_lived_role(sb: Any, pod: Pod, base: str, *, ttl: str, max_ttl: str) -> None:
    """A Vault role for the pod (reading ``base``): tokens live ``ttl``, ``max_ttl`` at most."""
    role = vault_role(sb, pod, [f"secret/data/{base}/*", f"secret/metadata/{base}/*"])
    sb.vault.request(
        "POST", f"auth/kubernetes/role/{role}",
        {"bound_service_account_names": [pod.service_account],
         "bound_service_account_namespaces": [pod.namespace],
         "token_policies": [role], "token_ttl": ttl, "token_max_ttl": max_ttl},
    )  # fmt: skip


def start_loop(pod: Pod, doc: dict[str, Any], **options: Any) -> Loop:
    cfg = FetchConfig.load(str(pod.write_config(doc)))
    lines: list[str] = []

    def publish(c: FetchConfig, values: Any) -> None:
        write_secrets(c, values, pod.out)

    refresher = Refresher(
        cfg,
        publish,
        Options(interval=options.pop("interval", INTERVAL), timeout=5, **options),
        env=pod.env,
        log=lines.append,
    )
    refresher.start(timeout=20, propagation_window=10)
    stop = threading.Event()
    thread = threading.Thread(target=refresher.run, args=(stop,), daemon=True)
    thread.start()
    return Loop(refresher, stop, thread, pod.out, lines)


def wait_for(predicate: Any, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, or None after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def read(out: Path, name: str) -> str:
    return (out / name).read_text()


@pytest.fixture
def loop_guard() -> Iterator[list[Loop]]:
    loops: list[Loop] = []
    yield loops
    for running in loops:
        running.halt()


def test_each_store_change_reaches_the_file_within_interval_plus_one_second(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    t = three_stores(sandbox, tmp_path)
    running = start_loop(t.pod, t.doc)
    loop_guard.append(running)
    assert read(running.out, "api-key") == "CANARY-r1-kv-0"
    time.sleep(1.5)  # a cycle or two: versions are now known

    changes = [
        ("api-key", lambda: sandbox.azure.set_secret(t.kv, "api-key", "CANARY-r1-kv-1")),
        ("db-password",
         lambda: put_vault(sandbox, t.vault_path, {"password": "CANARY-r1-vault-1"})),
        ("cache-token",
         lambda: set_k8s(sandbox, t.pod, t.k8s_name, "token", "CANARY-r1-k8s-1")),
    ]  # fmt: skip
    for name, change in changes:
        change()
        took = wait_for(lambda n=name: read(running.out, n).endswith("-1"), INTERVAL + 1.0)
        assert took is not None, f"{name} did not change within interval + 1 s"
    assert not any("CANARY" in line for line in running.lines)


def snapshot(out: Path, names: list[str]) -> tuple[str, ...] | None:
    """The whole set as a reader that wants one consistent set reads it: through the
    ``..data`` link, resolved once (kubelet's AtomicWriter layout); None when that folder
    was swapped away mid-read (a reader then simply reads again)."""
    try:
        folder = out / os.readlink(out / "..data")
    except OSError:
        folder = out  # no ..data link: plain files
    try:
        return tuple((folder / n).read_text() for n in names)
    except FileNotFoundError:
        return None


def test_a_reader_never_sees_a_mix_during_20_changes(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    """Five keys of one Vault secret, all changed by each of 20 writes."""
    pod = make_pod(sandbox, tmp_path)
    base = unique("mix")
    vault_role(sandbox, pod, [f"secret/data/{base}/*", f"secret/metadata/{base}/*"])
    names = [f"k{i}" for i in range(5)]
    put_vault(sandbox, f"{base}/set", {n: "gen-0" for n in names})
    doc = config(
        pod, [{"name": n, "from": f"vault://secret/{base}/set#{n}"} for n in names], sb=sandbox
    )
    running = start_loop(pod, doc)
    loop_guard.append(running)
    seen: list[tuple[str, ...]] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            got = snapshot(running.out, names)
            if got is not None:
                seen.append(got)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    try:
        for gen in range(1, 21):
            put_vault(sandbox, f"{base}/set", {n: f"gen-{gen}" for n in names})
            assert wait_for(lambda g=gen: read(running.out, "k4") == f"gen-{g}", INTERVAL + 2)
    finally:
        done.set()
        for th in threads:
            th.join()
    mixed = [s for s in seen if len(set(s)) != 1]
    # the readers kept up (the last generation may come after they stop)
    assert len({s[0] for s in seen}) >= 15
    assert mixed == [], f"{len(mixed)} of {len(seen)} reads saw a mix, e.g. {mixed[:3]}"


def test_unchanged_versions_cost_at_most_one_small_request_per_secret(
    sandbox: Any, tmp_path: Path
) -> None:
    """Counted in the fakes' call logs (Key Vault, Kubernetes) and OpenBao's audit log."""
    t = three_stores(sandbox, tmp_path)
    cfg = FetchConfig.load(str(t.pod.write_config(t.doc)))
    refresher = Refresher(
        cfg, lambda c, v: write_secrets(c, v, t.pod.out), Options(interval=60, timeout=5),
        env=t.pod.env,
    )  # fmt: skip
    refresher.start(timeout=20, propagation_window=10)
    try:
        refresher.cycle()  # learns the versions
        kv_app = sandbox.azure.apps[f"keyvault-{t.kv.lower()}"]
        kube_app = sandbox.kube.app
        kv_before, kube_before = len(kv_app.calls), len(kube_app.calls)
        report = refresher.cycle()
        assert report.ok and not report.changed and report.requests <= 3
        kv_calls = kv_app.calls[kv_before:]
        kube_calls = [c for c in kube_app.calls[kube_before:] if "/secrets/" in c.path]
        assert len(kv_calls) <= 1, kv_calls
        assert len(kube_calls) <= 1, kube_calls
    finally:
        refresher.close()


def test_a_store_down_for_three_intervals_keeps_the_last_set_then_recovers(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    t = three_stores(sandbox, tmp_path)
    running = start_loop(t.pod, t.doc, stale_after=2.0)
    loop_guard.append(running)
    health = running.refresher.health
    faults = sandbox.azure.faults("keyvault")
    faults.fail_next(100_000, 503)
    try:
        time.sleep(3 * INTERVAL + 0.5)
        assert read(running.out, "api-key") == "CANARY-r1-kv-0"
        assert read(running.out, "db-password") == "CANARY-r1-vault-0"
        status, body = health.livez()
        assert status == 503 and "keyvault:" in body, body
        assert (
            health.metrics.get(
                "secretsboot_refresh_failures_total", store="keyvault", reason="unavailable"
            )
            >= 1
        )
        sandbox.azure.set_secret(t.kv, "api-key", "CANARY-r1-kv-after")
    finally:
        faults.clear()
    assert wait_for(lambda: read(running.out, "api-key") == "CANARY-r1-kv-after", 2 * INTERVAL + 2)
    assert wait_for(lambda: health.livez()[0] == 200, 3)
    failures = [line for line in running.lines if "keyvault unavailable" in line]
    assert failures and all(line.count("\n") == 0 for line in failures)


def test_a_rotated_projected_token_is_used_by_the_next_refresh(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    pod = make_pod(sandbox, tmp_path)
    token_file = Path(pod.env["SECRETSBOOT_SERVICEACCOUNT_DIR"]) / "token"
    # a token that expires 3 s from now: only a re-read of the file keeps the loop working
    token_file.write_text(sandbox.kube.app.mint_token(pod.namespace, pod.service_account, None, 3))
    _k8s_secret(sandbox, pod, "db", {"pw": "CANARY-rot-0"})
    doc = config(pod, [{"name": "db-pw", "from": "k8s://db#pw"}])
    running = start_loop(pod, doc)
    loop_guard.append(running)
    time.sleep(1.0)
    fresh = sandbox.kube.app.mint_token(pod.namespace, pod.service_account, None, 3600)
    tmp = token_file.with_name("token.new")
    tmp.write_text(fresh)
    tmp.replace(token_file)  # the kubelet swaps the file atomically
    time.sleep(3.0)  # the first token has now expired
    set_k8s(sandbox, pod, "db", "pw", "CANARY-rot-1")
    assert wait_for(lambda: read(running.out, "db-pw") == "CANARY-rot-1", INTERVAL + 1.5)
    assert any("was rotated; using the new token" in line for line in running.lines)
    assert not any("denied" in line for line in running.lines)


def test_a_vault_token_at_its_max_ttl_is_replaced_by_a_fresh_login(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("ttl")
    short_lived_role(sandbox, pod, base, ttl="2s", max_ttl="2s")
    put_vault(sandbox, f"{base}/db", {"pw": "CANARY-ttl-0"})
    doc = config(pod, [{"name": "db", "from": f"vault://secret/{base}/db#pw"}], sb=sandbox)
    running = start_loop(pod, doc)
    loop_guard.append(running)
    time.sleep(3.0)  # past the token's max TTL
    put_vault(sandbox, f"{base}/db", {"pw": "CANARY-ttl-1"})
    assert wait_for(lambda: read(running.out, "db") == "CANARY-ttl-1", 2 * INTERVAL + 2)
    assert any("max TTL is near" in line and "logging in again" in line for line in running.lines)


def test_a_revoked_vault_token_is_replaced_by_a_fresh_login(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("revoked")
    vault_role(sandbox, pod, [f"secret/data/{base}/*", f"secret/metadata/{base}/*"])
    put_vault(sandbox, f"{base}/db", {"pw": "CANARY-rv-0"})
    doc = config(pod, [{"name": "db", "from": f"vault://secret/{base}/db#pw"}], sb=sandbox)
    running = start_loop(pod, doc)
    loop_guard.append(running)
    time.sleep(1.5)
    # an operator revokes every token of the kubernetes login (what a compromised role gets)
    sandbox.vault.request("PUT", "sys/leases/revoke-prefix/auth/kubernetes/login")
    put_vault(sandbox, f"{base}/db", {"pw": "CANARY-rv-1"})
    assert wait_for(lambda: read(running.out, "db") == "CANARY-rv-1", 2 * INTERVAL + 2)
    assert any("refused our token; logging in again" in line for line in running.lines)


def test_a_vault_token_near_expiry_is_renewed_before_the_interval(
    sandbox: Any, tmp_path: Path, loop_guard: list[Loop]
) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("renew")
    short_lived_role(sandbox, pod, base, ttl="3s", max_ttl="60s")
    put_vault(sandbox, f"{base}/db", {"pw": "CANARY-renew-0"})
    doc = config(pod, [{"name": "db", "from": f"vault://secret/{base}/db#pw"}], sb=sandbox)
    running = start_loop(pod, doc, interval=5.0)  # the token would lapse between cycles
    loop_guard.append(running)
    time.sleep(7.0)
    renewals = running.refresher.health.metrics.get(
        "secretsboot_refresh_token_renewals_total", store="vault"
    )
    assert renewals >= 2, running.lines
    assert sum("renewed the vault token" in line for line in running.lines) >= 2
    assert not any("logging in again" in line for line in running.lines), running.lines
    put_vault(sandbox, f"{base}/db", {"pw": "CANARY-renew-1"})
    assert wait_for(lambda: read(running.out, "db") == "CANARY-renew-1", 5.0 + 1.0)
    assert not any("logging in again" in line for line in running.lines), running.lines
