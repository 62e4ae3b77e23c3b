"""The Entra ID (Azure AD) fake: OIDC discovery, JWKS and the v2.0 token endpoint.

What MSAL (through azure-identity) calls, checked against msal 1.39:

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (tenant discovery, always);
* ``GET /common/discovery/instance?authorization_endpoint=...&api-version=1.0``: MSAL
  sends instance discovery to ``login.microsoftonline.com`` for any host it does not
  know, so a client of this fake MUST pass ``disable_instance_discovery=True`` (the
  route is served for clients given an explicit discovery URL);
* ``POST /{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials`` and
  either ``client_secret`` (an app added with ``add_service_principal``) or
  ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer``
  + ``client_assertion`` (workload identity: the client id is a managed identity's).

A presented assertion is checked the way Entra checks it: a federated identity
credential on the identity must match its issuer, subject and audience exactly
(else ``AADSTS700211`` issuer, ``700213`` subject, ``7002138`` subject equal only
case-insensitively, ``700212`` audience; ``70021`` when it has none); then the
issuer's ``/.well-known/openid-configuration`` and ``jwks_uri`` are fetched over
HTTPS trusting the sandbox CA (cached, loopback issuers only), and the RS256
signature and lifetime are verified. Errors carry Entra's body: ``error``,
``error_description`` (``AADSTSnnnn: ...`` with trace and correlation ids),
``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.azure.auth import KNOWN_RESOURCES, TokenIssuer
from secretsboot.sandbox.azure.state import AzureState, Identity, ServicePrincipal
from secretsboot.sandbox.tokens import TokenError, unverified_claims, verify

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_METADATA_TTL_S = 300.0
_FETCH_TIMEOUT_S = 5.0


class IssuerMetadataError(Exception):
    pass


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class IssuerCache:
    """JWKS of external OIDC issuers, fetched over HTTPS (loopback only) and cached."""

    def __init__(self, ca_path: Path | None) -> None:
        self._ctx = ssl.create_default_context(cafile=str(ca_path) if ca_path else None)
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self.fetches: list[str] = []  # URLs fetched, for tests
        # public issuer URL -> the loopback server that publishes its metadata (the
        # sandbox's Kubernetes fake standing in for a cluster's public OIDC issuer)
        self.aliases: dict[str, str] = {}

    def _get_json(self, url: str) -> Any:
        parts = urlsplit(url)
        if parts.scheme != "https" or not _is_loopback(parts.hostname or ""):
            raise IssuerMetadataError(f"refusing to fetch {url}: the sandbox stays on loopback")
        self.fetches.append(url)
        req = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310 - https only, checked above
                req, timeout=_FETCH_TIMEOUT_S, context=self._ctx
            ) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except (OSError, ValueError, urllib.error.URLError) as exc:
            raise IssuerMetadataError(f"{url}: {exc}") from None

    def keys(self, issuer: str, *, refresh: bool = False) -> dict[str, Any]:
        with self._lock:
            hit = self._cache.get(issuer)
        if hit is not None and not refresh and time.monotonic() - hit[0] < _METADATA_TTL_S:
            return hit[1]
        base = self.aliases.get(issuer.rstrip("/"), issuer).rstrip("/")
        config = self._get_json(base + "/.well-known/openid-configuration")
        if not isinstance(config, dict) or not isinstance(config.get("jwks_uri"), str):
            raise IssuerMetadataError("the discovery document has no jwks_uri")
        key_set = self._get_json(config["jwks_uri"])
        if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
            raise IssuerMetadataError("the jwks_uri document has no keys")
        with self._lock:
            self._cache[issuer] = (time.monotonic(), key_set)
        return key_set


class EntraApp(FakeApp):
    """Entra ID for one tenant (``state.tenant_id``)."""

    name = "entra"

    def __init__(self, state: AzureState, issuer: TokenIssuer, ca_path: Path | None) -> None:
        super().__init__()
        self.state = state
        self.tokens = issuer
        self.issuers = IssuerCache(ca_path)

    # ---- errors ------------------------------------------------------------------

    def aad_error(
        self,
        status: int,
        error: str,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {message}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {corr}\r\nTimestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"{self.base_url}/error?code={code}",
        }
        return Response(status, body, headers or {})

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return self.aad_error(
            status,
            "temporarily_unavailable",
            90033,
            "A transient error has occurred. Please try again.",
            headers,
        )

    # ---- routing -----------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        parts = [p for p in req.path.split("/") if p]
        if req.method == "GET" and parts == ["common", "discovery", "instance"]:
            return self._instance_discovery(req)
        if not parts:
            return Response(404, {"error": "not_found"})
        tenant, rest = parts[0], parts[1:]
        if req.method == "GET" and rest in (
            ["discovery", "v2.0", "keys"],
            ["discovery", "keys"],
        ):
            return Response(200, self.tokens.jwks())
        if tenant.lower() != self.state.tenant_id.lower():
            return self.aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )
        if req.method == "GET" and rest == ["v2.0", ".well-known", "openid-configuration"]:
            return Response(200, self.openid_configuration())
        if req.method == "GET" and rest == [".well-known", "openid-configuration"]:
            return Response(200, self.openid_configuration(v1=True))
        if rest in (["oauth2", "v2.0", "token"], ["oauth2", "token"]):
            if req.method != "POST":
                return self.aad_error(
                    400, "invalid_request", 900561, "The endpoint only accepts POST requests."
                )
            v1 = rest == ["oauth2", "token"]
            resp = self._token(req, v1=v1)
            return _v1_shape(resp) if v1 and resp.status == 200 else resp
        return Response(404, {"error": "not_found", "error_description": req.path})

    def openid_configuration(self, *, v1: bool = False) -> dict[str, Any]:
        base = f"{self.base_url}/{self.state.tenant_id}"
        suffix = "" if v1 else "/v2.0"
        return {
            "token_endpoint": f"{base}/oauth2{suffix}/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery{suffix}/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": self.tokens.v1_issuer if v1 else self.tokens.issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2{suffix}/authorize",
            "device_authorization_endpoint": f"{base}/oauth2{suffix}/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2{suffix}/logout",
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "acr",
                "nonce",
                "tid",
                "ver",
                "oid",
                "azp",
            ],
            "tenant_region_scope": "NA",
            "cloud_instance_name": "microsoftonline.com",
        }

    def _instance_discovery(self, req: Request) -> Response:
        endpoint = req.arg("authorization_endpoint") or ""
        path = [p for p in urlsplit(endpoint).path.split("/") if p]
        tenant = path[0] if path else self.state.tenant_id
        host = urlsplit(self.base_url).netloc
        return Response(
            200,
            {
                "tenant_discovery_endpoint": f"{self.base_url}/{tenant}/v2.0/.well-known/"
                "openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    # ---- the token endpoint ------------------------------------------------------

    def _token(self, req: Request, *, v1: bool) -> Response:
        try:
            form = req.form()
        except UnicodeDecodeError:
            form = {}
        grant = form.get("grant_type", "")
        if not grant:
            return self._missing("grant_type")
        if grant != "client_credentials":
            return self.aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        client_id = form.get("client_id", "")
        if not client_id:
            return self._missing("client_id")
        resource_or_error = self._resource(form, v1=v1)
        if isinstance(resource_or_error, Response):
            return resource_or_error
        resource = resource_or_error

        identity = self.state.identity_by_client_id(client_id)
        with self.state.lock:
            sp = self.state.service_principals.get(client_id.lower())
        if identity is None and sp is None:
            return self.aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.state.tenant_id}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
            )
        if "client_secret" in form:
            return self._with_secret(form["client_secret"], client_id, sp, resource)
        if "client_assertion" in form:
            if form.get("client_assertion_type") != JWT_BEARER:
                return self.aad_error(
                    400,
                    "invalid_request",
                    50027,
                    "JWT token is invalid or malformed (client_assertion_type must be "
                    f"'{JWT_BEARER}').",
                )
            return self._with_assertion(form["client_assertion"], client_id, identity, resource)
        return self.aad_error(
            401,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the "
            "'client_credentials' grant type.",
        )

    def _missing(self, param: str) -> Response:
        return self.aad_error(
            400,
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{param}'.",
        )

    def _resource(self, form: dict[str, str], *, v1: bool) -> str | Response:
        if v1:
            resource = form.get("resource", "")
            if not resource:
                return self._missing("resource")
        else:
            scope = form.get("scope", "")
            if not scope:
                return self._missing("scope")
            scopes = scope.split()
            defaults = [s for s in scopes if s.endswith("/.default")]
            if len(scopes) != 1 or len(defaults) != 1:
                return self.aad_error(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {scope} is not valid. Client credential flows "
                    "must have a scope value with /.default suffixed to the resource identifier "
                    "(application ID URI).",
                )
            resource = defaults[0][: -len("/.default")]
        if resource.rstrip("/") not in KNOWN_RESOURCES:
            return self.aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.state.tenant_id}. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You might have sent your authentication request to the wrong tenant.",
            )
        return resource

    def _issue(
        self, object_id: str, client_id: str, resource: str, acr: str, mi: str | None
    ) -> Response:
        token, lifetime = self.tokens.mint(
            object_id, client_id, resource, acr=acr, managed_identity_id=mi
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": lifetime - 1,
            "ext_expires_in": lifetime - 1,
            "access_token": token,
        }
        return Response(200, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

    def _with_secret(
        self, secret: str, client_id: str, sp: ServicePrincipal | None, resource: str
    ) -> Response:
        if sp is None or not sp.secret_matches(secret):
            return self.aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID, for a secret added to app "
                f"'{client_id}'.",
            )
        return self._issue(sp.object_id, sp.client_id, resource, "1", None)

    def _with_assertion(
        self, assertion: str, client_id: str, identity: Identity | None, resource: str
    ) -> Response:
        try:
            claims = unverified_claims(assertion)
        except TokenError:
            return self.aad_error(
                400, "invalid_request", 50027, "JWT token is invalid or malformed."
            )
        issuer = claims.get("iss")
        subject = claims.get("sub")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
        if not isinstance(issuer, str) or not isinstance(subject, str) or not audiences:
            return self.aad_error(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed (the assertion must carry iss, sub and aud).",
            )
        fic = (
            self.state.matching_federated_credential(identity, issuer, subject, audiences)
            if identity is not None
            else None
        )
        if fic is None:
            code, message = self._mismatch(identity, issuer, subject, audiences)
            return self.aad_error(401, "invalid_client", code, message)
        if identity is None:  # unreachable: a FIC only matches on an identity
            raise RuntimeError("matched a federated credential without an identity")
        try:
            key_set = self.issuers.keys(issuer)
            try:
                verify(assertion, key_set, audience=fic.audiences, issuer=issuer)
            except TokenError as exc:
                if exc.reason != "unknown_key":
                    raise
                # a rotated issuer key: refetch once, as Entra does on an unknown kid
                key_set = self.issuers.keys(issuer, refresh=True)
                verify(assertion, key_set, audience=fic.audiences, issuer=issuer)
        except IssuerMetadataError:
            return self.aad_error(
                400,
                "invalid_request",
                50166,
                f"Request to External OIDC endpoint failed. (issuer '{issuer}')",
            )
        except TokenError as exc:
            return self._assertion_error(exc, claims, _kid(assertion), client_id)
        return self._issue(identity.principal_id, identity.client_id, resource, "2", identity.id)

    def _mismatch(
        self, identity: Identity | None, issuer: str, subject: str, audiences: list[str]
    ) -> tuple[int, str]:
        """The code Entra gives an assertion no credential matches: 700211 (issuer),
        700213 (subject; also what a credential still propagating gives), 7002138 (the
        subject matches only when case is ignored), 700212 (audience); 70021 when the
        identity has no credential at all."""
        now = time.monotonic()
        with self.state.lock:
            fics = list(identity.federated.values()) if identity is not None else []
        seen = [f for f in fics if f.effective_at <= now]
        lead = "No matching federated identity record found for presented assertion"
        tail = (
            ". Please check your federated identity credential Subject, Audience and Issuer "
            "against the presented assertion. https://learn.microsoft.com/entra/workload-id/"
            "workload-identity-federation"
        )
        same_issuer = [f for f in seen if f.issuer == issuer]
        same_subject = [f for f in same_issuer if f.subject == subject]
        if not fics:
            return 70021, lead + tail
        if not seen:  # created, not yet propagated: reported as a subject mismatch
            return 700213, f"{lead} subject '{subject}'{tail}"
        if not same_issuer:
            return 700211, f"{lead} issuer '{issuer}'{tail}"
        if same_subject:
            return 700212, f"{lead} audience '{','.join(audiences)}'{tail}"
        if any(f.subject.lower() == subject.lower() for f in same_issuer):
            return 7002138, (
                f"The presented assertion subject '{subject}' matches a federated identity "
                f"record only when case is ignored; subjects are compared case-sensitively{tail}"
            )
        return 700213, f"{lead} subject '{subject}'{tail}"

    def _assertion_error(
        self, exc: TokenError, claims: dict[str, Any], kid: str, client_id: str
    ) -> Response:
        if exc.reason in ("expired", "not_yet_valid"):

            def iso(v: Any) -> str:
                try:
                    return dt.datetime.fromtimestamp(int(v), dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
                except (TypeError, ValueError):
                    return "unknown"

            now = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
            return self.aad_error(
                400,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {now}, "
                f"assertion valid from {iso(claims.get('nbf', claims.get('iat')))}, expiry "
                f"time of assertion {iso(claims.get('exp'))}. Review the documentation at "
                "https://docs.microsoft.com/azure/active-directory/develop/"
                "active-directory-certificate-credentials .",
            )
        if exc.reason in ("bad_signature", "unknown_key"):
            return self.aad_error(
                401,
                "invalid_client",
                50013,
                f"Assertion failed signature validation. [Reason - {exc.message}., "
                f"Thumbprint of key used by client: '{kid}', app Id '{client_id}']",
            )
        return self.aad_error(
            400, "invalid_request", 50027, f"JWT token is invalid or malformed ({exc.message})."
        )


def _v1_shape(resp: Response) -> Response:
    """The v1 endpoint's success body: numbers as strings, with ``expires_on``,
    ``not_before`` and ``resource``."""
    body = resp.body if isinstance(resp.body, dict) else {}
    token = str(body.get("access_token", ""))
    claims = unverified_claims(token)
    lifetime = str(body.get("expires_in", ""))
    shaped = {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "expires_on": str(claims.get("exp", "")),
        "not_before": str(claims.get("nbf", "")),
        "resource": str(claims.get("aud", "")),
        "access_token": token,
    }
    return Response(200, shaped, resp.headers)


def _kid(token: str) -> str:
    try:
        return str(jwt.get_unverified_header(token).get("kid", "unknown"))
    except jwt.PyJWTError:
        return "unknown"
