"""HashiCorp Vault's ``azure`` auth method, emulated in front of OpenBao (which lacks it).

OpenBao has no ``azure`` auth method ("plugin not found in the catalog"). The
sandbox's HTTPS front (:mod:`.vaultfront`) hands this class every request; it
answers what belongs to an ``azure`` mount and returns ``None`` for the rest,
which the front relays to OpenBao unchanged:

- ``POST sys/auth/PATH`` with ``type: azure`` mounts the method at ``auth/PATH``
  (``DELETE sys/auth/PATH`` unmounts it); ``GET sys/auth`` is OpenBao's answer
  with the emulated mounts added, so ``provision`` sees them as on a real Vault;
- ``auth/PATH/config`` and ``auth/PATH/role/NAME`` (read, write, ``LIST``,
  delete) with Vault's fields, defaults and refusals (:mod:`.vault_azure_fields`);
  each call is authorised by OpenBao itself: the caller's token is asked
  ``sys/capabilities-self`` for the path, so policies apply as on a real Vault;
- ``auth/PATH/login`` follows Vault's ``pathLogin``: role, the token checked by
  go-oidc's rules against Entra's v1 discovery document and JWKS
  (:mod:`.vault_azure_oidc`), ``bound_service_principal_ids`` (``oid``),
  ``bound_group_ids`` (``groups``), then the resource bindings
  (``bound_subscription_ids``, ``bound_resource_groups``, ``bound_locations``,
  ``bound_scale_sets``) looked up in Azure (:mod:`.vault_azure_login`). A success
  creates a real OpenBao token (``auth/token/create`` with the sandbox's root
  token: an orphan carrying the role's policies, TTLs, use limit and the login's
  metadata) and answers in Vault's login format.

Errors carry Vault's words and codes: 400 ``{"errors": ["invalid role name \\"x\\""]}``
for a request Vault's handler refuses, 500 for what the plugin returns as an error
(every token or binding mismatch, as Vault answers them), 403 ``permission denied``
for a missing capability, 404 ``{"errors": []}`` for a read of nothing.

Not emulated: ``rotate-root``, plugin workload identity (``identity_token_*``),
``token_bound_cidrs`` on the issued token (they are checked at login only), and
token renewal through the role (OpenBao renews the token with the TTLs it was
created with). The token's ``path`` is ``auth/token/create``, not the login path.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsboot.sandbox._http import Headers, Request, Response
from secretsboot.sandbox.vault_azure_fields import (
    FieldError,
    config_data,
    new_role,
    role_data,
    settings_error,
    update_config,
    update_role,
)
from secretsboot.sandbox.vault_azure_login import AzureDirectory, login
from secretsboot.sandbox.vault_azure_oidc import LoginError, Verifier

#: sends a request to OpenBao and returns its answer (the front's relay)
Forward = Callable[[Request], Response]
_ROLE_NAME = r"\w(([\w.-]+)?\w)?"


def vault_body(
    data: Any = None, *, auth: Any = None, warnings: list[str] | None = None
) -> dict[str, Any]:
    """Vault's response envelope."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": warnings,
        "auth": auth,
        "mount_type": "azure",
    }


def errors(status: int, *messages: str, wrapped: bool = False) -> Response:
    """``{"errors": [...]}``; ``wrapped``: Vault's multierror text of a handler error."""
    if wrapped:
        messages = tuple(f"1 error occurred:\n\t* {m}\n\n" for m in messages)
    return reply(status, {"errors": list(messages)})


def reply(status: int, body: dict[str, Any]) -> Response:
    """A JSON answer with Vault's exact ``Content-Type`` (hvac reads errors only then)."""
    return Response(status, body, {"Content-Type": "application/json"})


@dataclass
class Mount:
    """One ``azure`` auth mount: its config and roles (lower-cased names, as Vault stores)."""

    path: str
    accessor: str = field(default_factory=lambda: "auth_azure_" + uuid.uuid4().hex[:8])
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    config: dict[str, Any] | None = None
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    verifier: Verifier | None = None

    def listing(self) -> dict[str, Any]:
        """This mount as ``GET sys/auth`` lists it."""
        return {
            "type": "azure",
            "description": "",
            "accessor": self.accessor,
            "uuid": self.uuid,
            "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "token_type": "default-service"},
            "local": False,
            "seal_wrap": False,
            "external_entropy_access": False,
            "options": None,
            "plugin_version": "",
            "running_plugin_version": "v0.0.0+builtin",
            "running_sha256": "",
            "deprecation_status": "supported",
        }


