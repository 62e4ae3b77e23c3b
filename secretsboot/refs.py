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

#: The store table: scheme -> the module that implements that store. Adding a store is
#: one module (see CONTRIBUTING.md, "Add a secret store") and one line here. The modules
#: are plugins: they are loaded by name where a store is used (``backends.store_module``),
#: never imported by this floor, so the layer contract's static imports still point down.
STORES: dict[str, str] = {
    "keyvault": "secretsboot.backends.keyvault",
    "vault": "secretsboot.backends.vault",
    "k8s": "secretsboot.backends.kubernetes",
}
#: The stores whose grammar is spelled out below; any other store in STORES uses the
#: generic grammar ``SCHEME://STORE/PATH[#KEY]`` unless its module defines ``parse_ref``.
BUILT_IN = ("keyvault", "vault", "k8s")
_GENERIC = re.compile(
    r"(?P<store>[A-Za-z0-9][A-Za-z0-9_.-]{0,62})/(?P<path>[A-Za-z0-9_.@/-]{1,512}?)"
    r"(?:#(?P<key>[-._A-Za-z0-9]{1,253}))?\Z"
)
# Python's "$" also matches before a trailing newline: patterns end in \Z, except the
# two the spec hands to pydantic (whose Rust engine knows no \Z, and whose "$" is the end
# of the text); here those two are used with fullmatch, which has the same effect.
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
KEYVAULT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
KEYVAULT_SECRET = re.compile(r"[A-Za-z0-9-]{1,127}\Z")
SAFE_FILE = re.compile(r"[A-Za-z0-9._-]{1,255}\Z")
K8S_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}\Z")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODE = re.compile(r"0?[0-7]{3}\Z")
#: Variables a secret must not set: they change how the program, its loader or its
#: interpreter behaves (or how secretsboot and the pod are configured).
RESERVED_ENV = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "IFS", "ENV", "BASH_ENV", "TMPDIR",
        "HOSTNAME", "TERM", "LANG", "TZ", "GCONV_PATH", "NODE_OPTIONS", "JAVA_TOOL_OPTIONS",
        "PERL5LIB", "PERL5OPT", "RUBYLIB", "RUBYOPT", "SSL_CERT_FILE", "SSL_CERT_DIR",
    }
)  # fmt: skip
RESERVED_ENV_PREFIXES = ("LD_", "LC_", "PYTHON", "SECRETSBOOT_", "KUBERNETES_", "MALLOC_")


def safe_file_name(value: str) -> str:
    """Return ``value`` when it is a plain file name; ``ValueError`` otherwise.

    Names starting with ``..`` are kept for the output folder's own entries
    (``..data``, the timestamped folders), as kubelet does.
    """
    if (
        not isinstance(value, str)
        or "\x00" in value
        or "/" in value
        or "\\" in value
        or value.strip(".") == ""
        or value.startswith("..")
        or not SAFE_FILE.match(value)
    ):
        shown = str(value).encode("unicode_escape").decode("ascii")
        raise ValueError(
            f"'{shown}' could escape the output folder; use a plain file name "
            "(letters, digits, '.', '_', '-'; no '/', no leading '..', no NUL)"
        )
    return value


def env_name(value: str) -> str:
    """Return ``value`` when a secret may set it; ``ValueError`` with the fix otherwise.

    >>> env_name("LD_PRELOAD")
    Traceback (most recent call last):
    ...
    ValueError: $LD_PRELOAD is reserved (it changes how programs run); set env: to another name
    """
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value):
        shown = str(value).encode("unicode_escape").decode("ascii")
        raise ValueError(
            f"'{shown}' is not an environment variable name; use letters, digits and '_', "
            "not starting with a digit"
        )
    if value in RESERVED_ENV or value.startswith(RESERVED_ENV_PREFIXES):
        raise ValueError(
            f"${value} is reserved (it changes how programs run); set env: to another name"
        )
    return value


def derived_env_name(name: str) -> str:
    """The variable a secret without ``env:`` sets: upper case, '_' for anything else.

    >>> derived_env_name("db.password-2")
    'DB_PASSWORD_2'
    """
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def landing_file(name: str, file: str | None, env: str | None) -> str | None:
    """The file a secret lands in under the output folder: its ``file:``, else its name;
    None when it has no ``file:`` and goes to ``env:`` only.

    >>> [landing_file("db", f, e) for f, e in ((None, None), (None, "DB"), ("x", "DB"))]
    ['db', None, 'x']
    """
    if file:
        return file
    return None if env else name


def file_mode(value: object, *, world_readable: bool = False) -> int:
    """The mode of a secret file from its config text (a quoted octal string such as "0400").

    ``ValueError`` names the fix for a bare YAML number (``mode: 0400`` is read as the
    number 256), a mode the owner cannot read, and one that lets group members write
    or other users read or write (allowed only with ``world_readable``).

    >>> oct(file_mode("0440"))
    '0o440'
    """
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(
            f'mode must be a quoted octal string such as "0400"; YAML read a bare number '
            f'(as {value!r}): quote it, mode: "0400"'
        )
    if not _MODE.match(value):
        shown = value.encode("unicode_escape").decode("ascii")
        raise ValueError(f"mode '{shown}' is not an octal file mode such as \"0400\"")
    mode = int(value, 8)
    if not mode & 0o400:
        raise ValueError(f"mode '{value}' does not let the owner read the file; use \"0400\"")
    if mode & 0o020:
        raise ValueError(f"mode '{value}' lets group members write the file; use \"0440\"")
    if mode & 0o007 and not world_readable:
        raise ValueError(
            f"mode '{value}' lets every user of the node read or write the file; use "
            '"0400" or "0440" (or name the secret in allowWorldReadable)'
        )
    if mode & 0o002:
        raise ValueError(f"mode '{value}' lets every user write the file; use \"0444\"")
    return mode


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
        if self.scheme == "k8s":
            return f"k8s://{self.store}#{self.key}"
        tail = f"#{self.key}" if self.key else ""
        return f"{self.scheme}://{self.store}/{self.path}{tail}"

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
        if scheme in STORES:
            return cls._plugin(uri, scheme, rest)
        *rest_, last = [f"{s}://" for s in STORES]
        known = f"{', '.join(rest_)} or {last}" if rest_ else last
        raise ValueError(f"unknown scheme '{scheme}'; expected {known}")

    @classmethod
    def _plugin(cls, uri: str, scheme: str, rest: str) -> Ref:
        """A store outside :data:`BUILT_IN`: its module's ``parse_ref`` or the generic form."""
        import importlib

        parse = getattr(importlib.import_module(STORES[scheme]), "parse_ref", None)
        if parse is not None:
            ref: Ref = parse(uri, rest)
            return ref
        match = _GENERIC.match(rest)
        if match is None or any(p in {"", ".", ".."} for p in match["path"].split("/")):
            raise ValueError(
                f"'{uri}': expected {scheme}://STORE/PATH[#KEY] without empty, '.' or '..' "
                "path segments"
            )
        return cls(scheme, match["store"], match["path"], match["key"], None)

    @classmethod
    def _keyvault(cls, uri: str, rest: str) -> Ref:
        vault, _, name = rest.partition("/")
        name, _, version = name.partition("@")
        if not KEYVAULT_NAME.fullmatch(vault):
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
