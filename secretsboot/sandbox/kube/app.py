"""The Kubernetes API fake's HTTP face: REST over the object store, bearer-token
authentication, RBAC, TokenRequest/TokenReview, access reviews and the
service-account OIDC issuer. :class:`~secretsboot.sandbox.kube.fake.KubeFake`
serves it over HTTPS.

Requests and errors follow the real API server: ``Status`` objects with the
same reasons and messages (``secrets "db" not found``; ``... is forbidden: User
"system:serviceaccount:ns:sa" cannot get resource "secrets" ...``).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
import uuid
from typing import Any

import yaml

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.kube import discovery
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.rbac import Attributes, UserInfo, authorize, forbidden_message
from secretsboot.sandbox.kube.resources import ApiError, Resource
from secretsboot.sandbox.kube.store import ObjectStore
from secretsboot.sandbox.tokens import SigningKey, TokenError, jwks, unverified_claims, verify

log = logging.getLogger(__name__)

_MIN_TOKEN_SECONDS = 600
# The API server answers DELETE with the object for these (ReturnDeletedObject or
# graceful deletion), with a Status for everything else.
_DELETE_RETURNS_OBJECT = frozenset({"pods", "serviceaccounts"})


def _ts(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_success(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": obj["metadata"]["name"], "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    details["uid"] = obj["metadata"].get("uid")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


#: (method, names one object?) -> the RBAC verb of a resource request
_VERBS = {
    ("GET", False): "list",
    ("GET", True): "get",
    ("HEAD", True): "get",
    ("HEAD", False): "list",
    ("POST", False): "create",
    ("PUT", True): "update",
    ("PATCH", True): "patch",
    ("DELETE", True): "delete",
}


class KubeApp(FakeApp):
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

    # -- identity ------------------------------------------------------------------
    @property
    def issuer(self) -> str:
        return self.issuer_url or self.base_url

    @property
    def api_audiences(self) -> list[str]:
        return [self.issuer]

    def mint_token(
        self,
        namespace: str,
        service_account: str,
        audiences: list[str] | None = None,
        expiration_seconds: int = 3600,
        pod: str | None = None,
    ) -> str:
        """A service-account token with the real claim shape (the SA must exist)."""
        sa = self.store.get("serviceaccounts", service_account, namespace)
        now = int(time.time())
        k8s: dict[str, Any] = {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": sa["metadata"]["uid"]},
        }
        if pod is not None:
            pod_obj = self.store.get("pods", pod, namespace)
            k8s["pod"] = {"name": pod, "uid": pod_obj["metadata"]["uid"]}
        claims = {
            "aud": list(audiences) if audiences else self.api_audiences,
            "exp": now + int(expiration_seconds),
            "iat": now,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        return self.signing_key.sign(claims)

    def review_token(self, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
        """A TokenReview ``status`` for ``token`` (as the API server computes it)."""
        wanted = list(audiences) if audiences else self.api_audiences
        if secrets.compare_digest(token, self.admin_token):
            return {
                "authenticated": True,
                "user": {"username": "secretsboot-sandbox-admin", "groups": ["system:masters"]},
                "audiences": wanted,
            }
        try:
            claims = verify(
                token, jwks([self.signing_key]), audience=None, issuer=self.issuer, leeway=5
            )
        except TokenError as exc:
            return {"user": {}, "error": f"invalid bearer token, {exc.message}"}
        aud = claims.get("aud")
        token_aud = [aud] if isinstance(aud, str) else list(aud or [])
        matched = [a for a in wanted if a in token_aud]
        if not matched:
            return {"user": {}, "error": "invalid bearer token, token audiences do not match"}
        k8s = claims.get("kubernetes.io") or {}
        ns = k8s.get("namespace")
        sa_claim = k8s.get("serviceaccount") or {}
        try:
            sa = self.store.get("serviceaccounts", str(sa_claim.get("name")), str(ns))
        except ApiError:
            return {"user": {}, "error": "invalid bearer token, service account not found"}
        if sa["metadata"]["uid"] != sa_claim.get("uid"):
            return {
                "user": {},
                "error": "invalid bearer token, service account UID does not match the token",
            }
        extra: dict[str, list[str]] = {}
        pod = k8s.get("pod")
        if pod:
            try:
                pod_obj = self.store.get("pods", str(pod.get("name")), str(ns))
            except ApiError:
                return {"user": {}, "error": "invalid bearer token, pod not found"}
            if pod_obj["metadata"]["uid"] != pod.get("uid"):
                return {"user": {}, "error": "invalid bearer token, pod UID does not match"}
            extra["authentication.kubernetes.io/pod-name"] = [str(pod.get("name"))]
            extra["authentication.kubernetes.io/pod-uid"] = [str(pod.get("uid"))]
        user: dict[str, Any] = {
            "username": f"system:serviceaccount:{ns}:{sa_claim.get('name')}",
            "uid": sa["metadata"]["uid"],
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns}",
                "system:authenticated",
            ],
        }
        if extra:
            user["extra"] = extra
        return {"authenticated": True, "user": user, "audiences": matched}

    def _authenticate(self, req: Request) -> UserInfo:
        token = req.bearer_token
        if token:
            status = self.review_token(token)
            if status.get("authenticated"):
                info = status["user"]
                user = UserInfo(info["username"], info.get("uid", ""), tuple(info["groups"]))
                return self._impersonate(req, user)
        raise ApiError(401, "Unauthorized", "Unauthorized")

    @staticmethod
    def _impersonate(req: Request, user: UserInfo) -> UserInfo:
        """``Impersonate-User`` (``kubectl --as``): admins only, as on a default cluster."""
        target = req.headers.get("impersonate-user")
        if not target:
            return user
        if not user.is_admin:
            raise ApiError(
                403,
                "Forbidden",
                f'users "{target}" is forbidden: User "{user.username}" cannot impersonate '
                'resource "users" in API group "" at the cluster scope',
            )
        groups = ["system:authenticated"]
        parts = target.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"]
        extra_group = req.headers.get("impersonate-group")
        if extra_group:
            groups.append(extra_group)
        return UserInfo(target, "", tuple(groups))

    def _authorize(self, user: UserInfo, attrs: Attributes) -> None:
        if not authorize(self.store, user, attrs):
            raise ApiError(
                403,
                "Forbidden",
                forbidden_message(user, attrs),
                name=attrs.name,
                group=attrs.api_group,
                kind=attrs.resource.split("/")[0],
            )

    # -- HTTP ----------------------------------------------------------------------
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
        """API discovery: /api, /apis, a group, a group version's resource list."""
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

    def _reviews(self, req: Request, user: Any, path: str) -> Response | None:
        """TokenReview and (Self)SubjectAccessReview, authorized like the real server."""
        if path == "/apis/authentication.k8s.io/v1/tokenreviews":
            self._authorize(
                user, Attributes("create", "authentication.k8s.io", "tokenreviews", None, None)
            )
            return self._token_review(req)
        if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            return self._access_review(req, user, "SelfSubjectAccessReview")
        if path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            self._authorize(
                user,
                Attributes("create", "authorization.k8s.io", "subjectaccessreviews", None, None),
            )
            return self._access_review(req, user, "SubjectAccessReview")
        return None

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.base_url}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    @staticmethod
    def _body(req: Request) -> Any:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json" and not ctype.endswith("+json"):
            # Like the real API server for a media type it does not serve (CBOR, protobuf):
            # 415 makes client-go (kubectl 1.3x) fall back to JSON.
            raise res.ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - "
                "accepted media types include: application/json, application/yaml",
            )
        try:
            return req.json()
        except ValueError:
            raise res.bad_request("the request body is not valid JSON") from None

    def _token_review(self, req: Request) -> Response:
        body = self._body(req) or {}
        spec = body.get("spec") or {}
        token = spec.get("token")
        if not token:
            raise res.ApiError(422, "Invalid", "TokenReview is invalid: spec.token: Required value")
        status = self.review_token(str(token), spec.get("audiences") or None)
        return Response(
            201,
            {
                "kind": "TokenReview",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": status,
            },
        )

    def _access_review(self, req: Request, user: UserInfo, kind: str) -> Response:
        """(Self)SubjectAccessReview: may the caller (or ``spec.user``/``groups``) do it?"""
        body = self._body(req) or {}
        spec = body.get("spec") or {}
        if kind == "SubjectAccessReview":
            username = str(spec.get("user") or "")
            if not username:
                raise res.ApiError(
                    422,
                    "Invalid",
                    "SubjectAccessReview.authorization.k8s.io is invalid: spec.user: "
                    'Invalid value: "": at least one of user or group must be specified',
                )
            user = UserInfo(username, str(spec.get("uid") or ""), tuple(spec.get("groups") or []))
        ra = spec.get("resourceAttributes") or {}
        resource = str(ra.get("resource", ""))
        if ra.get("subresource"):
            resource += "/" + str(ra["subresource"])
        attrs = Attributes(
            str(ra.get("verb", "")),
            str(ra.get("group", "")),
            resource,
            ra.get("namespace") or None,
            ra.get("name") or None,
        )
        allowed = authorize(self.store, user, attrs)
        return Response(
            201,
            {
                "kind": kind,
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": spec,
                "status": {"allowed": allowed},
            },
        )

    def _token_request(self, req: Request, user: UserInfo, ns: str, name: str) -> Response:
        self._authorize(user, Attributes("create", "", "serviceaccounts/token", ns, name))
        body = self._body(req) or {}
        spec = body.get("spec") or {}
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < _MIN_TOKEN_SECONDS:
            raise res.ApiError(
                422,
                "Invalid",
                f'TokenRequest.authentication.k8s.io "{name}" is invalid: spec.expirationSeconds: '
                f"Invalid value: {seconds}: may not specify a duration less than 10 minutes",
            )
        audiences = list(spec.get("audiences") or self.api_audiences)
        bound = spec.get("boundObjectRef") or {}
        pod = str(bound["name"]) if bound.get("kind") == "Pod" and bound.get("name") else None
        token = self.mint_token(ns, name, audiences, seconds, pod=pod)
        exp = unverified_claims(token)["exp"]
        return Response(
            201,
            {
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
                "spec": {
                    "audiences": audiences,
                    "expirationSeconds": seconds,
                    "boundObjectRef": bound or None,
                },
                "status": {"token": token, "expirationTimestamp": _ts(exp)},
            },
        )

    @staticmethod
    def _locate(segs: list[str]) -> tuple[str, Any, str | None, str | None, str | None]:
        """``/api[s]/...`` -> (group, resource, namespace, name, subresource); 404 otherwise."""
        not_here = ApiError(404, "NotFound", "the server could not find the requested resource")
        if segs[0] == "api" and len(segs) >= 3:
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis" and len(segs) >= 4:
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise not_here
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        resource = res.by_path(group, version, rest[0])
        if resource is None or len(rest) > 3:
            raise not_here
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not resource.namespaced:
            raise not_here
        if resource.namespaced and namespace is None and name is not None:
            raise not_here
        return group, resource, namespace, name, sub

    def _resource_request(self, req: Request, user: UserInfo, segs: list[str]) -> Response:
        group, resource, namespace, name, sub = self._locate(segs)
        if sub is not None:
            if (resource.plural, sub, req.method) == ("serviceaccounts", "token", "POST"):
                return self._token_request(req, user, str(namespace), str(name))
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        verb = _VERBS.get((req.method, name is not None))
        if verb is None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if verb == "list" and req.arg("watch") in ("true", "1"):
            raise ApiError(405, "MethodNotAllowed", "watch is not supported by the sandbox")
        body = self._body(req) if verb in ("create", "update") else None
        attr_name = None if verb == "create" and isinstance(body, dict) else name
        self._authorize(user, Attributes(verb, group, resource.plural, namespace, attr_name))
        if verb == "list":
            return self._list(req, resource, namespace)
        if verb == "get":
            got = self.store.get(resource, str(name), namespace)
            return Response(200, as_metadata(req.headers.get("accept", ""), got, many=False))
        if verb == "delete":
            deleted = self.store.delete(resource, str(name), namespace)
            if resource.plural in _DELETE_RETURNS_OBJECT:
                return Response(200, deleted)
            return Response(200, _status_success(resource, deleted))
        if verb in ("create", "update"):
            return self._write(verb, resource, name, namespace, body)
        return self._patch(req, resource, str(name), namespace)

    def _list(self, req: Request, resource: Any, namespace: str | None) -> Response:
        limit = req.arg("limit")
        listed = self.store.list(
            resource,
            namespace,
            label_selector=req.arg("labelSelector"),
            field_selector=req.arg("fieldSelector"),
            limit=int(limit) if limit and limit.isdigit() else None,
            continue_token=req.arg("continue"),
        )
        return Response(200, as_metadata(req.headers.get("accept", ""), listed, many=True))

    def _write(
        self, verb: str, resource: Any, name: str | None, namespace: str | None, body: Any
    ) -> Response:
        """``create`` (201) or ``update`` (200) of a JSON object body."""
        if not isinstance(body, dict):
            raise res.bad_request("the request body must be a JSON object")
        self._check_kind(resource, body)
        if verb == "create":
            return Response(201, self.store.create(body, resource=resource, namespace=namespace))
        body_name = (body.get("metadata") or {}).get("name")
        if body_name != name:
            raise res.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        return Response(200, self.store.update(body, resource=resource, namespace=namespace))

    @staticmethod
    def _check_kind(resource: Resource, body: dict[str, Any]) -> None:
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != resource.kind) or (
            api_version and api_version != resource.api_version
        ):
            raise res.bad_request(
                f"the object provided is unrecognized (must be of type {resource.kind}): "
                f"{api_version}/{kind}"
            )

    def _patch(self, req: Request, resource: Resource, name: str, ns: str | None) -> Response:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/apply-patch+yaml":
            try:
                body = yaml.safe_load(req.body.decode("utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError):
                raise res.bad_request("the apply patch is not valid YAML") from None
            if not isinstance(body, dict):
                raise res.bad_request("the apply patch must be an object")
            if not self.store.exists(resource, name, ns):
                meta = body.setdefault("metadata", {})
                meta.setdefault("name", name)
                return Response(201, self.store.create(body, resource=resource, namespace=ns))
            return Response(200, self.store.patch(resource, name, body, ns))
        patch_types = {
            "application/json-patch+json": "json",
            "application/merge-patch+json": "merge",
            "application/strategic-merge-patch+json": "merge",
        }
        if ctype not in patch_types:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media "
                f"types include: {', '.join(patch_types)}, application/apply-patch+yaml",
            )
        patch = self._body(req)
        return Response(
            200, self.store.patch(resource, name, patch, ns, patch_type=patch_types[ctype])
        )


# --- metadata-only reads (what `kubectl get --show-kind -o name`, the audit and
# controllers' metadata informers ask for): the Accept header's first media range
# "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" (or
# "as=PartialObjectMetadata" for one object) gets metadata and nothing else.
_META = "meta.k8s.io/v1"


def as_metadata(accept: str, doc: dict[str, Any], *, many: bool) -> dict[str, Any]:
    """``doc`` as the API server serves it for this Accept header."""
    params: dict[str, str] = {}
    for part in accept.split(",")[0].split(";")[1:]:
        key, _, value = part.strip().partition("=")
        params[key.lower()] = value.strip()
    wanted = params.get("as")
    if not wanted:
        return doc
    expected = "PartialObjectMetadataList" if many else "PartialObjectMetadata"
    if wanted != expected or params.get("g") != "meta.k8s.io" or params.get("v") != "v1":
        raise ApiError(
            406, "NotAcceptable", f"only the following media types are accepted: {accept}"
        )
    if not many:
        return {"kind": expected, "apiVersion": _META, "metadata": doc.get("metadata") or {}}
    items = [
        {"kind": "PartialObjectMetadata", "apiVersion": _META, "metadata": i.get("metadata") or {}}
        for i in doc.get("items") or []
    ]
    return {
        "kind": expected,
        "apiVersion": _META,
        "metadata": doc.get("metadata") or {},
        "items": items,
    }
