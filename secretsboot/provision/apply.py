"""Plan and apply: observe every system, diff, check, then write in dependency order.

::

    prov = Provisioner.connect(spec, Options(prune=False))
    plan = prov.plan()          # reads only
    result = prov.apply(plan)   # preflight, then writes rank by rank

Order: deletes first (reverse dependency order), then rank 0 (identities,
namespaces, Vault policies), then the desired state is rebuilt with the
identities' client and principal ids and ranks 1..3 follow (federated
credentials, service accounts, CRDs and Secrets; role assignments, Roles and
access policies; RoleBindings). Within a rank every change runs concurrently in
a thread pool, so services proceed in parallel. Nothing is written until every
system was read and checked (the preflight); a failed rank stops the run before
the ranks that depend on it. Every name is deterministic, so a run killed at any
point is completed by the next one, without duplicates.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.provision import desired as desired_mod
from secretsboot.provision.desired import FIC_LIMIT, DesiredState, IdentityInfo
from secretsboot.provision.model import (
    ANY_VALUE,
    Action,
    Change,
    Desired,
    Note,
    Observed,
    Plan,
    ResourceKey,
    System,
    diff,
)
from secretsboot.provision.ownership import stamp
from secretsboot.secret import SecretValue
from secretsboot.spec import Spec

MAX_ATTEMPTS = 4


class Backend(Protocol):
    system: System
    calls: int

    def apply(self, change: Change) -> None: ...

    def close(self) -> None: ...


@dataclass
class Options:
    only: str | None = None
    prune: bool = False
    sync_fallbacks: bool = False
    configmaps: bool = True
    workers: int = 16
    progress: bool = False
    before_write: Callable[[Change], None] | None = None
    """Called before every write (tests use it to kill a run after N writes)."""


@dataclass
class ApplyResult:
    applied: list[Change] = field(default_factory=list)
    writes: int = 0
    seconds: float = 0.0


@dataclass
class _State:
    desired: DesiredState
    observed: dict[ResourceKey, Observed]
    fallback_values: dict[tuple[str, str, str], SecretValue]


_ERROR_KINDS: dict[str, type[SecretsbootError]] = {
    "not-found": NotFoundError,
    "bad-input": BadInputError,
    "unavailable": UnavailableError,
    "denied": DeniedError,
}


def refusal(plan: Plan) -> SecretsbootError | None:
    """The error a plan with failed checks ends in (None when every check passed): the
    first failed check, its fix, and how many more failed."""
    errors = plan.errors
    if not errors:
        return None
    first = errors[0]
    more = f" (and {len(errors) - 1} more failed checks)" if len(errors) > 1 else ""
    cls = _ERROR_KINDS.get(first.kind, BadInputError)
    return cls(f"{first.message}{more}; nothing was written anywhere", hint=first.detail or None)


class Provisioner:
    """Plans and applies one spec against the backends it needs."""

    def __init__(self, spec: Spec, backends: dict[System, Any], options: Options) -> None:
        self.spec = spec
        self.backends = backends
        self.options = options
        self._state: _State | None = None
        self._fetch_cache: dict[str, str] = {}
        self._problems: list[Note] = []

    @classmethod
    def connect(cls, spec: Spec, options: Options) -> Provisioner:
        """Connect to every system the spec (or ``--prune``) needs."""
        cache: dict[str, str] = {}
        probe = desired_mod.build(spec, identities={}, only=options.only, fetch_cache=cache)
        systems = {d.system for d in probe.objects}
        backends: dict[System, Any] = {}
        try:
            if spec.azure is not None and (System.AZURE in systems or options.prune):
                from secretsboot.provision.azure import AzureBackend

                backends[System.AZURE] = AzureBackend.connect(spec)
            if System.KUBERNETES in systems or options.prune:
                from secretsboot.provision.kubernetes import KubernetesBackend

                backends[System.KUBERNETES] = KubernetesBackend.connect(spec)
            if spec.vault is not None and (System.VAULT in systems or options.prune):
                from secretsboot.provision.vault import VaultBackend

                backends[System.VAULT] = VaultBackend.connect(spec)
        except BaseException:
            for b in backends.values():
                b.close()
            raise
        prov = cls(spec, backends, options)
        prov._fetch_cache = cache
        return prov

    def close(self) -> None:
        for b in self.backends.values():
            b.close()

    def __enter__(self) -> Provisioner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def calls(self) -> dict[str, int]:
        return {str(s): b.calls for s, b in self.backends.items()}

    # -- plan --------------------------------------------------------------------------

    def _identities(self) -> dict[str, IdentityInfo]:
        az = self.backends.get(System.AZURE)
        return dict(az.identities) if az is not None else {}

    def _build(self, fallback_values: dict[tuple[str, str, str], SecretValue]) -> DesiredState:
        return desired_mod.build(
            self.spec,
            identities=self._identities(),
            subscription_id=self._subscription(),
            only=self.options.only,
            fallback_values=fallback_values,
            configmaps=self.options.configmaps,
            fetch_cache=self._fetch_cache,
        )

    def _subscription(self) -> str | None:
        az = self.backends.get(System.AZURE)
        return str(az.settings.subscription_id) if az is not None else None

    def observe(self) -> dict[ResourceKey, Observed]:
        """Read every system (concurrently, one thread per system)."""
        first = desired_mod.build(
            self.spec,
            identities={},
            subscription_id=self._subscription(),
            only=self.options.only,
            configmaps=self.options.configmaps,
            fetch_cache=self._fetch_cache,
        )
        jobs: list[Callable[[], dict[ResourceKey, Observed]]] = []
        for system, backend in self.backends.items():
            if system is System.VAULT:
                jobs.append(functools.partial(backend.observe, first.objects))
            else:
                jobs.append(
                    functools.partial(backend.observe, first.objects, prune=self.options.prune)
                )
        observed: dict[ResourceKey, Observed] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            futures = [pool.submit(j) for j in jobs]
            errors = []
            for f in futures:
                try:
                    observed.update(f.result())
                except SecretsbootError as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
        self._problems = [n for b in self.backends.values() for n in getattr(b, "problems", [])]
        kube = self.backends.get(System.KUBERNETES)
        if kube is not None and hasattr(kube, "check_primaries"):
            self._problems += kube.check_primaries(first.k8s_primaries)
        return observed

    def plan(self) -> Plan:
        """The changes that would make every system match the spec (reads only)."""
        observed = self.observe()
        values: dict[tuple[str, str, str], SecretValue] = {}
        if self.options.sync_fallbacks:
            from secretsboot.provision.sync import read_fallback_values

            values = read_fallback_values(self.spec, self.backends, self.options.only)
        state = self._build(values)
        stamp(state.objects, observed)
        self._state = _State(state, observed, values)
        changes, kept = diff(
            state.objects, observed, prune=self.options.prune, prune_filter=self._prune_filter
        )
        notes = [
            *self._problems,
            *self._fic_notes(changes, observed, state),
            *_fallback_notes(changes, self.options.sync_fallbacks),
            *state.notes,
        ]
        return Plan(changes, notes, kept)

    def _prune_filter(self, have: Observed) -> bool:
        only = self.options.only
        if only is None:
            return True
        return bool(have.services) and set(have.services) <= {only}

    def _fic_notes(
        self, changes: list[Change], observed: dict[ResourceKey, Observed], state: DesiredState
    ) -> list[Note]:
        """Federated credentials per identity after the plan; at most 20 are allowed."""
        counts: dict[str, int] = {}
        for key in observed:
            if key.kind == "federated-credential":
                counts[key.name.split("/", 1)[0]] = counts.get(key.name.split("/", 1)[0], 0) + 1
        for c in changes:
            if c.key.kind != "federated-credential":
                continue
            ident = c.key.name.split("/", 1)[0]
            if c.action is Action.CREATE:
                counts[ident] = counts.get(ident, 0) + 1
            elif c.action is Action.DELETE:
                counts[ident] = counts.get(ident, 0) - 1
        notes = []
        for ident, n in sorted(counts.items()):
            if n > FIC_LIMIT:
                users = state.identity_users.get(ident, [])
                notes.append(
                    Note(
                        ",".join(users) or ident,
                        "error",
                        f"managed identity '{ident}' would hold {n} federated credentials; "
                        f"Azure allows {FIC_LIMIT}",
                        "give some of its services their own identity (remove or change "
                        "managedIdentity so each group of at most 20 service accounts shares "
                        "one), or remove unused federated credentials from the identity",
                    )
                )
        return notes

    # -- apply -------------------------------------------------------------------------

    def apply(self, plan: Plan | None = None) -> ApplyResult:
        """Apply ``plan`` (made now when not given). Writes nothing if a check fails."""
        start = time.perf_counter()
        if plan is None or self._state is None:
            plan = self.plan()
        refused = refusal(plan)
        if refused is not None:
            raise refused
        pending = plan.pending
        self._preflight(pending)
        result = ApplyResult()
        progress = _Progress(len(pending), enabled=self.options.progress)
        try:
            going = [c for c in pending if c.action in (Action.DELETE, Action.RELEASE)]
            for rank in sorted({_delete_rank(c) for c in going}, reverse=True):
                self._run([c for c in going if _delete_rank(c) == rank], result, progress)
            writes = [c for c in pending if c.action in (Action.CREATE, Action.UPDATE)]
            self._run([c for c in writes if c.rank == 0], result, progress)
            if any(c.rank > 0 for c in writes):
                self._apply_dependent(result, progress)
        finally:
            progress.close()
        result.seconds = time.perf_counter() - start
        return result

    def _apply_dependent(self, result: ApplyResult, progress: _Progress) -> None:
        """Identities exist now: rebuild with their ids and apply the dependent ranks."""
        assert self._state is not None  # noqa: S101
        state = self._build(self._state.fallback_values)
        later_objects = [d for d in state.objects if d.rank > 0]
        stamp(later_objects, self._state.observed)
        later, _ = diff(later_objects, self._state.observed, prune=False)
        later = [c for c in later if c.action is not Action.NOOP]
        progress.retotal(len(result.applied) + len(later))
        for rank in sorted({c.rank for c in later}):
            self._run([c for c in later if c.rank == rank], result, progress)

    def _preflight(self, pending: list[Change]) -> None:
        """Observation proved every system reachable and readable; now ask each system
        whether the pending writes are allowed (ARM: the permissions API at each resource
        group and vault written to; Kubernetes: SelfSubjectAccessReview; Vault:
        sys/capabilities-self), before the first write to any of them: a denial leaves
        every system untouched. Only an ARM without the permissions API is not asked (a
        warning is logged); its 403 then surfaces at the write, naming the permission."""
        assert self._state is not None  # noqa: S101
        azure = self.backends.get(System.AZURE)
        if azure is not None:
            azure.preflight(pending)
        kube = self.backends.get(System.KUBERNETES)
        if kube is not None:
            kube.preflight(pending)
        vault = self.backends.get(System.VAULT)
        if vault is not None and any(c.key.system == System.VAULT for c in pending):
            vault.preflight(self._state.desired.objects)

    def _run(self, changes: list[Change], result: ApplyResult, progress: _Progress) -> None:
        if not changes:
            return
        lock = threading.Lock()
        failures: list[BaseException] = []

        def one(change: Change) -> None:
            backend = self.backends[System(change.key.system)]
            try:
                if self.options.before_write is not None:
                    self.options.before_write(change)
                _with_retries(lambda: backend.apply(change))
            except BaseException as exc:
                with lock:
                    failures.append(exc)
                return
            with lock:
                result.applied.append(change)
                result.writes += 1
            progress.advance(change)

        workers = max(1, min(self.options.workers, len(changes)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, changes))
        if failures:
            first = failures[0]
            if len(failures) > 1 and isinstance(first, SecretsbootError):
                first.message = f"{first.message} (and {len(failures) - 1} more failures)"
            raise first


def _fallback_notes(changes: list[Change], synced: bool) -> list[Note]:
    """Who fills each fallback Secret provision creates with a placeholder."""
    notes = []
    for c in changes:
        if c.key.kind != "Secret" or c.action is not Action.CREATE or c.desired is None:
            continue
        unset = sorted(k for k, v in c.desired.body.get("data", {}).items() if v == ANY_VALUE)
        if not unset:
            continue
        how = (
            "fill it by hand (kubectl edit secret) or re-run with --sync-fallbacks"
            if not synced
            else "fill it by hand (kubectl edit secret)"
        )
        notes.append(
            Note(
                ", ".join(c.services),
                "action",
                f"fallback Secret {c.key.name} will be created holding a placeholder in "
                f"{', '.join(unset)}; fetch refuses the placeholder",
                f"the operator fills it: {how}",
            )
        )
    return notes


def _delete_rank(change: Change) -> int:
    return {
        "RoleBinding": 3,
        "Role": 2,
        "role-assignment": 2,
        "access-policy": 2,
        "AzureIdentityBinding": 2,
        "federated-credential": 1,
        "role": 1,
    }.get(change.key.kind, 0 if change.key.kind in ("managed-identity", "policy") else 1)


def _with_retries(fn: Callable[[], None]) -> None:
    delay = 0.2
    for attempt in range(MAX_ATTEMPTS):
        try:
            fn()
            return
        except UnavailableError as exc:
            if attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(min(exc.retry_after or delay, 10.0))
            delay *= 2


class _Progress:
    """A rich progress bar on stderr (only when asked and stderr is a terminal)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self._bar: Any = None
        self._task: Any = None
        if not enabled or total == 0 or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("[bold]provision[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def advance(self, change: Change) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=str(change.key))

    def retotal(self, total: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def desired_objects(spec: Spec, only: str | None = None) -> Iterable[Desired]:
    """The desired objects without reading any system (identity ids unknown)."""
    return desired_mod.build(spec, identities={}, only=only).objects
