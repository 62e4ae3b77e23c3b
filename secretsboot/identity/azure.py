"""Entra ID access tokens with the lean HTTP client.

Three ways a pod gets one, each a :class:`TokenSource`:

- :class:`WorkloadIdentity`: the projected service-account token
  (``AZURE_FEDERATED_TOKEN_FILE``) exchanged at
  ``{AZURE_AUTHORITY_HOST}/{tenant}/oauth2/v2.0/token`` as a client assertion;
- :class:`ManagedIdentity`: IMDS (``AZURE_POD_IDENTITY_AUTHORITY_HOST`` when set:
  aad-pod-identity's NMI, or a test fake), ``GET /metadata/identity/oauth2/token``;
- :class:`ServicePrincipal`: ``AZURE_CLIENT_SECRET`` with the client-credentials grant.

Entra's errors are translated once, in :func:`secretsboot.transport.status.entra_error`:
AADSTS70021/700211/700212/700213 (no matching federated credential) are a
:class:`~secretsboot.errors.PropagationPendingError`, since a just-created credential
takes a while to reach every Entra node. Every wait is bounded by the
:class:`~secretsboot.transport.Deadline` the caller passes.

>>> src = WorkloadIdentity.from_env({"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c",
...     "AZURE_FEDERATED_TOKEN_FILE": "/tok", "AZURE_AUTHORITY_HOST": "https://login.example"})
>>> src.describe()
'workload identity c'
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping

from secretsboot.contract import DEFAULT_AUTHORITY
from secretsboot.errors import BadInputError, NotFoundError, UnavailableError
from secretsboot.transport import Deadline, HttpClient, Response, form, quote
from secretsboot.transport.status import entra_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol, Self

    class TokenSource(Protocol):
        def token(self, scope: str, deadline: Deadline) -> str:
            """An access token for ``scope`` (e.g. ``https://vault.azure.net/.default``)."""
            ...

        def describe(self) -> str: ...

        def close(self) -> None: ...


# The real IMDS address, used only inside Azure when AZURE_POD_IDENTITY_AUTHORITY_HOST is
# unset; tests always set that variable (and tests/conftest.py refuses non-loopback).
IMDS_DEFAULT = "http://169.254.169.254"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class _Cached:
    """Caches one token per scope until a minute before it expires; thread-safe."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, scope: str, deadline: Deadline) -> str:
        # one request per scope even when 20 threads ask at once; the wait is bounded too
        if not self._lock.acquire(timeout=max(0.0, deadline.remaining())):
            raise UnavailableError(f"no token for {self.describe()} before the deadline")
        try:
            cached = self._tokens.get(scope)
            if cached and cached[1] - 60 > time.time():
                return cached[0]
            token, expires_in = self._request(scope, deadline)
            self._tokens[scope] = (token, time.time() + expires_in)
            return token
        finally:
            self._lock.release()

    def describe(self) -> str:
        raise NotImplementedError

    def _request(self, scope: str, deadline: Deadline) -> tuple[str, float]:
        raise NotImplementedError


def _token_reply(resp: Response, who: str, subject: str | None) -> tuple[str, float]:
    if resp.status == 200:
        body = resp.json()  # unparsable: unavailable (retried)
        if isinstance(body, dict) and body.get("access_token"):
            return str(body["access_token"]), float(body.get("expires_in") or 300)
        raise UnavailableError(f"the token reply for {who} holds no access_token")
    raise entra_error(resp.status, resp.json_or_none(), who, subject, resp.retry_after)


def token_subject(token: str) -> str | None:
    """The ``sub`` claim of a JWT, read without verifying (for error messages only)."""
    import base64

    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
        sub = claims.get("sub")
        return str(sub) if sub else None
    except (IndexError, ValueError):
        return None


class _EntraGrant(_Cached):
    """A client-credentials grant at ``{authority}/{tenant}/oauth2/v2.0/token``.

    The subclasses differ only in the credential they add to the form (a federated
    assertion or a client secret), in the variable that holds it and in what a pod
    missing it is told.
    """

    CREDENTIAL_VARIABLE: str
    # what a pod missing a variable is told; {missing} names the unset ones
    NOT_SET_UP: str
    SET_UP_HINT: str

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        credential: str,
        authority_host: str,
        ca_file: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._credential = credential
        self.authority_host = authority_host.rstrip("/")
        self._http = HttpClient(self.authority_host, ca_file=ca_file, what="Entra ID", env=env)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        tenant_id: str | None = None,
        client_id: str | None = None,
        authority_host: str | None = None,
        ca_file: str | None = None,
    ) -> Self:
        """Tenant, client id and authority: the explicit values, else the AZURE_* variables."""
        tenant = tenant_id or env.get("AZURE_TENANT_ID")
        client = client_id or env.get("AZURE_CLIENT_ID")
        credential = env.get(cls.CREDENTIAL_VARIABLE)
        missing = [
            n
            for n, v in (
                ("AZURE_TENANT_ID", tenant),
                ("AZURE_CLIENT_ID", client),
                (cls.CREDENTIAL_VARIABLE, credential),
            )
            if not v
        ]
        if missing:
            raise BadInputError(
                cls.NOT_SET_UP.format(missing=", ".join(missing)), hint=cls.SET_UP_HINT
            )
        assert tenant and client and credential  # noqa: S101 - narrowed above
        authority = authority_host or env.get("AZURE_AUTHORITY_HOST") or DEFAULT_AUTHORITY
        return cls(tenant, client, credential, authority, ca_file, env)

    def _grant(
        self, scope: str, credential: Mapping[str, str], deadline: Deadline, subject: str | None
    ) -> tuple[str, float]:
        body = form(
            {
                "client_id": self.client_id,
                "scope": scope,
                "grant_type": "client_credentials",
                **credential,
            }
        )
        resp = self._http.request(
            "POST",
            f"/{quote(self.tenant_id)}/oauth2/v2.0/token",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=body,
            deadline=deadline,
        )
        return _token_reply(resp, self.describe(), subject)

    def close(self) -> None:
        self._http.close()


class WorkloadIdentity(_EntraGrant):
    """The webhook's four variables -> a token (a client-assertion exchange).

    Built as ``WorkloadIdentity(tenant_id, client_id, token_file, authority_host)``.
    """

    CREDENTIAL_VARIABLE = "AZURE_FEDERATED_TOKEN_FILE"
    NOT_SET_UP = "workload identity is not set up in this pod: {missing} unset"
    SET_UP_HINT = (
        "label the POD (not the service account) azure.workload.identity/use: "
        "'true' and annotate its service account azure.workload.identity/client-id"
    )

    @property
    def token_file(self) -> str:
        return self._credential

    def describe(self) -> str:
        return f"workload identity {self.client_id}"

    def assertion(self) -> str:
        try:
            with open(self.token_file, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise BadInputError(
                f"cannot read the federated token file {self.token_file}: {exc.strerror}",
                hint="is the azure-identity-token projected volume mounted?",
            ) from None

    def _request(self, scope: str, deadline: Deadline) -> tuple[str, float]:
        assertion = self.assertion()  # re-read each time: the kubelet rotates it
        credential = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
        return self._grant(scope, credential, deadline, token_subject(assertion))


class ServicePrincipal(_EntraGrant):
    """``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET`` (client-credentials grant).

    Built as ``ServicePrincipal(tenant_id, client_id, secret, authority_host)``.
    """

    CREDENTIAL_VARIABLE = "AZURE_CLIENT_SECRET"
    NOT_SET_UP = "service principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
    SET_UP_HINT = "mount them from a Kubernetes Secret (or use workload identity)"

    def describe(self) -> str:
        return f"service principal {self.client_id}"

    def _request(self, scope: str, deadline: Deadline) -> tuple[str, float]:
        return self._grant(scope, {"client_secret": self._credential}, deadline, None)


class ManagedIdentity(_Cached):
    """IMDS: a VM/VMSS managed identity, or aad-pod-identity's NMI in front of it."""

    def __init__(
        self, endpoint: str, client_id: str | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        self.endpoint = endpoint.rstrip("/")
        self.client_id = client_id
        # IMDS (and aad-pod-identity's NMI in front of it) is plain http on the node by design
        self._http = HttpClient(self.endpoint, what="IMDS", env=env, cleartext_ok=True)

    @classmethod
    def from_env(cls, env: Mapping[str, str], client_id: str | None = None) -> ManagedIdentity:
        return cls(env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST") or IMDS_DEFAULT, client_id, env)

    def describe(self) -> str:
        who = f" {self.client_id}" if self.client_id else ""
        return f"managed identity{who} (IMDS {self.endpoint})"

    def _request(self, scope: str, deadline: Deadline) -> tuple[str, float]:
        resource = scope.removesuffix("/.default")
        query = {"api-version": "2018-02-01", "resource": resource}
        if self.client_id:
            query["client_id"] = self.client_id
        resp = self._http.request(
            "GET",
            "/metadata/identity/oauth2/token?" + form(query).decode(),
            headers={"Metadata": "true"},
            deadline=deadline,
        )
        if resp.status in (400, 404) and not isinstance(resp.json_or_none(), dict):
            raise NotFoundError(
                f"no managed identity available from {self.endpoint}",
                hint="bind one with aadpodidbinding (pod identity) or assign one to the node pool",
            )
        return _token_reply(resp, self.describe(), None)

    def close(self) -> None:
        self._http.close()


def token_source(
    identity: str,
    env: Mapping[str, str],
    *,
    tenant_id: str | None,
    client_id: str | None,
    authority_host: str | None,
    ca_file: str | None,
) -> TokenSource:
    """The lean token source for a FetchConfig ``identity``."""
    grants: dict[str, type[_EntraGrant]] = {
        "service-principal": ServicePrincipal,
        "workload-identity": WorkloadIdentity,
    }
    if identity in grants:
        return grants[identity].from_env(
            env,
            tenant_id=tenant_id,
            client_id=client_id,
            authority_host=authority_host,
            ca_file=ca_file,
        )
    if identity == "pod-identity":
        return ManagedIdentity.from_env(env, client_id)
    raise BadInputError(
        f"identity '{identity}' cannot get Azure tokens",
        hint="set identity: workload-identity, pod-identity or service-principal",
    )
