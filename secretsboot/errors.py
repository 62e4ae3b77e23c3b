"""The whole secretsboot exception tree, and its one mapping to exit codes.

::

    SecretsbootError (exit 1: internal error, a bug)
     +-- BadInputError ............ 2  bad flag, spec, manifest or config; never retried
     |    +-- SpecError ............ 2  carries file, line, field and the fix
     +-- DeniedError .............. 3  authentication failed or permission denied (401/403)
     |    +-- PropagationPendingError 3  a denial a fresh grant may still cure (retried a while)
     +-- NotFoundError ............ 4  a secret, object or identity does not exist
     +-- UnavailableError ......... 5  transient: 429, 5xx, connection refused, deadline passed
     +-- WriteError ............... 6  output could not be written (nothing partial is left)
     +-- PlanChangesPending ....... 10 `plan` found changes (terraform -detailed-exitcode style)
     +-- FindingsOverThreshold .... 11 `audit` found findings at or over the threshold

A message is one line a person can act on. It names the object and the fix and
never carries a secret value: callers pass names and fingerprints only.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README "Exit codes")."""

    OK = 0
    INTERNAL = 1
    BAD_INPUT = 2
    DENIED = 3
    NOT_FOUND = 4
    UNAVAILABLE = 5
    WRITE_FAILED = 6
    CHANGES_PENDING = 10
    FINDINGS = 11


class SecretsbootError(Exception):
    """Base of every error secretsboot raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class BadInputError(SecretsbootError):
    """Bad flag, spec, manifest or config. Retrying cannot help."""

    exit_code = ExitCode.BAD_INPUT


class SpecError(BadInputError):
    """A spec problem located at ``file:line field``.

    >>> str(SpecError("unknown scheme 'kv'", file="s.yaml", line=14, field="services[2].from"))
    "s.yaml:14 services[2].from: unknown scheme 'kv'"
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.file = file
        self.line = line
        self.field = field

    @property
    def location(self) -> str:
        where = self.file or "<spec>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.field:
            where = f"{where} {self.field}"
        return where

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.hint:
            text = f"{text}; {self.hint}"
        return text


class SpecErrors(SpecError):
    """Several spec problems reported together (each is a :class:`SpecError`)."""

    def __init__(self, errors: list[SpecError]) -> None:
        if not errors:
            raise ValueError("SpecErrors needs at least one error")
        first = errors[0]
        super().__init__(
            first.message, file=first.file, line=first.line, field=first.field, hint=first.hint
        )
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(SpecError.__str__(e) for e in self.errors)


class DeniedError(SecretsbootError):
    """Authentication failed or permission denied (HTTP 401/403, AADSTS errors)."""

    exit_code = ExitCode.DENIED


class PropagationPendingError(DeniedError):
    """A denial typical of a grant still propagating (AADSTS70021/700211-700213, Key Vault
    ``ForbiddenByRbac``/``AccessDenied``). ``fetch`` retries it while its propagation
    window lasts, then reports it as the :class:`DeniedError` it is."""


class NotFoundError(SecretsbootError):
    """The secret, object or identity does not exist."""

    exit_code = ExitCode.NOT_FOUND


class UnavailableError(SecretsbootError):
    """Transient: throttled, server error, connection failure, or the deadline passed.

    ``retry_after`` carries the server's Retry-After in seconds, when it gave one.
    """

    exit_code = ExitCode.UNAVAILABLE

    def __init__(
        self, message: str, *, hint: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class WriteError(SecretsbootError):
    """Output could not be written; nothing partial is left behind."""

    exit_code = ExitCode.WRITE_FAILED


class WorkerDiedError(SecretsbootError):
    """A worker process stopped abruptly (killed, or out of memory); nothing was written."""

    exit_code = ExitCode.INTERNAL


class PlanChangesPending(SecretsbootError):
    """``plan`` found changes to apply. Not a failure, but distinct from "no changes"."""

    exit_code = ExitCode.CHANGES_PENDING


class FindingsOverThreshold(SecretsbootError):
    """``audit`` found findings at or above the configured severity threshold."""

    exit_code = ExitCode.FINDINGS


def exit_code_for(exc: BaseException) -> int:
    """The exit code for any exception: ours by class, anything else is internal (1)."""
    if isinstance(exc, SecretsbootError):
        return int(exc.exit_code)
    return int(ExitCode.INTERNAL)
