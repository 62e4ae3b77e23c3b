"""The cluster's OIDC issuer, which every federated credential trusts: reachable, and
serving its discovery document and a non-empty JWKS.

Entra ID fetches ``{issuer}/.well-known/openid-configuration`` and the ``jwks_uri``
it names to check each service-account token; an issuer that does not serve them
makes every workload-identity token exchange fail (AADSTS700211 / 70021).

``SECRETSBOOT_OIDC_ISSUER_URL`` names where the issuer's documents are served when
the issuer URL itself is not reachable from here (the sandbox serves the spec's
issuer from its Kubernetes fake); the discovery document must still name the spec's
issuer.
"""

from __future__ import annotations

import os
from typing import Any

from secretsboot.provision.model import Note

TIMEOUT = 10.0


def check_issuer(issuer: str, services: list[str], session: Any = None) -> list[Note]:
    """GET the discovery document and the JWKS; a failure is a problem with its fix."""
    import requests

    http = session or requests.Session()
    verify: Any = os.environ.get("REQUESTS_CA_BUNDLE") or True
    who = ", ".join(services) or "(spec)"
    served = (os.environ.get("SECRETSBOOT_OIDC_ISSUER_URL") or issuer).rstrip("/")
    url = served + "/.well-known/openid-configuration"
    fix = (
        "set azure.oidcIssuer to the cluster's issuer (az aks show --query "
        "oidcIssuerProfile.issuerUrl) and enable it (az aks update --enable-oidc-issuer)"
    )
    try:
        doc = _get_json(http, url, verify)
        if str(doc.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            return [
                _problem(
                    who,
                    f"azure: the OIDC issuer {issuer} names itself '{doc.get('issuer')}' in "
                    "its discovery document; federated credentials must use that exact URL",
                    fix,
                    "bad-input",
                )
            ]
        jwks_uri = str(doc.get("jwks_uri") or "")
        if served != issuer.rstrip("/") and jwks_uri.startswith(issuer.rstrip("/")):
            jwks_uri = served + jwks_uri[len(issuer.rstrip("/")) :]
        if not jwks_uri:
            return [_problem(who, f"azure: {url} names no jwks_uri", fix, "not-found")]
        keys = _get_json(http, jwks_uri, verify).get("keys")
        if not keys:
            return [_problem(who, f"azure: the issuer's JWKS {jwks_uri} holds no keys", fix)]
    except _Failed as exc:
        return [_problem(who, f"azure: the OIDC issuer {issuer}: {exc}", fix, exc.kind)]
    finally:
        if session is None:
            http.close()
    return []


class _Failed(Exception):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _get_json(http: Any, url: str, verify: Any) -> dict[str, Any]:
    import requests

    try:
        resp = http.get(url, timeout=TIMEOUT, verify=verify, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise _Failed(f"cannot reach {url} ({type(exc).__name__})", "unavailable") from None
    if resp.status_code != 200:
        raise _Failed(f"{url} answered {resp.status_code}", "not-found")
    try:
        doc = resp.json()
    except ValueError:
        raise _Failed(f"{url} did not answer JSON", "bad-input") from None
    if not isinstance(doc, dict):
        raise _Failed(f"{url} did not answer a JSON object", "bad-input")
    return doc


def _problem(who: str, message: str, fix: str, kind: str = "not-found") -> Note:
    return Note(who, "error", message, fix, kind=kind)
