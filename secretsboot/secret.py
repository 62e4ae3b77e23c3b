"""A secret value that cannot leak through repr, str, formatting, logging or pickling.

>>> v = SecretValue("hunter2")
>>> str(v).startswith("sha256:")
True
>>> v.reveal()
'hunter2'
"""

from __future__ import annotations

# hashlib, hmac and typing load lazily: this module is on the init container's start-up
# path, and a fetch that never prints a fingerprint should not pay for them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

FINGERPRINT_HEX = 12

#: What ``provision`` stores in a fallback Secret it creates before the value is known.
#: ``fetch`` refuses it (as not found), so a pod never starts with a placeholder.
FALLBACK_PLACEHOLDER = "secretsboot-placeholder: set this value"


def fingerprint(data: str | bytes, *, length: int = FINGERPRINT_HEX) -> str:
    """``sha256:`` and the first ``length`` hex digits of the SHA-256 of ``data``.

    Enough to tell two values apart in a plan or report, far too little to
    recover a value from.
    """
    import hashlib

    raw = data.encode() if isinstance(data, str) else data
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:length]


class SecretValue:
    """Holds a secret. Only :meth:`reveal` and :meth:`reveal_bytes` give it back.

    ``repr``, ``str``, f-strings, ``%`` formatting, ``logging`` and ``rich`` all
    show ``sha256:…`` instead. Equality is constant-time. It refuses pickling
    and copying into JSON by accident (``__reduce__`` raises).
    """

    __slots__ = ("__value",)

    def __init__(self, value: str | bytes) -> None:
        if not isinstance(value, str | bytes):
            raise TypeError("SecretValue takes str or bytes")
        self.__value = value.encode() if isinstance(value, str) else bytes(value)

    def reveal(self) -> str:
        """The value as text (UTF-8). Call it only where the value must leave us."""
        return self.__value.decode("utf-8", errors="strict")

    def reveal_bytes(self) -> bytes:
        """The value as bytes."""
        return self.__value

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.__value)

    def __len__(self) -> int:
        return len(self.__value)

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __repr__(self) -> str:
        return f"SecretValue({self.fingerprint})"

    def __str__(self) -> str:
        return self.fingerprint

    def __format__(self, spec: str) -> str:
        return format(self.fingerprint, spec)

    def __rich__(self) -> str:
        return self.fingerprint

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        import hmac

        return hmac.compare_digest(self.__value, other.__value)

    def __hash__(self) -> int:
        return hash(("SecretValue", self.fingerprint))

    def __reduce__(self) -> NoReturn:
        raise TypeError("a SecretValue cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("a SecretValue cannot be serialized")

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretValue:
        return self
