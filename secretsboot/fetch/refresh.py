"""``fetch --refresh INTERVAL``: keep a pod's secrets fresh after the first write.

After the first complete set is written (by :func:`~secretsboot.fetch.fetch_secrets`,
with all its start-up rules: deadline, propagation window, fallbacks, all or
nothing), the loop wakes every INTERVAL minus up to 10 % (jitter spreads a fleet's
requests and never makes a refresh later than INTERVAL), and earlier when a held
token or lease is due for renewal. Each cycle:

1. **Identity.** The projected service-account token file is checked (``stat``, no
   read unless it changed); when the kubelet has rotated it, the Kubernetes client is
   rebuilt with the new token. The federated token of workload identity is re-read
   by every Entra token request anyway. Entra tokens are re-acquired a minute before
   they expire; Vault tokens are renewed (``renew-self``) at two thirds of their TTL
   and re-acquired by a fresh login when they cannot be renewed or are refused.
2. **Versions first.** For each secret, the store is asked for the version of the
   source that supplied the value (a store's ``version(ref, timeout)``: Key Vault's
   secret version, Vault KV v2 metadata's ``current_version``, a Kubernetes
   Secret's ``resourceVersion``). An unchanged secret costs that one small request;
   a store without version support is read in full (still one request) and compared
   by fingerprint. Pinned versions (``keyvault://V/N@VERSION``) are immutable and
   cost nothing. Only changed secrets are read in full.
3. **Publish.** If any value changed, the whole set is published again with the
   same crash-atomic writer as the first write, then the app is told
   (:mod:`secretsboot.fetch.notify`).

Failures never touch the files: the last good set stays. A failing store is
logged in one line per cycle and store, counted by store and reason
(:mod:`secretsboot.fetch.health`), and retried with exponential backoff from one
second up to the interval (never more often than a healthy loop once the backoff
reaches the interval), or after the server's ``Retry-After`` when that is longer.
During refresh a store that is *unavailable* or *denies* keeps the held value (no
switching to a fallback copy and back); only *not found* walks the fallback chain. A
secret missing from every source is reported each cycle and its file kept, unless
``--remove-deleted``.

SIGTERM or SIGINT stops the loop within a second: in-flight requests are abandoned,
held Vault tokens revoked (bounded wait), and ``fetch`` exits 0.

>>> parse_interval("90"), parse_interval("90s"), parse_interval("5m"), parse_interval("1h")
(90.0, 90.0, 300.0, 3600.0)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.fetch._refresh_parts import (
    MAX_WORKERS,
    Background,
    Slots,
    TokenFile,
    Versions,
    left,
    object_key,
)
from secretsboot.fetch._threads import parallel
from secretsboot.fetch.health import HealthState
from secretsboot.fetch.retry import _JITTER
from secretsboot.fetch.runtime import Stores, fetch_secrets
from secretsboot.interval import parse_interval as parse_interval  # re-exported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    from secretsboot.backends.base import SecretStore
    from secretsboot.contract import FetchConfig, SecretEntry
    from secretsboot.fetch.notify import Notifier
    from secretsboot.refs import Ref
    from secretsboot.secret import SecretValue
else:
    from secretsboot._records import NamedTuple

Log = Callable[[str], None]
#: Publish a complete set (name -> value) for these entries; raise WriteError on failure.
Publish = Callable[["FetchConfig", Mapping[str, "SecretValue"]], None]

JITTER = 0.1
PUBLISH_GRACE = 0.2  # seconds a stop waits for a publish under way
STOP_BUDGET = 0.4  # seconds for revoking tokens on SIGTERM (the whole exit stays under 1 s)
RENEW_AT = 2 / 3  # of a token's TTL
MIN_TTL = 3.0  # seconds: a renewal granting less than this is replaced by a fresh login


class Options(NamedTuple):
    """How the loop runs (all times in seconds)."""

    interval: float
    timeout: float = 30.0  # per cycle: every request of a cycle shares this deadline
    remove_deleted: bool = False
    stale_after: float | None = None  # /livez bound; default 3 x interval
    min_backoff: float = 1.0

    @property
    def live_bound(self) -> float:
        return self.stale_after if self.stale_after is not None else 3 * self.interval


class Held:
    """What we hold for one secret: which source supplied it, at which version, the value."""

    __slots__ = ("deleted", "source", "value", "version")

    def __init__(self, value: SecretValue | None = None) -> None:
        self.value = value
        self.source: int | None = None
        self.version: str | None = None
        self.deleted = False


class Outcome(NamedTuple):
    """The result of checking one secret in one cycle."""

    name: str
    kind: str  # unchanged | changed | deleted | failed
    store: str = ""
    reason: str = ""  # for failures: unavailable | denied | bad-input | error
    message: str = ""
    retry_after: float | None = None
    requests: int = 0
    #: for "changed": the new value, its source index and version (held once published)
    value: SecretValue | None = None
    source: int | None = None
    version: str | None = None


class CycleReport(NamedTuple):
    changed: tuple[str, ...]
    deleted: tuple[str, ...]
    failed: tuple[Outcome, ...]
    published: bool
    requests: int

    @property
    def ok(self) -> bool:
        return not self.failed


def _reason(exc: SecretsbootError) -> str:
    if isinstance(exc, UnavailableError):
        return "unavailable"
    if isinstance(exc, DeniedError):
        return "denied"
    if isinstance(exc, BadInputError):
        return "bad-input"
    return "error"


class Refresher:
    """The refresh loop of one pod (see the module docstring).

    ``publish(config, values)`` writes a complete set; ``notifiers`` are told after
    each published change; ``backends`` (scheme -> store) replaces the built-in stores
    (tests hand in fakes). Tests drive :meth:`cycle` directly; the CLI calls
    :meth:`start` then :meth:`run`.
    """

    def __init__(
        self,
        config: FetchConfig,
        publish: Publish,
        options: Options,
        *,
        env: Mapping[str, str] | None = None,
        notifiers: Sequence[Notifier] = (),
        health: HealthState | None = None,
        log: Log | None = None,
        backends: Mapping[str, SecretStore] | None = None,
    ) -> None:
        self.config = config
        self.publish = publish
        self.options = options
        self.env = os.environ if env is None else env
        self.notifiers = list(notifiers)
        self.health = health or HealthState(options.live_bound)
        self.log: Log = log or (lambda _message: None)
        self.slots = Slots(lambda: Stores(config, self.env, backends))
        self.held: dict[str, Held] = {s.name: Held() for s in config.secrets}
        self._token_files = self._watched_token_files()
        self._failures = 0
        self._retry_after: float | None = None
        self._had_success: set[str] = set()
        self._unsettled = False
        self._publishing = threading.Lock()
        self._lock = threading.Lock()
        self._no_versions: set[tuple[str, str, str, str | None]] = set()

    # -- start ------------------------------------------------------------------------
    def start(self, *, timeout: float, propagation_window: float, verbose: bool = False) -> int:
        """The first complete write (all or nothing, as a plain ``fetch``); returns its count."""
        schemes = sorted(self.config.schemes)
        values = fetch_secrets(
            self.config,
            timeout=timeout,
            propagation_window=propagation_window,
            env=self.env,
            log=self.log if verbose else None,
            backends=self.slots.all(schemes),  # kept open: the loop reuses logins and tokens
        )
        self.publish(self.config, values)
        for name, value in values.items():
            self.held[name].value = value
        self._had_success.update(schemes)
        self._note_leases(schemes)
        self.health.mark_ready()
        return len(values)

    # -- one cycle --------------------------------------------------------------------
    def cycle(self) -> CycleReport:
        """Check every secret once; publish and notify when something changed."""
        self.health.metrics.inc("secretsboot_refresh_cycles_total")
        self._rotate_identity()
        deadline = time.monotonic() + self.options.timeout
        versions = Versions()
        outcomes = parallel(
            lambda entry: self._check(entry, deadline, versions),
            list(self.config.secrets),
            MAX_WORKERS,
        )
        report = self._settle(self._confirm(outcomes, deadline))
        # a login made during this cycle (first use, or after a reset): plan its renewal
        self._note_leases([s for s in self.slots.built() if s not in self.slots.renew_due])
        return report

    def _confirm(self, outcomes: list[Outcome], deadline: float) -> list[Outcome]:
        """Secrets read in full are kept only if their object's version did not move while
        they were read: several keys of one Vault path or Kubernetes Secret, changed in one
        write, are then published together, never half old and half new."""
        entries = {s.name: s for s in self.config.secrets}
        changed = [o for o in outcomes if o.kind == "changed" and o.version is not None]
        if not changed:
            return outcomes
        again = Versions()

        def still(o: Outcome) -> Outcome:
            assert o.source is not None  # noqa: S101 - set for every "changed" outcome
            ref = entries[o.name].sources[o.source]
            store = self.slots.get(ref.scheme)
            try:
                version_of = getattr(store, "version")  # noqa: B009 - a capability, checked above
                now, asked = again.get(object_key(ref), lambda: version_of(ref, left(deadline)))
            except SecretsbootError:
                now, asked = None, True
            extra = int(asked)
            if now == o.version:
                return o._replace(requests=o.requests + extra)
            self._unsettled = True  # read again soon
            return Outcome(o.name, "unchanged", requests=o.requests + extra)

        confirmed = {o.name: o for o in parallel(still, changed, MAX_WORKERS)}
        return [confirmed.get(o.name, o) for o in outcomes]

    def _settle(self, outcomes: list[Outcome]) -> CycleReport:
        changed = [o for o in outcomes if o.kind == "changed"]
        deleted = tuple(o.name for o in outcomes if o.kind == "deleted")
        failed = tuple(o for o in outcomes if o.kind == "failed")
        requests = sum(o.requests for o in outcomes)
        removed = deleted if self.options.remove_deleted else ()
        removed = tuple(n for n in removed if self.held[n].value is not None)
        published = False
        if changed or removed:
            published = self._publish(changed, removed)
        names = tuple(o.name for o in changed)
        self._record(deleted, failed)
        if published:
            for notifier in self.notifiers:
                notifier.notify(names + removed)
        return CycleReport(names if published else (), deleted, failed, published, requests)

    def _publish(self, changed: list[Outcome], removed: tuple[str, ...]) -> bool:
        """Write the held set with the changes applied; hold the new values only once
        they are on disk (a failed write is tried again next cycle)."""
        new = {o.name: o.value for o in changed}
        config = self.config
        if removed:
            config = config._replace(
                secrets=tuple(s for s in config.secrets if s.name not in removed)
            )
        values: dict[str, SecretValue] = {}
        for entry in config.secrets:
            value = new.get(entry.name) or self.held[entry.name].value
            if value is not None:
                values[entry.name] = value
        try:
            with self._publishing:
                self.publish(config, values)
        except SecretsbootError as exc:
            self.health.failure("output", "write", exc.message)
            self.log(f"refresh: cannot publish the changed set ({exc.message}); the last set stays")
            return False
        for o in changed:
            held = self.held[o.name]
            held.value, held.source, held.version, held.deleted = (
                o.value,
                o.source,
                o.version,
                False,
            )
        for name in removed:
            self.held[name].value = None
        self.health.metrics.inc("secretsboot_refresh_publishes_total")
        self.health.metrics.inc("secretsboot_refresh_changes_total", len(changed))
        names = ", ".join([o.name for o in changed] + [f"{n} (removed)" for n in removed])
        self.log(f"refresh: published a new set: {names}")
        return True

    def _record(self, deleted: tuple[str, ...], failed: tuple[Outcome, ...]) -> None:
        for name in deleted:
            self.health.metrics.inc("secretsboot_refresh_deleted_total")
            kept = "removed" if self.options.remove_deleted else "its file is kept"
            self.log(f"refresh: secret '{name}' is deleted in every source; {kept}")
        by_store: dict[tuple[str, str], list[Outcome]] = {}
        for o in failed:
            by_store.setdefault((o.store, o.reason), []).append(o)
        for (store, reason), items in sorted(by_store.items()):
            names = ", ".join(sorted(f"'{o.name}'" for o in items))
            line = f"{items[0].message} (secrets {names})"
            self.health.failure(store, reason, line)
            self.log(f"refresh: {store} {reason}: {line}; the last good set stays")
        if failed:
            self._failures += 1
            hints = [o.retry_after for o in failed if o.retry_after]
            self._retry_after = max(hints) if hints else None
        else:
            if self._failures:
                self.log(f"refresh: recovered after {self._failures} failed cycle(s)")
            self._failures = 0
            self._retry_after = None
            self.health.success()

    # -- one secret ---------------------------------------------------------------------
    def _check(self, entry: SecretEntry, deadline: float, versions: Versions) -> Outcome:
        held = self.held[entry.name]
        requests = 0
        for index, ref in enumerate(entry.sources):
            if ref.version and held.source == index and held.value is not None:
                return Outcome(entry.name, "unchanged")  # a pinned version never changes
            try:
                outcome = self._check_source(entry.name, held, index, ref, deadline, versions)
            except NotFoundError:
                requests += 1
                continue  # as at start: a missing source hands over to the next one
            except SecretsbootError as exc:
                retry_after = getattr(exc, "retry_after", None)
                return Outcome(
                    entry.name, "failed", ref.scheme, _reason(exc), exc.message, retry_after,
                    requests + 1,
                )  # fmt: skip
            except Exception as exc:  # a bug in a client: never its text (may hold data)
                message = f"internal error {type(exc).__name__} checking {ref}"
                return Outcome(entry.name, "failed", ref.scheme, "error", message, None, requests)
            return outcome._replace(requests=requests + outcome.requests)
        return Outcome(entry.name, "deleted", requests=requests)

    def _check_source(
        self, name: str, held: Held, index: int, ref: Ref, deadline: float, versions: Versions
    ) -> Outcome:
        store = self.slots.get(ref.scheme)
        key = object_key(ref)
        used = 0
        version_of = getattr(store, "version", None)
        version: str | None = None
        denied: DeniedError | None = None
        if version_of is not None and key not in self._no_versions:
            try:
                version, asked = versions.get(key, lambda: version_of(ref, left(deadline)))
            except DeniedError as exc:  # e.g. no read on Vault's metadata/ path
                denied, asked = exc, True
            used += int(asked)
            if held.value is not None and held.source == index and version == held.version:
                self._had_success.add(ref.scheme)
                return Outcome(name, "unchanged", requests=used)
        value = store.get(ref, left(deadline))
        used += 1
        self._had_success.add(ref.scheme)
        if denied is not None:
            self._versions_denied(key, ref, denied)
        if held.value is not None and held.value == value:
            held.source, held.version, held.deleted = index, version, False  # same value
            return Outcome(name, "unchanged", requests=used)
        return Outcome(
            name, "changed", ref.scheme, requests=used, value=value, source=index, version=version
        )

    def _versions_denied(
        self, key: tuple[str, str, str, str | None], ref: Ref, exc: DeniedError
    ) -> None:
        """The value may be read but not its version: check this object by full reads
        from now on (still one request a cycle), and say once how to make it cheaper."""
        with self._lock:
            if key in self._no_versions:
                return
            self._no_versions.add(key)
        self.log(
            f"refresh: {ref} can be read but its version cannot ({exc.message}); checking it "
            "by full reads (for Vault KV v2, grant read on MOUNT/metadata/PATH too)"
        )

    # -- identity -------------------------------------------------------------------------
    def _watched_token_files(self) -> dict[str, TokenFile]:
        """The Kubernetes client holds the token it was built with: watch its file."""
        if "k8s" not in self.config.schemes or not self.env.get("KUBERNETES_SERVICE_HOST"):
            return {}
        from secretsboot.identity.kubernetes import serviceaccount_dir

        return {"k8s": TokenFile(os.path.join(serviceaccount_dir(self.env), "token"))}

    def _rotate_identity(self) -> None:
        for scheme, token_file in self._token_files.items():
            if token_file.changed():
                self.log(f"refresh: {token_file.path} was rotated; using the new token")
                self.slots.reset(scheme)
                self.health.metrics.inc("secretsboot_refresh_token_renewals_total", store=scheme)
        now = time.monotonic()
        for scheme, due in list(self.slots.renew_due.items()):
            if now >= due:
                self._renew(scheme)

    def _note_leases(self, schemes: Sequence[str]) -> None:
        """When a store tells how long its token lives, plan its renewal at 2/3 of that."""
        for scheme in schemes:
            try:
                store = self.slots.get(scheme)
            except SecretsbootError:
                continue
            ttl_of = getattr(store, "token_ttl", None)
            ttl = ttl_of() if ttl_of is not None else None
            if ttl:
                self.slots.renew_due[scheme] = time.monotonic() + ttl * RENEW_AT

    def _renew(self, scheme: str) -> None:
        store = self.slots.get(scheme)
        renew = getattr(store, "renew_token", None)
        try:
            if renew is None:
                raise DeniedError("the store cannot renew its token")
            renew(left(time.monotonic() + self.options.timeout))
            ttl = getattr(store, "token_ttl", lambda: None)()
            if ttl is not None and ttl < MIN_TTL:
                raise DeniedError(f"renewed for {ttl:.0f}s only (its max TTL is near)")
            self.log(f"refresh: renewed the {scheme} token")
        except SecretsbootError as exc:
            # not renewable, past its max TTL, or refused: a fresh login next time
            self.log(f"refresh: cannot renew the {scheme} token ({exc.message}); logging in again")
            self.slots.reset(scheme)
        self.health.metrics.inc("secretsboot_refresh_token_renewals_total", store=scheme)
        self._note_leases([scheme])

    def refused_tokens(self, report: CycleReport) -> list[str]:
        """Stores that worked before and now deny: they hold a dead token (expired or
        revoked). Each is rebuilt, so its next use logs in afresh."""
        stale = sorted({o.store for o in report.failed if o.reason == "denied"} & self._had_success)
        for scheme in stale:
            self.log(f"refresh: {scheme} refused our token; logging in again")
            self.slots.reset(scheme)
            self.health.metrics.inc("secretsboot_refresh_token_renewals_total", store=scheme)
            self._had_success.discard(scheme)
        return stale

    # -- the loop ---------------------------------------------------------------------
    def next_delay(self) -> float:
        """Seconds until the next cycle: the interval minus jitter, a backoff after
        failures (at least ``Retry-After``), and never past a due token renewal."""
        interval = self.options.interval
        if self._unsettled:
            self._unsettled = False
            return self.options.min_backoff
        if self._failures:
            base = min(interval, self.options.min_backoff * 2 ** (self._failures - 1))
            delay = _JITTER.uniform(base / 2, base)
            if self._retry_after:
                delay = max(delay, self._retry_after)
        else:
            delay = _JITTER.uniform(interval * (1 - JITTER), interval)
        now = time.monotonic()
        for due in self.slots.renew_due.values():
            delay = min(delay, max(0.0, due - now))
        return delay

    def run(self, stop: threading.Event) -> None:
        """Cycle until ``stop`` is set; then revoke what we hold (bounded) and return."""
        try:
            while not stop.wait(self.next_delay()):
                self.health.beat()
                worker = Background(self._one_cycle)
                if not worker.wait_or_stop(stop):
                    break  # stopped mid-cycle: abandon the in-flight requests
        finally:
            # a publish under way finishes (milliseconds) before we exit; the writer is
            # crash-atomic anyway, this only spares the next start its clean-up
            if self._publishing.acquire(timeout=PUBLISH_GRACE):
                self._publishing.release()
            self.close(STOP_BUDGET)

    def _one_cycle(self) -> None:
        report = self.cycle()
        stale = self.refused_tokens(report) if report.failed else []
        if stale:
            self.cycle()  # at once, with fresh logins (unchanged secrets: one version check)
            self._note_leases(stale)

    def close(self, budget: float = STOP_BUDGET) -> None:
        """Close every store (Vault: ``revoke-self``), waiting at most ``budget`` seconds."""
        closer = threading.Thread(target=self.slots.close, name="secretsboot-revoke", daemon=True)
        closer.start()
        closer.join(budget)
