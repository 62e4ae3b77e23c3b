"""Source URIs and output file names: the one parser, standard library only.

The spec (pydantic) and the init container (which must start fast and never
imports pydantic) both parse sources and check file names here, so the two can
never disagree.

>>> Ref.parse("vault://secret/orders/db#password")
Ref(scheme='vault', store='secret', path='orders/db', key='password', version=None)
"""

from __future__ import annotations

import re

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from secretsboot._records import NamedTuple

SCHEMES = ("keyvault", "vault", "k8s")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
KEYVAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
KEYVAULT_SECRET = re.compile(r"^[A-Za-z0-9-]{1,127}$")
SAFE_FILE = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
K8S_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODE = re.compile(r"^0?[0-7]{3}$")


def safe_file_name(value: str) -> str:
    """Return ``value`` when it is a plain file name; ``ValueError`` otherwise."""
    if (
        not isinstance(value, str)
        or "\x00" in value
        or "/" in value
        or "\\" in value
        or value.strip(".") == ""
        or not SAFE_FILE.match(value)
    ):
        shown = str(value).replace("\x00", "\\0")
        raise ValueError(
            f"'{shown}' could escape the output folder; use a plain file name "
            "(letters, digits, '.', '_', '-'; no '/', '..' or NUL)"
        )
    return value


def env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(f"'{value}' is not an environment variable name")
    return value


def file_mode(value: str) -> int:
    if not _MODE.match(value):
        raise ValueError(f"mode '{value}' is not an octal file mode such as 0400")
    return int(value, 8)


class Ref(NamedTuple):
    """One source: ``keyvault://VAULT/NAME[@VERSION]``, ``vault://MOUNT/PATH#KEY``,
    ``k8s://SECRET#KEY``."""

    scheme: str
    store: str
    path: str
    key: str | None
    version: str | None

    def __str__(self) -> str:
        if self.scheme == "keyvault":
            tail = f"@{self.version}" if self.version else ""
            return f"keyvault://{self.store}/{self.path}{tail}"
        if self.scheme == "vault":
            return f"vault://{self.store}/{self.path}#{self.key}"
        return f"k8s://{self.store}#{self.key}"

    @classmethod
    def parse(cls, uri: str) -> Ref:
        """Parse a source URI; ``ValueError`` names what is wrong and the expected form."""
        if not isinstance(uri, str):
            raise ValueError("a source must be a string such as keyvault://VAULT/NAME")
        scheme, sep, rest = uri.partition("://")
        if not sep:
            raise ValueError(
                f"'{uri}' is not a source URI; expected keyvault://VAULT/NAME, "
                "vault://MOUNT/PATH#KEY or k8s://SECRET#KEY"
            )
        if scheme == "keyvault":
            return cls._keyvault(uri, rest)
        if scheme == "vault":
            return cls._vault(uri, rest)
        if scheme == "k8s":
            return cls._k8s(uri, rest)
        raise ValueError(f"unknown scheme '{scheme}'; expected keyvault://, vault:// or k8s://")

    @classmethod
    def _keyvault(cls, uri: str, rest: str) -> Ref:
        vault, _, name = rest.partition("/")
        name, _, version = name.partition("@")
        if not KEYVAULT_NAME.match(vault):
            raise ValueError(
                f"'{uri}': Key Vault name '{vault}' is invalid; expected keyvault://VAULT/NAME "
                "with a vault name of 3-24 letters, digits and '-', starting with a letter"
            )
        if not KEYVAULT_SECRET.match(name):
            raise ValueError(
                f"'{uri}': expected keyvault://VAULT/NAME[@VERSION] with a secret name of "
                "letters, digits and '-'"
            )
        if version and not re.fullmatch(r"[0-9a-zA-Z]{1,64}", version):
            raise ValueError(f"'{uri}': version '{version}' is not a Key Vault version id")
        return cls("keyvault", vault, name, None, version or None)

    @classmethod
    def _vault(cls, uri: str, rest: str) -> Ref:
        body, hash_, key = rest.partition("#")
        mount, _, path = body.partition("/")
        if not hash_ or not key:
            raise ValueError(
                f"'{uri}': expected vault://MOUNT/PATH#KEY (the '#KEY' names the field of "
                "the secret)"
            )
        if not mount or not path or any(part in {"", ".", ".."} for part in path.split("/")):
            raise ValueError(
                f"'{uri}': expected vault://MOUNT/PATH#KEY with a mount and a path without "
                "empty, '.' or '..' segments"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", mount) or not re.fullmatch(
            r"[A-Za-z0-9_./-]+", path
        ):
            raise ValueError(
                f"'{uri}': mount and path may hold letters, digits, '_', '.', '-' and '/'"
            )
        return cls("vault", mount, path, key, None)

    @classmethod
    def _k8s(cls, uri: str, rest: str) -> Ref:
        name, hash_, key = rest.partition("#")
        if not hash_ or not key:
            raise ValueError(
                f"'{uri}': expected k8s://SECRET#KEY (the '#KEY' names the key in the "
                "Secret's data)"
            )
        if not DNS_SUBDOMAIN.match(name):
            raise ValueError(f"'{uri}': '{name}' is not a valid Secret name")
        if not K8S_KEY.match(key):
            raise ValueError(f"'{uri}': '{key}' is not a valid Secret data key")
        return cls("k8s", name, "", key, None)
