"""What every part of the ARM fake shares: its error shape and body parsing."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from secretsboot.sandbox._http import Request, Response
from secretsboot.sandbox.azure.models import StateError

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


def not_allowed(req: Request) -> Response:
    return arm_error(405, "MethodNotAllowed", f"{req.method} is not supported here.")


def no_route(req: Request, path: str) -> Response:
    return arm_error(404, "NotFound", f"No route for {req.method} {path}.")


def json_body(req: Request) -> dict[str, Any]:
    """The request's JSON object; a 400 ``InvalidRequestContent`` (raised) otherwise."""
    try:
        data = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        why = str(exc)
    else:
        if isinstance(data, dict):
            return data
        why = "the body must be a JSON object"
    raise StateError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: '{why}'.",
    )


def properties(data: dict[str, Any]) -> dict[str, Any]:
    props = data.get("properties")
    return props if isinstance(props, dict) else {}
