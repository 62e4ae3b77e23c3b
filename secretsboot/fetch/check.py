"""``secretsboot fetch --check``: fetch everything a service would, write nothing, report.

One result per secret: the source that answered, who we were to that store, and the
value's fingerprint; or the failure with its fix. Unlike a fetch, one failing
secret does not stop the others, so the report is complete.

>>> results = check_secrets(FetchConfig.load("fetch.yaml"), timeout=30)  # doctest: +SKIP
>>> print(render(results, "table"))                                      # doctest: +SKIP
ok    db-password  keyvault://kv-orders/db-password  as workload identity ...  sha256:1a2b3c4d5e6f
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping

from secretsboot.contract import FetchConfig, SecretEntry
from secretsboot.errors import SecretsbootError, exit_code_for
from secretsboot.fetch._threads import parallel
from secretsboot.fetch.runtime import MAX_THREADS, Stores, fetch_secrets

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple, Unpack

    from secretsboot.backends.base import SecretStore
    from secretsboot.fetch.runtime import Tuning
    from secretsboot.refs import Ref
    from secretsboot.secret import SecretValue
else:
    from secretsboot._records import NamedTuple


class CheckResult(NamedTuple):
    """One secret's outcome: ``fingerprint`` when it was fetched, else ``error``."""

    name: str
    source: str
    identity: str
    fingerprint: str | None = None
    error: SecretsbootError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "ok": self.ok, "source": self.source}
        out["identity"] = self.identity
        if self.error is None:
            out["fingerprint"] = self.fingerprint
        else:
            out["error"] = _one_line(self.error)
            out["exitCode"] = exit_code_for(self.error)
        return out


def check_secrets(
    config: FetchConfig,
    *,
    env: Mapping[str, str] | None = None,
    log: Callable[[str], None] | None = None,
    backends: Mapping[str, SecretStore] | None = None,
    **tuning: Unpack[Tuning],
) -> list[CheckResult]:
    """Fetch each secret of ``config`` as ``fetch`` would (same sources, fallbacks,
    retries and deadline), all in parallel, and return one result per secret in order.

    ``env`` replaces ``os.environ`` (``provision --verify`` passes a service's minted
    tokens); ``backends`` (scheme -> store) replaces the built-in stores, and ``timeout``,
    ``propagation_window`` and ``clock`` tune each fetch, all as in
    :func:`~secretsboot.fetch.runtime.fetch_secrets`. Nothing is written; values are
    dropped once fingerprinted.
    """
    env = os.environ if env is None else env
    stores = Stores(config, env, backends)
    built: dict[str, SecretStore] = {}
    for scheme in sorted(config.schemes):
        # a store that cannot be built is reported by each of its secrets' own fetch
        with contextlib.suppress(SecretsbootError):
            built[scheme] = stores.get(scheme)
    results: dict[str, CheckResult] = {}

    def one(entry: SecretEntry) -> None:
        used: list[Ref] = [entry.sources[0]]

        def watch(message: str) -> None:
            # the runtime says "...; trying URI" when it moves to a fallback
            for ref in entry.sources[1:]:
                if message.endswith(f"; trying {ref}"):
                    used.append(ref)
            if log is not None:
                log(message)

        value: SecretValue | None = None
        error: SecretsbootError | None = None
        try:
            values = fetch_secrets(
                config._replace(secrets=(entry,)), env=env, log=watch, backends=built, **tuning
            )
            value = values[entry.name]
        except SecretsbootError as exc:
            error = exc
        source = used[-1]
        results[entry.name] = CheckResult(
            name=entry.name,
            source=str(source),
            identity=_identity(built.get(source.scheme)),
            fingerprint=value.fingerprint if value is not None else None,
            error=error,
        )

    try:
        parallel(one, list(config.secrets), MAX_THREADS)
    finally:
        stores.close()
    return [results[s.name] for s in config.secrets]


def _identity(store: SecretStore | None) -> str:
    if store is None:
        return "(no client: see the error)"
    try:
        return store.describe_identity()
    except SecretsbootError as exc:
        return f"(unknown: {exc.message})"


def _one_line(exc: SecretsbootError) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def exit_code(results: list[CheckResult]) -> int:
    """0 when every secret was fetched, else the exit code ``fetch`` would have given."""
    for r in results:
        if r.error is not None:
            return exit_code_for(r.error)
    return 0


def render(results: list[CheckResult], output: str = "table") -> str:
    """The report: ``table`` (one line per secret, aligned) or ``json``."""
    if output == "json":
        return json.dumps([r.to_dict() for r in results], indent=2)
    width = max(len(r.name) for r in results)
    source_width = max(len(r.source) for r in results)
    lines = []
    for r in results:
        head = f"{'ok' if r.ok else 'FAIL':<5} {r.name:<{width}}  {r.source:<{source_width}}"
        tail = r.fingerprint if r.error is None else _one_line(r.error)
        lines.append(f"{head}  as {r.identity}  {tail}")
    ok = sum(r.ok for r in results)
    lines.append(f"{ok} of {len(results)} secrets fetched; nothing was written")
    return "\n".join(lines)
