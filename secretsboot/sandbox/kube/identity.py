"""Who is calling the Kubernetes fake, and what it may do: bearer-token
authentication (the admin token, service-account JWTs), impersonation, RBAC
checks, TokenRequest/TokenReview, (Self)SubjectAccessReview and the
service-account OIDC issuer. :class:`Identity` is mixed into
:class:`~secretsboot.sandbox.kube.app.KubeApp`.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
import uuid
from typing import Any

from secretsboot.sandbox._http import Request, Response
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.bodies import read_body
from secretsboot.sandbox.kube.rbac import (
    BASIC_NON_RESOURCE_RULES,
    Attributes,
    UserInfo,
    authorize,
    forbidden_message,
    rules_for,
)
from secretsboot.sandbox.kube.resources import ApiError
from secretsboot.sandbox.kube.store import ObjectStore
from secretsboot.sandbox.tokens import SigningKey, TokenError, jwks, unverified_claims, verify

_MIN_TOKEN_SECONDS = 600


def _ts(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Identity:
    """Authentication, authorization and the token endpoints of the fake API server."""

    store: ObjectStore
    signing_key: SigningKey
    admin_token: str
    issuer_url: str | None
    base_url: str

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
    def _reviews(self, req: Request, user: Any, path: str) -> Response | None:
        """TokenReview and (Self)SubjectAccessReview, authorized like the real server."""
        if path == "/apis/authentication.k8s.io/v1/tokenreviews":
            self._authorize(
                user, Attributes("create", "authentication.k8s.io", "tokenreviews", None, None)
            )
            return self._token_review(req)
        if path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews":
            return self._access_review(req, user, "SelfSubjectAccessReview")
        if path == "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews":  # can-i --list
            spec = (read_body(req) or {}).get("spec") or {}
            status = {
                "resourceRules": rules_for(self.store, user, spec.get("namespace") or None),
                "nonResourceRules": list(BASIC_NON_RESOURCE_RULES),
                "incomplete": False,
            }
            return _answered("SelfSubjectRulesReview", _AUTHORIZATION, spec, status)
        if path == "/apis/authentication.k8s.io/v1/selfsubjectreviews":  # kubectl auth whoami
            read_body(req)
            info: dict[str, Any] = {"username": user.username, "groups": list(user.groups)}
            if user.uid:
                info["uid"] = user.uid
            return _answered("SelfSubjectReview", _AUTHENTICATION, None, {"userInfo": info})
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

    def _token_review(self, req: Request) -> Response:
        body = read_body(req) or {}
        spec = body.get("spec") or {}
        token = spec.get("token")
        if not token:
            raise res.ApiError(422, "Invalid", "TokenReview is invalid: spec.token: Required value")
        status = self.review_token(str(token), spec.get("audiences") or None)
        return _answered("TokenReview", _AUTHENTICATION, spec, status)

    def _access_review(self, req: Request, user: UserInfo, kind: str) -> Response:
        """(Self)SubjectAccessReview: may the caller (or ``spec.user``/``groups``) do it?"""
        body = read_body(req) or {}
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
        return _answered(kind, _AUTHORIZATION, spec, {"allowed": allowed})

    def _token_request(self, req: Request, user: UserInfo, ns: str, name: str) -> Response:
        self._authorize(user, Attributes("create", "", "serviceaccounts/token", ns, name))
        body = read_body(req) or {}
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
        issued = {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": bound or None,
        }
        status = {"token": token, "expirationTimestamp": _ts(exp)}
        return _answered("TokenRequest", _AUTHENTICATION, issued, status, name=name, namespace=ns)


_AUTHENTICATION = "authentication.k8s.io/v1"
_AUTHORIZATION = "authorization.k8s.io/v1"


def _answered(
    kind: str, api_version: str, spec: Any, status: dict[str, Any], **metadata: str
) -> Response:
    """201 with a review or request object: answered, never stored (no uid, no version)."""
    body: dict[str, Any] = {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {**metadata, "creationTimestamp": None},
    }
    if spec is not None:
        body["spec"] = spec
    body["status"] = status
    return Response(201, body)
