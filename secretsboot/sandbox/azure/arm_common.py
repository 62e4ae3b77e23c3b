"""What every part of the ARM fake shares: its error shape and body parsing."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from secretsboot.sandbox._http import Request, Response

MI = "Microsoft.ManagedIdentity/userAssignedIdentities"
KV = "Microsoft.KeyVault/vaults"

#: the client id (``appid``) of the request being served: ``systemData.createdBy``
CALLER: ContextVar[str | None] = ContextVar("arm_caller", default=None)


def arm_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    hdrs = {"x-ms-failure-cause": "gateway"} if status in (401, 403) else {}
    hdrs.update(headers or {})
    return Response(status, {"error": {"code": code, "message": message}}, hdrs)


def json_body(req: Request) -> dict[str, Any] | Response:
    try:
        data = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        return arm_error(
            400,
            "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{exc}'.",
        )
    if not isinstance(data, dict):
        return arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: "
            "'the body must be a JSON object'.",
        )
    return data


def properties(data: dict[str, Any]) -> dict[str, Any]:
    props = data.get("properties")
    return props if isinstance(props, dict) else {}
