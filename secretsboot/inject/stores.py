"""What the init container needs mounted for each secret store, keyed by URI scheme.

One entry per scheme of :mod:`secretsboot.refs`; adding a store is one function
and one line in :data:`STORES`. A store says whether the fetch presents the
pod's service-account token (Kubernetes API reads, Vault ``kubernetes`` login),
and which extra audience-bound tokens to project (Vault ``jwt`` login must not
accept a token that the API server accepts too). Key Vault needs nothing from
us: the workload-identity webhook projects the Azure token itself.

>>> STORES["k8s"](None, None) | Mounts(tokens=(("vault-token", "vault"),))
Mounts(api_token=True, tokens=(('vault-token', 'vault'),))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from secretsboot.contract import VAULT_JWT_TOKEN_PATH
from secretsboot.spec import ServiceSpec, Spec

#: the file name of the Vault-audience token, as the contract's fetch reads it
VAULT_TOKEN_FILE = VAULT_JWT_TOKEN_PATH.rsplit("/", 1)[1]


@dataclass(frozen=True, slots=True)
class Mounts:
    """Tokens the init container reads: the API-server one, and audience-bound extras.

    ``tokens`` are ``(file name, audience)`` pairs projected beside ``token`` in the
    service-account folder, where the fetch-config contract says the fetch finds them.
    """

    api_token: bool = False
    tokens: tuple[tuple[str, str], ...] = ()

    def __or__(self, other: Mounts) -> Mounts:
        extra = tuple(t for t in other.tokens if t not in self.tokens)
        return Mounts(self.api_token or other.api_token, self.tokens + extra)


#: scheme -> what a service reading from that store needs (``spec`` is None when unknown).
StoreMounts = Callable[[ServiceSpec, "Spec | None"], Mounts]


def _nothing(svc: ServiceSpec, spec: Spec | None) -> Mounts:
    return Mounts()


def _keyvault(svc: ServiceSpec, spec: Spec | None) -> Mounts:
    return Mounts()  # the workload-identity webhook (or IMDS) provides the Azure token


def _vault(svc: ServiceSpec, spec: Spec | None) -> Mounts:
    method = svc.vault_auth.value
    if method == "kubernetes":
        return Mounts(api_token=True)
    if method != "jwt":
        return Mounts()  # azure: an Entra token, as for Key Vault
    jwt = spec.vault.auth.jwt if spec is not None and spec.vault is not None else None
    if jwt is None or not jwt.audience:
        return Mounts(api_token=True)
    return Mounts(api_token=True, tokens=((VAULT_TOKEN_FILE, jwt.audience),))


def _k8s(svc: ServiceSpec, spec: Spec | None) -> Mounts:
    return Mounts(api_token=True)


STORES: dict[str, StoreMounts] = {
    "keyvault": _keyvault,
    "vault": _vault,
    "k8s": _k8s,
}


def _schemes(svc: ServiceSpec) -> Iterable[str]:
    return dict.fromkeys(ref.scheme for s in svc.secrets for ref in s.sources)


def mounts_for(svc: ServiceSpec, spec: Spec | None = None) -> Mounts:
    """Everything the stores of ``svc`` need, merged (order of first use).

    A scheme with no entry here (a new store, before it says what it needs)
    mounts nothing: its backend brings its own credentials.
    """
    out = Mounts()
    for scheme in _schemes(svc):
        out = out | STORES.get(scheme, _nothing)(svc, spec)
    return out


def needs_service_account_token(svc: ServiceSpec) -> bool:
    """Vault kubernetes/jwt login and k8s:// reads use the pod's service-account token."""
    return mounts_for(svc).api_token


def vault_jwt_audience(spec: Spec, svc: ServiceSpec) -> str | None:
    """The audience of the token a service presents to Vault's jwt auth, if it uses it."""
    tokens = dict(mounts_for(svc, spec).tokens)
    return tokens.get(VAULT_TOKEN_FILE)
