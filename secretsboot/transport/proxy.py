"""Which proxy, if any, a request goes through: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``.

AKS's HTTP proxy feature injects these into every pod. The rules are curl's (and,
where they agree, requests'):

- the lower-case variable wins over the upper-case one (``https_proxy`` over
  ``HTTPS_PROXY``); an empty value means no proxy;
- ``https://`` requests use ``HTTPS_PROXY`` (through a ``CONNECT`` tunnel, so TLS
  stays end to end), ``http://`` requests ``HTTP_PROXY``;
- ``NO_PROXY`` is a comma- (or space-) separated list: ``*`` bypasses every host;
  ``example.com``, ``.example.com`` and ``*.example.com`` each match ``example.com``
  and every name under it (never ``badexample.com``); an IP address matches that
  address, ``10.0.0.0/8`` (CIDR) every address in it; ``[::1]`` is an IPv6 address;
  ``host:port`` matches that port only. Names compare case-insensitively.

>>> settings = {"HTTPS_PROXY": "http://proxy:3128", "NO_PROXY": ".svc,10.0.0.0/8"}
>>> proxy_for("https", "vault.shop.svc", 8200, settings) is None
True
>>> proxy_for("https", "kv.vault.azure.net", 443, settings).host
'proxy'
"""

from __future__ import annotations

from collections.abc import Mapping

from secretsboot.errors import BadInputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from secretsboot._records import NamedTuple


class Proxy(NamedTuple):
    """An HTTP proxy: where it is and the ``Proxy-Authorization`` value, if any."""

    host: str
    port: int
    authorization: str | None = None

    def __repr__(self) -> str:  # the authorization holds a password
        return f"Proxy({self.host}:{self.port})"


def _env(env: Mapping[str, str], name: str) -> str:
    value = env.get(name.lower())
    if value is None:
        value = env.get(name.upper())
    return (value or "").strip()


def parse_proxy(url: str, variable: str) -> Proxy:
    """``[http://][user:password@]host[:port]`` -> :class:`Proxy` (port 80 by default)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "http", url
    if scheme.lower() != "http":
        raise BadInputError(
            f"{variable}: a {scheme}:// proxy is not supported",
            hint="give the proxy as http://HOST:PORT (https requests still go through a "
            "CONNECT tunnel, so TLS stays end to end)",
        )
    netloc = rest.split("/", 1)[0]
    userinfo, at, hostport = netloc.rpartition("@")
    authorization = None
    if at:
        import base64
        from urllib.parse import unquote

        user, _, password = userinfo.partition(":")
        raw = f"{unquote(user)}:{unquote(password)}".encode()
        authorization = "Basic " + base64.b64encode(raw).decode("ascii")
    host, port = _split_hostport(hostport)
    if not host:
        raise BadInputError(f"{variable}: '{url}' names no proxy host")
    return Proxy(host, port or 80, authorization)


def _split_hostport(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` -> (host, port or None)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""  # a bare IPv6 address, or no port
    try:
        port = int(port_text) if port_text else None
    except ValueError:
        raise BadInputError(f"'{text}': the port is not a number") from None
    return host.lower(), port


def _ip(text: str) -> object | None:
    import ipaddress

    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (the variable's text) exempts ``host:port`` from the proxy."""
    host = host.lower().strip("[]").rstrip(".")
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        if "/" in entry:
            if _in_network(host, entry):
                return True
            continue
        name, entry_port = _split_hostport(entry)
        if entry_port is not None and entry_port != port:
            continue
        name = name.removeprefix("*").removeprefix(".").rstrip(".")
        if not name:
            continue
        if _ip(name) is not None or _ip(host) is not None:
            if _ip(name) is not None and _ip(name) == _ip(host):
                return True
            continue
        if host == name or host.endswith("." + name):
            return True
    return False


def _in_network(host: str, cidr: str) -> bool:
    import ipaddress

    address = _ip(host)
    if address is None:
        return False
    try:
        return address in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def proxy_for(scheme: str, host: str, port: int, env: Mapping[str, str]) -> Proxy | None:
    """The proxy for a request to ``scheme://host:port``, or None to connect directly."""
    variable = "HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY"
    url = _env(env, variable)
    if not url or bypassed(host, port, _env(env, "NO_PROXY")):
        return None
    return parse_proxy(url, variable)
