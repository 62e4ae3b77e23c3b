"""The Kubernetes API fake's HTTP face: REST over the object store, bearer-token
authentication, RBAC, TokenRequest/TokenReview, access reviews and the
service-account OIDC issuer. :class:`~secretsboot.sandbox.kube.fake.KubeFake`
serves it over HTTPS.

Requests and errors follow the real API server: ``Status`` objects with the
same reasons and messages (``secrets "db" not found``; ``... is forbidden: User
"system:serviceaccount:ns:sa" cannot get resource "secrets" ...``).

Where things live: ``identity`` (authentication, RBAC checks, token and access
reviews), ``rest`` (the verbs, ``dryRun``), ``patches`` (merge, JSON and
strategic merge patch), ``apply`` and ``fields`` (server-side apply,
``managedFields``), ``watch`` (event window and streams), ``store`` (objects,
namespace lifecycle, finalizers), ``bodies``/``protobuf``/``tables``/``openapi``
(wire formats kubectl uses), ``discovery``.
"""

from __future__ import annotations

import logging
import threading

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.kube import discovery, openapi
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.identity import Identity
from secretsboot.sandbox.kube.resources import ApiError
from secretsboot.sandbox.kube.rest import Rest
from secretsboot.sandbox.kube.store import ObjectStore
from secretsboot.sandbox.tokens import SigningKey, jwks

log = logging.getLogger(__name__)


class KubeApp(Identity, Rest, FakeApp):
    """The HTTP face of the fake API server (see :class:`KubeFake` for the lifecycle)."""

    name = "kubernetes"

    def __init__(self, store: ObjectStore, signing_key: SigningKey, admin_token: str) -> None:
        super().__init__()
        self.store = store
        self.signing_key = signing_key
        self.admin_token = admin_token
        # the issuer its tokens carry: the server's own URL, or (``sandbox up --spec``)
        # the spec's azure.oidcIssuer, as an AKS cluster's tokens carry its public issuer
        self.issuer_url: str | None = None
        self.closing = threading.Event()  # set when the server stops: watches end
        self.bookmark_seconds = 60.0  # how often a watch with bookmarks gets one

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        reason = "TooManyRequests" if status == 429 else "ServiceUnavailable"
        message = "injected fault: " + ("too many requests" if status == 429 else "unavailable")
        err = ApiError(status, reason, message)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response(status, err.status(), headers)

    def handle(self, req: Request) -> Response:
        try:
            return self._route(req)
        except ApiError as exc:
            return Response(exc.code, exc.status())

    def _route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        public = self._public(req, path) if req.method in ("GET", "HEAD") else None
        if public is not None:
            return public
        user = self._authenticate(req)
        segs = path.strip("/").split("/")
        found = self._discovery(path, segs)
        if found is None and req.method == "POST":
            found = self._reviews(req, user, path)
        return found if found is not None else self._resource_request(req, user, segs)

    def _public(self, req: Request, path: str) -> Response | None:
        """What an anonymous caller may read: OIDC discovery, JWKS, health, version."""
        if path == "/.well-known/openid-configuration":
            return Response(200, self.openid_configuration())
        if path == "/openid/v1/jwks":
            return Response(
                200, jwks([self.signing_key]), {"Content-Type": "application/jwk-set+json"}
            )
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(200, "ok")
        if path == "/version":  # public, as system:public-info-viewer allows
            return Response(200, discovery.version())
        return None

    @staticmethod
    def _discovery(path: str, segs: list[str]) -> Response | None:
        """API discovery: /api, /apis, a group, a group version's resource list, and the
        OpenAPI v3 documents kubectl reads."""
        if path == "/openapi/v3":
            return Response(200, openapi.index())
        if path.startswith("/openapi/v3/"):
            return Response(200, openapi.document(path[len("/openapi/v3/") :]))
        if path == "/api":
            return Response(
                200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
            )
        if path == "/apis":
            return Response(200, discovery.group_list())
        if segs[0] == "apis" and len(segs) == 2:
            for group in discovery.group_list()["groups"]:
                if group["name"] == segs[1]:
                    return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **group})
            raise res.ApiError(404, "NotFound", "the server could not find the requested resource")
        if segs[0] == "api" and len(segs) == 2:
            return Response(200, discovery.resource_list("", segs[1]))
        if segs[0] == "apis" and len(segs) == 3:
            return Response(200, discovery.resource_list(segs[1], segs[2]))
        return None