class VaultAzureAuth:
    """The ``azure`` auth mounts of the sandbox's Vault.

    ``forward`` reaches OpenBao; ``root_token`` creates the login tokens;
    ``authority`` is where every Azure cloud's Entra ID lives in the sandbox (the
    Entra fake's URL); ``directory`` answers the Azure lookups of resource bindings.
    """

    def __init__(
        self,
        forward: Forward,
        root_token: str,
        *,
        authority: str,
        ca_path: Path | None,
        directory: AzureDirectory | None = None,
    ) -> None:
        self.forward = forward
        self.root_token = root_token
        self.authority = authority
        self.ca_path = ca_path
        self.directory = directory
        self.mounts: dict[str, Mount] = {}
        self._lock = threading.RLock()

    # ---- routing -------------------------------------------------------------------
    def route(self, req: Request) -> Response | None:
        """Vault's answer to ``req`` when it belongs to an azure mount, else None."""
        path = req.path.removeprefix("/v1/").strip("/")
        if path == "sys/auth" and req.method == "GET":
            return self._list_mounts(req)
        if path.startswith("sys/auth/"):
            return self._mount_op(req, path.removeprefix("sys/auth/"))
        if not path.startswith("auth/"):
            return None
        found = self._mount_of(path.removeprefix("auth/"))
        if found is None:
            return None
        mount, rest = found
        return self._mount_call(req, mount, rest)

    def _mount_of(self, path: str) -> tuple[Mount, str] | None:
        with self._lock:
            for name in sorted(self.mounts, key=len, reverse=True):
                if path == name or path.startswith(name + "/"):
                    return self.mounts[name], path[len(name) :].strip("/")
        return None

    def _mount_call(self, req: Request, mount: Mount, rest: str) -> Response:
        op = _operation(req)
        if op == "unknown":
            return errors(405, "unsupported operation", wrapped=True)
        if rest == "login":
            if op not in ("create", "update"):
                return errors(405, "unsupported operation", wrapped=True)
            return self._login(req, mount)
        if rest == "config":
            return self._config(req, mount, op)
        if rest == "role" and op == "list":
            return self._authorised(req, mount, rest, "list") or self._list_roles(mount)
        if rest.startswith("role/"):
            name = rest.removeprefix("role/")
            if op == "list" and name == "":
                return self._authorised(req, mount, rest, "list") or self._list_roles(mount)
            return self._role(req, mount, name, op)
        return errors(404, "unsupported path", wrapped=True)

    # ---- authorisation: OpenBao decides --------------------------------------------
    def _authorised(self, req: Request, mount: Mount, rest: str, need: str) -> Response | None:
        """None when the caller's token may ``need`` on the path, else OpenBao's refusal."""
        return self._capable(req, f"auth/{mount.path}/{rest}".rstrip("/"), need)

    def _capable(self, req: Request, path: str, *needs: str) -> Response | None:
        token = req.headers.get("x-vault-token") or ""
        auth_header = req.headers.get("authorization", "")
        if not token and auth_header.lower().startswith("bearer "):
            token = auth_header[7:].strip()
        pairs = [("Content-Type", "application/json")]
        if token:
            pairs.append(("X-Vault-Token", token))
        headers = Headers(pairs)
        answer = self.forward(
            Request(
                "POST",
                "/v1/sys/capabilities-self",
                headers=headers,
                body=_json_bytes({"paths": [path]}),
                client=req.client,
            )
        )
        if answer.status != 200:
            return answer  # no token, a bad token: OpenBao's own refusal
        caps = set(_json(answer.body).get(path) or [])
        if "root" in caps or set(needs) <= caps:
            return None
        return errors(403, "permission denied", wrapped=True)

    # ---- sys/auth --------------------------------------------------------------------
    def _list_mounts(self, req: Request) -> Response:
        answer = self.forward(req)
        with self._lock:
            mounts = {f"{m.path}/": m.listing() for m in self.mounts.values()}
        if answer.status != 200 or not mounts:
            return answer
        body = _json(answer.body)
        body.update(mounts)
        if isinstance(body.get("data"), dict):
            body["data"].update(mounts)
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
        return Response(200, body, headers)

    def _mount_op(self, req: Request, path: str) -> Response | None:
        path = path.strip("/")
        with self._lock:
            existing = self.mounts.get(path)
        if req.method == "DELETE" and existing is not None:
            refused = self._capable(req, f"sys/auth/{path}", "delete", "sudo")
            if refused is None:
                with self._lock:
                    self.mounts.pop(path, None)
                return Response(204)
            return refused
        if req.method not in ("POST", "PUT"):
            return None
        body = _json(req.body)
        if str(body.get("type", "")) != "azure":
            if existing is not None:
                return errors(400, f"path is already in use at {path}/")
            return None
        return self._enable(req, path, existing)

    def _enable(self, req: Request, path: str, existing: Mount | None) -> Response:
        refused = self._capable(req, f"sys/auth/{path}", "create", "sudo")
        if refused is not None:
            return refused
        taken = self.forward(Request("GET", "/v1/sys/auth", headers=_root_headers(self.root_token)))
        if existing is not None or f"{path}/" in _json(taken.body).get("data", {}):
            return errors(400, f"path is already in use at {path}/")
        with self._lock:
            self.mounts[path] = Mount(path)
        return Response(204)

    # ---- config ----------------------------------------------------------------------
    def _config(self, req: Request, mount: Mount, op: str) -> Response:
        if op == "list":
            return errors(405, "unsupported operation", wrapped=True)
        if op in ("create", "update"):
            op = "update" if mount.config is not None else "create"
        refused = self._authorised(req, mount, "config", op)
        if refused is not None:
            return refused
        if op == "read":
            if mount.config is None:
                return errors(404)
            return reply(200, vault_body(config_data(mount.config)))
        if op == "delete":
            with self._lock:
                mount.config, mount.verifier = None, None
            return Response(204)
        try:
            config = update_config(mount.config, _json(req.body))
        except FieldError as exc:
            return errors(400, str(exc))
        problem = settings_error(config)
        if problem:
            return errors(500, problem, wrapped=True)
        with self._lock:
            mount.config, mount.verifier = config, None  # Vault resets its provider
        return Response(204)

    # ---- roles -----------------------------------------------------------------------
    def _list_roles(self, mount: Mount) -> Response:
        with self._lock:
            names = sorted(mount.roles)
        if not names:
            return errors(404)
        return reply(200, vault_body({"keys": names}))

    def _role(self, req: Request, mount: Mount, name: str, op: str) -> Response:
        import re

        if not re.fullmatch(_ROLE_NAME, name):
            return errors(404, "unsupported path", wrapped=True)
        key = name.lower()
        with self._lock:
            current = mount.roles.get(key)
        if op in ("create", "update"):
            op = "update" if current is not None else "create"
        refused = self._authorised(req, mount, f"role/{name}", op)
        if refused is not None:
            return refused
        if op == "read":
            if current is None:
                return errors(404)
            return reply(200, vault_body(role_data(current)))
        if op == "delete":
            with self._lock:
                mount.roles.pop(key, None)
            return Response(204)
        return self._write_role(req, mount, key, current)

    def _write_role(
        self, req: Request, mount: Mount, key: str, current: dict[str, Any] | None
    ) -> Response:
        from secretsboot.sandbox.vault_azure_fields import ROLE_FIELDS

        body = _json(req.body)
        try:
            role = update_role(current or new_role(), body)
        except FieldError as exc:
            return errors(400, str(exc))
        with self._lock:
            mount.roles[key] = role
        ignored = sorted(k for k in body if k not in ROLE_FIELDS)
        if ignored:
            warning = f"Endpoint ignored these unrecognized parameters: [{' '.join(ignored)}]"
            return reply(200, vault_body(warnings=[warning]))
        return Response(204)

    # ---- login -----------------------------------------------------------------------
    def _login(self, req: Request, mount: Mount) -> Response:
        body = _json(req.body)
        try:
            with self._lock:
                role = mount.roles.get(str(body.get("role") or "").lower())
                config = dict(mount.config or {})
            granted = login(self, mount, body, role, config, req.client)
        except LoginError as exc:
            return errors(exc.status, exc.message)
        return self._issue(granted)

    def verifier(self, mount: Mount, config: dict[str, Any]) -> Verifier:
        """The mount's verifier (built from Entra's discovery document once per config)."""
        with self._lock:
            cached = mount.verifier
        if cached is not None:
            return cached
        made = Verifier.discover(
            self.authority, str(config["tenant_id"]), str(config["resource"]), self.ca_path
        )
        with self._lock:
            mount.verifier = made
        return made

    def _issue(self, granted: dict[str, Any]) -> Response:
        """A real OpenBao token for a granted login, answered in Vault's login format."""
        answer = self.forward(
            Request(
                "POST",
                "/v1/auth/token/create",
                headers=_root_headers(self.root_token),
                body=_json_bytes(granted["create"]),
            )
        )
        if answer.status != 200:
            return answer
        auth = dict(_json(answer.body).get("auth") or {})
        auth["metadata"] = granted["metadata"]
        auth["orphan"] = True
        return reply(200, vault_body(auth=auth))


def _operation(req: Request) -> str:
    listing = (req.arg("list") or "") in ("1", "t", "T", "TRUE", "true", "True")  # Go ParseBool
    if req.method == "LIST" or (req.method == "GET" and listing):
        return "list"
    return {"GET": "read", "DELETE": "delete", "POST": "update", "PUT": "update"}.get(
        req.method, "unknown"
    )


def _root_headers(token: str) -> Headers:
    return Headers([("X-Vault-Token", token), ("Content-Type", "application/json")])


def _json_bytes(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


def _json(raw: Any) -> dict[str, Any]:
    import json

    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
