"""The fields of Vault's ``auth/azure/config`` and ``auth/azure/role/NAME``, parsed as Vault does.

Lists are Vault's ``TypeCommaStringSlice`` (a JSON list, or one comma-separated
string), durations ``TypeDurationSecond`` (seconds as a number or a numeric
string, or a Go duration such as ``5m``, ``1h30m``; ``d`` for days), and the
``token_*`` fields those of Vault's ``tokenutil`` (with the deprecated
``policies``/``ttl``/``max_ttl``/``period``/``num_uses`` as aliases). A role is
stored in canonical form (lists, whole seconds) and read back with every field
Vault's role read shows, so ``provision`` diffs what it wrote against what it reads.

>>> parse_duration("1h30m")
5400
>>> comma_list("a, b,,c")
['a', 'b', 'c']
"""

from __future__ import annotations

import re
from typing import Any

BOUND_FIELDS = (
    "bound_service_principal_ids",
    "bound_group_ids",
    "bound_subscription_ids",
    "bound_resource_groups",
    "bound_locations",
    "bound_scale_sets",
)
TOKEN_LISTS = ("token_policies", "token_bound_cidrs")
TOKEN_DURATIONS = ("token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period")
#: deprecated field -> the token_* field it feeds (Vault's ``tokenutil.UpgradeValue``)
DEPRECATED = {
    "policies": "token_policies",
    "ttl": "token_ttl",
    "max_ttl": "token_max_ttl",
    "period": "token_period",
    "num_uses": "token_num_uses",
}
TOKEN_TYPES = ("default", "service", "batch", "default-service", "default-batch")
ROLE_FIELDS = frozenset(
    (
        *BOUND_FIELDS,
        *TOKEN_LISTS,
        *TOKEN_DURATIONS,
        *DEPRECATED,
        "token_num_uses",
        "token_no_default_policy",
        "token_type",
        "alias_metadata",
        "name",
    )
)
CONFIG_FIELDS = frozenset(
    (
        "tenant_id",
        "resource",
        "environment",
        "client_id",
        "client_secret",
        "root_password_ttl",
        "max_retries",
        "max_retry_delay",
        "retry_delay",
    )
)
#: Azure clouds Vault knows by name (``ConfigurationFromName``, upper-cased)
ENVIRONMENTS = ("AZURECHINACLOUD", "AZUREPUBLICCLOUD", "AZUREGOVERNMENTCLOUD")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h|d)")


class FieldError(ValueError):
    """A field Vault refuses (400 with the message)."""


def comma_list(value: Any) -> list[str]:
    """Vault's ``TypeCommaStringSlice``."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def parse_duration(value: Any, field: str = "ttl") -> int:
    """Vault's ``TypeDurationSecond``: whole seconds."""
    if isinstance(value, bool):
        raise FieldError(f'error converting input {value} for field "{field}"')
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if text == "":
        return 0
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise FieldError(
            f'error converting input {text} for field "{field}": time: invalid duration "{text}"'
        )
    return int(total)


def _bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "t", "true"):
        return True
    if text in ("0", "f", "false", ""):
        return False
    raise FieldError(f'error converting input {value} for field "{field}"')


