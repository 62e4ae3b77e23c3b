"""The Instance Metadata Service fake (managed identity tokens), node IMDS and NMI in one.

``ManagedIdentityCredential`` (azure-identity 1.27, through msal's managed-identity
client) sends ``GET {AZURE_POD_IDENTITY_AUTHORITY_HOST}/metadata/identity/oauth2/token``
with ``api-version=2018-02-01``, ``resource=...``, header ``Metadata: true`` and at
most one of ``client_id``, ``msi_res_id``, ``object_id``. Its probe (inside a
credential chain) sends the same request WITHOUT the ``Metadata`` header and only
wants an answer: real IMDS says 400 "Required metadata header not specified".

Which identity a caller gets (aad-pod-identity's NMI decides by the calling pod):
identities bound with ``bind_pod_identity(identity, selector=None)`` belong to the
node and every caller may use them; ``selector="orders"`` binds an identity to pods
labelled ``aadpodidbinding: orders`` only. All callers here come from 127.0.0.1, so
the calling pod's selector is ``state.imds_caller`` (set it with
``AzureFakes.set_imds_caller``) or, per request, the header ``X-Sandbox-Pod-Selector``.
A requested identity the caller may not use gets 400 "Identity not found" (the SDK
turns a 400 into ``CredentialUnavailableError``); several usable identities and no
selector in the request get IMDS's "Multiple user assigned identities exist" 400.
"""

from __future__ import annotations

import time

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.azure.auth import KNOWN_RESOURCES, TokenIssuer
from secretsboot.sandbox.azure.state import AzureState, Identity

TOKEN_PATH = "/metadata/identity/oauth2/token"  # noqa: S105 - a URL path
POD_SELECTOR_HEADER = "X-Sandbox-Pod-Selector"
_API_VERSIONS = ("2017-08-01", "2017-09-01", "2018-02-01", "2019-08-01", "2021-02-01")


def _imds_error(status: int, error: str, description: str) -> Response:
    return Response(status, {"error": error, "error_description": description})


class ImdsApp(FakeApp):
    name = "imds"

    def __init__(self, state: AzureState, issuer: TokenIssuer) -> None:
        super().__init__()
        self.state = state
        self.tokens = issuer

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 429:
            body = {"error": "too_many_requests", "error_description": "Too many requests"}
        else:
            body = {"error": "unknown_error", "error_description": "IMDS is unavailable"}
        return Response(status, body, headers)

    def handle(self, req: Request) -> Response:
        if req.path.rstrip("/") != TOKEN_PATH:
            return _imds_error(404, "not_found", f"Unknown path {req.path}")
        if req.method != "GET":
            return _imds_error(405, "invalid_request", "Only GET is supported")
        if req.headers.get("Metadata", "").lower() != "true":
            return _imds_error(400, "invalid_request", "Required metadata header not specified")
        api_version = req.arg("api-version")
        if not api_version:
            return _imds_error(
                400, "invalid_request", "Required query variable 'api-version' is missing"
            )
        if api_version not in _API_VERSIONS:
            return _imds_error(400, "invalid_request", "Invalid request parameters: api-version")
        resource = req.arg("resource")
        if not resource:
            return _imds_error(
                400, "invalid_request", "Required query variable 'resource' is missing"
            )
        if resource.rstrip("/") not in KNOWN_RESOURCES:
            return _imds_error(
                400,
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource} was not found in the "
                f"tenant named {self.state.tenant_id}.",
            )
        selector = req.headers.get(POD_SELECTOR_HEADER) or self.state.imds_caller
        usable = self.state.imds_identities(selector)
        chosen_or_error = self._choose(req, usable)
        if isinstance(chosen_or_error, Response):
            return chosen_or_error
        identity = chosen_or_error
        token, lifetime = self.tokens.mint(
            identity.principal_id,
            identity.client_id,
            resource,
            acr="2",
            managed_identity_id=identity.id,
        )
        now = int(time.time())
        # IMDS sends every number as a string
        return Response(
            200,
            {
                "access_token": token,
                "client_id": identity.client_id,
                "expires_in": str(lifetime),
                "expires_on": str(now + lifetime),
                "ext_expires_in": str(lifetime),
                "not_before": str(now),
                "resource": resource,
                "token_type": "Bearer",
            },
        )

    def _choose(self, req: Request, usable: list[Identity]) -> Identity | Response:
        client_id = req.arg("client_id") or req.arg("clientid")
        res_id = req.arg("msi_res_id") or req.arg("mi_res_id")
        object_id = req.arg("object_id")
        if sum(bool(x) for x in (client_id, res_id, object_id)) > 1:
            return _imds_error(
                400,
                "invalid_request",
                "Only one of client_id, object_id or msi_res_id may be specified",
            )
        if client_id:
            match = [i for i in usable if i.client_id.lower() == client_id.lower()]
        elif res_id:
            match = [i for i in usable if i.id.lower() == res_id.rstrip("/").lower()]
        elif object_id:
            match = [i for i in usable if i.principal_id.lower() == object_id.lower()]
        else:
            if len(usable) > 1:
                return _imds_error(
                    400,
                    "invalid_request",
                    "Multiple user assigned identities exist, please specify the clientId / "
                    "resourceId of the identity in the token request",
                )
            match = usable
        if not match:
            return _imds_error(400, "invalid_request", "Identity not found")
        return match[0]
