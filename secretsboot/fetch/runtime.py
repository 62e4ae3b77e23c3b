"""The fetch runtime: resolve -> fetch every secret in parallel -> walk fallbacks.

For each secret the sources are tried in order. A source that is *not found*,
or stays *unavailable* after retries, hands over to the next one; a *denial*
fails the secret (unless ``fallbackOnDenied: true``): silently reading a stale
fallback because a grant was lost is how outages hide. Bad input fails at once.

Only the backends a config uses are built, and each imports its client lazily,
so an Azure-only fetch never imports a Vault or Kubernetes client.

>>> fetch_secrets(FetchConfig.from_env({"SECRETSBOOT_SECRETS": "db=k8s://db#pw"}),
...     timeout=1)  # doctest: +SKIP
{'db': SecretValue(sha256:...)}
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping

from secretsboot.contract import FetchConfig, SecretEntry
from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    PropagationPendingError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.fetch._threads import parallel
from secretsboot.fetch.retry import Aborted, RetryPolicy, SystemClock, retry_call
from secretsboot.secret import SecretValue
from secretsboot.transport import Deadline

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple, TypedDict

    from secretsboot.backends.base import SecretStore
    from secretsboot.fetch.retry import Clock
    from secretsboot.identity.azure import TokenSource
    from secretsboot.refs import Ref

    class Tuning(TypedDict, total=False):
        """How long and how hard a fetch tries: the keywords of :func:`fetch_secrets`
        that :func:`~secretsboot.fetch.check.check_secrets` passes on untouched."""

        timeout: float
        propagation_window: float
        clock: Clock | None
else:
    from secretsboot._records import NamedTuple

MAX_THREADS = 16
#: one attempt's share of the deadline: a silent server still leaves time to retry
ATTEMPT_BUDGET = 10.0
#: closing (Vault revoke-self) may run this long past a deadline that has passed
CLOSE_BUDGET = 0.5


class Stores:
    """The backends of one fetch, built on first use (thread-safe) and closed together.

    Each scheme's backend comes from its module in :data:`secretsboot.backends.STORES`;
    this object is the context they are built with (config, env, Azure tokens).
    """

    def __init__(
        self,
        config: FetchConfig,
        env: Mapping[str, str],
        given: Mapping[str, SecretStore] | None = None,
    ) -> None:
        self.config = config
        self.env = env
        self._given = dict(given or {})
        self._stores: dict[str, SecretStore] = {}
        self._azure: TokenSource | None = None
        self._lock = threading.Lock()

    def get(self, scheme: str) -> SecretStore:
        with self._lock:
            store = self._stores.get(scheme) or self._given.get(scheme)
            if store is None:
                from secretsboot.backends import build_store

                store = build_store(scheme, self)
                self._stores[scheme] = store
            return store

    def close(self, deadline: Deadline | None = None) -> None:
        with self._lock:
            stores, self._stores = list(self._stores.values()), {}
            azure, self._azure = self._azure, None
        for store in stores:
            store.close(deadline)
        if azure is not None:
            azure.close()

    def azure_tokens(self) -> TokenSource:
        """One Azure token source per fetch, shared by Key Vault and Vault azure/jwt login."""
        if self._azure is None:
            from secretsboot.identity.azure import token_source

            az = self.config.azure
            self._azure = token_source(
                self.config.identity,
                self.env,
                tenant_id=az.tenant_id if az else None,
                client_id=az.client_id if az else None,
                authority_host=az.authority_host if az else None,
                ca_file=az.ca_cert if az else None,
            )
        return self._azure


class _Outcome:
    __slots__ = ("aborted", "error", "value")

    def __init__(self) -> None:
        self.value: SecretValue | None = None
        self.error: SecretsbootError | None = None
        #: stopped retrying because another secret had already failed for good
        self.aborted = False


def fetch_secrets(
    config: FetchConfig,
    *,
    timeout: float = 60.0,
    propagation_window: float = 30.0,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
    log: Callable[[str], None] | None = None,
    backends: Mapping[str, SecretStore] | None = None,
) -> dict[str, SecretValue]:
    """Fetch every secret of ``config`` in parallel; all or nothing.

    Returns ``{secret name: SecretValue}``. On any failure raises one error of
    our tree whose message has one line per failing secret (source, identity,
    likely fix), never a value. Vault tokens obtained are revoked before return.
    ``backends`` (scheme -> store) replaces the built-in stores: tests hand in fakes.

    >>> values = fetch_secrets(FetchConfig.load("fetch.yaml"), timeout=30)  # doctest: +SKIP
    """
    # All or nothing: once one secret has failed for good, the others stop retrying.
    abort = threading.Event()
    clock = clock or SystemClock(abort)
    policy = RetryPolicy.starting(clock, timeout=timeout, propagation_window=propagation_window)
    stores = Stores(config, os.environ if env is None else env, backends)
    outcomes: dict[str, _Outcome] = {s.name: _Outcome() for s in config.secrets}
    run = _Run(config, stores, policy, clock, log, abort.is_set)

    def work(entry: SecretEntry) -> None:
        outcome = outcomes[entry.name]
        try:
            outcome.value = run.secret(entry)
        except Aborted as exc:
            outcome.aborted = True
            last = exc.last
            outcome.error = last if isinstance(last, SecretsbootError) else SecretsbootError("")
        except SecretsbootError as exc:
            outcome.error = exc
        except Exception as exc:  # a bug in a client: report it without its text (may hold data)
            outcome.error = SecretsbootError(
                f"secret '{entry.name}': internal error {type(exc).__name__}"
            )
        if outcome.error is not None and not outcome.aborted:
            abort.set()

    try:
        parallel(work, list(config.secrets), MAX_THREADS)
    finally:
        left = policy.remaining(clock)
        stores.close(Deadline.after(CLOSE_BUDGET if left <= 0 else min(left, 2.0)))
    failures = [(n, o.error) for n, o in outcomes.items() if o.error and not o.aborted]
    if failures:
        stopped = sorted(n for n, o in outcomes.items() if o.aborted)
        raise _combine(failures, stopped)
    return {n: o.value for n, o in outcomes.items() if o.value is not None}


class _Run(NamedTuple):
    """What every secret of one fetch shares: its stores, the retry policy and clock,
    the log, and whether the fetch has already failed (then retries stop)."""

    config: FetchConfig
    stores: Stores
    policy: RetryPolicy
    clock: Clock
    log: Callable[[str], None] | None
    cancelled: Callable[[], bool]

    def secret(self, entry: SecretEntry) -> SecretValue:
        """The value of ``entry`` from its first source that gives one (fallbacks in order)."""
        tried: list[str] = []
        last: SecretsbootError | None = None
        for i, ref in enumerate(entry.sources):
            is_last = i == len(entry.sources) - 1
            try:
                return self._from_source(entry.name, ref, is_last)
            except NotFoundError as exc:
                last = exc
            except UnavailableError as exc:
                last = exc
            except DeniedError as exc:
                last = exc
                if not self.config.fallback_on_denied or is_last:
                    tried.append(f"{ref}: {exc}")
                    break
            except BadInputError as exc:  # retrying or falling back cannot fix the request
                last = exc
                tried.append(f"{ref}: {exc}")
                break
            tried.append(f"{ref}: {last}")
            if not is_last and self.log is not None:
                self.log(
                    f"secret '{entry.name}': {ref} failed ({type(last).__name__}); "
                    f"trying {entry.sources[i + 1]}"
                )
        assert last is not None  # noqa: S101 - every source either returned or failed
        message = f"secret '{entry.name}': " + "; then ".join(tried)
        return _raise_like(last, message)

    def _from_source(self, name: str, ref: Ref, last: bool) -> SecretValue:
        store = self.stores.get(ref.scheme)
        deadline = Deadline(self.policy.deadline, self.clock.monotonic)
        log = self.log

        def attempt() -> SecretValue:
            return store.get(ref, deadline.capped(ATTEMPT_BUDGET))

        def on_retry(n: int, exc: Exception, wait: float) -> None:
            if log is not None:
                log(f"secret '{name}' {ref}: retry {n} in {wait:.2f}s ({exc})")

        # the last source is retried until the deadline; one with a fallback after it is not
        return retry_call(
            attempt,
            self.policy,
            self.clock,
            on_retry=on_retry,
            cancelled=self.cancelled,
            until_deadline=last,
        )


def _raise_like(exc: SecretsbootError, message: str) -> SecretValue:
    if isinstance(exc, PropagationPendingError):
        raise DeniedError(message)
    if isinstance(exc, UnavailableError):
        raise UnavailableError(message, retry_after=exc.retry_after)
    for cls in (BadInputError, DeniedError, NotFoundError):
        if isinstance(exc, cls):
            raise cls(message)
    raise SecretsbootError(message)


def _combine(failures: list[tuple[str, SecretsbootError]], stopped: list[str]) -> SecretsbootError:
    """One error, of the first failure's kind, with one line per failing secret (and one
    naming the secrets whose retries were stopped because the fetch had failed)."""
    first = failures[0][1]
    lines = [str(e) for _, e in failures]
    if stopped:
        names = ", ".join(f"'{n}'" for n in stopped)
        lines.append(f"not fetched, retries stopped after the failure above: {names}")
    text = "\n".join(lines)
    for cls in (BadInputError, DeniedError, NotFoundError, UnavailableError):
        if isinstance(first, cls):
            return cls(text)
    return SecretsbootError(text)


def env_for(config: FetchConfig, values: Mapping[str, SecretValue]) -> dict[str, str]:
    """``{VAR: value}`` for ``run``: each secret's ``env`` name or its upper-cased name."""
    return {s.env_var: values[s.name].reveal() for s in config.secrets}
