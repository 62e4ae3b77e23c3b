"""URL pieces the clients build: percent-encoding, form bodies, splitting, redirects."""

from __future__ import annotations

from collections.abc import Mapping

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode ``text`` for a URL path segment or a form value (RFC 3986).

    >>> quote("a b/c")
    'a%20b%2Fc'
    """
    allowed = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in allowed else f"%{b:02X}" for b in text.encode("utf-8"))


def form(fields: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` body (or query string) of ``fields``."""
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in fields.items()).encode("ascii")


def split_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an http(s) URL; ValueError otherwise.

    >>> split_url("https://[::1]:8443/base/")
    ('https', '::1', 8443, '/base')
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        raise ValueError(url)
    netloc, slash, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    if netloc.startswith("["):
        host, _, port_text = netloc[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, _, port_text = netloc.partition(":")
    if not host:
        raise ValueError(url)
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    return scheme, host, port, ("/" + path if slash else "").split("?")[0].rstrip("/")


def origin_of(scheme: str, host: str, port: int) -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def resolve(location: str, scheme: str, host: str, port: int) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path?query)`` of a redirect's ``Location``."""
    from urllib.parse import urlsplit

    parts = urlsplit(location)
    if parts.scheme:
        scheme = parts.scheme.lower()
        host = parts.hostname or host
        port = parts.port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    return scheme, host, port, path + (f"?{parts.query}" if parts.query else "")