def _int(value: Any, field: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FieldError(f'error converting input {value} for field "{field}"') from None


def new_role() -> dict[str, Any]:
    role: dict[str, Any] = {f: [] for f in (*BOUND_FIELDS, *TOKEN_LISTS)}
    role.update({f: 0 for f in TOKEN_DURATIONS})
    role.update({"token_num_uses": 0, "token_no_default_policy": False, "token_type": "default"})
    return role


def update_role(role: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """``role`` with the fields of ``body`` applied (a copy); raises :class:`FieldError`."""
    out = dict(role)
    deprecated: list[str] = []
    for old, new in DEPRECATED.items():
        if old in body and new in body:
            raise FieldError(f'"{new}" and "{old}" cannot both be specified')
        if old in body:
            body = {**body, new: body[old]}
            deprecated.append(old)
        elif new in body:
            out.pop(old, None)  # set through its token_* name: the old one is cleared
    for f in (*BOUND_FIELDS, *TOKEN_LISTS):
        if f in body:
            out[f] = comma_list(body[f])
    for f in TOKEN_DURATIONS:
        if f in body:
            out[f] = parse_duration(body[f], f)
    if "token_num_uses" in body:
        out["token_num_uses"] = _int(body["token_num_uses"], "token_num_uses")
    if "token_no_default_policy" in body:
        out["token_no_default_policy"] = _bool(
            body["token_no_default_policy"], "token_no_default_policy"
        )
    if "token_type" in body:
        kind = str(body["token_type"] or "default")
        if kind not in TOKEN_TYPES:
            raise FieldError(f"invalid 'token_type' value {kind!r}")
        out["token_type"] = kind
    for old in deprecated:  # Vault keeps the old field too, and shows it on read
        out[old] = out[DEPRECATED[old]]
    _check_role(out)
    return out


def _check_role(role: dict[str, Any]) -> None:
    if role["token_num_uses"] < 0:
        raise FieldError("token num uses cannot be negative")
    if not any(role[f] for f in BOUND_FIELDS):
        raise FieldError("must have at least one bound constraint when creating/updating a role")
    if role["token_max_ttl"] > 0 and role["token_ttl"] > role["token_max_ttl"]:
        raise FieldError("ttl should not be greater than max_ttl")


def role_data(role: dict[str, Any]) -> dict[str, Any]:
    """What ``GET auth/azure/role/NAME`` shows (``tokenutil.PopulateTokenData`` included)."""
    data: dict[str, Any] = {f: (list(role[f]) or None) for f in BOUND_FIELDS}  # nil -> null
    data.update({f: list(role[f]) for f in TOKEN_LISTS})
    data.update({f: int(role[f]) for f in TOKEN_DURATIONS})
    data.update(
        {
            "token_num_uses": role["token_num_uses"],
            "token_no_default_policy": role["token_no_default_policy"],
            "token_type": role["token_type"],
        }
    )
    for old in DEPRECATED:
        if role.get(old):
            data[old] = role[old]
    return data


def update_config(config: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
    """The mount's config with ``body`` applied (a copy)."""
    out: dict[str, Any] = dict(config or {})
    for f in ("tenant_id", "resource", "environment", "client_id", "client_secret"):
        if f in body:
            out[f] = str(body[f] or "")
    out["root_password_ttl"] = parse_duration(body.get("root_password_ttl", "4380h"), "ttl")
    out["max_retries"] = _int(body.get("max_retries", 3), "max_retries")
    out["max_retry_delay"] = parse_duration(body.get("max_retry_delay", 60), "max_retry_delay")
    out["retry_delay"] = parse_duration(body.get("retry_delay", 4), "retry_delay")
    return out


def settings_error(config: dict[str, Any]) -> str | None:
    """Vault's ``getAzureSettings`` refusal (a 500 at config write and at login), if any."""
    if not config.get("tenant_id"):
        return "tenant_id is required"
    if not config.get("resource"):
        return "resource is required"
    env = str(config.get("environment") or "")
    if env and env.upper() not in ENVIRONMENTS:
        return f'err: no cloud configuration matching the name "{env}"'
    return None


def config_data(config: dict[str, Any]) -> dict[str, Any]:
    """What ``GET auth/azure/config`` shows (never the client secret)."""
    return {
        "tenant_id": config.get("tenant_id", ""),
        "resource": config.get("resource", ""),
        "environment": config.get("environment", ""),
        "client_id": config.get("client_id", ""),
        "root_password_ttl": config.get("root_password_ttl", 0),
        "retry_delay": config.get("retry_delay", 0) * 10**9,  # a Go time.Duration: ns
        "max_retry_delay": config.get("max_retry_delay", 0) * 10**9,
        "max_retries": config.get("max_retries", 0),
    }
