"""Cross-reference checks of the spec: every problem at once, each with its field and fix.

Fields and URIs are checked by the models; what spans several fields is checked
here (unique names and outputs, declared Key Vaults, the Vault section and auth
method a source needs, identities and deliveries). The checks collect; they
never stop at the first problem, and they run on the parts of a spec that parsed
even when other parts did not (see :func:`secretsboot.spec._errors.lenient`), so
``spec validate`` reports field, URI and cross-reference errors in one pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from secretsboot.spec import (
    MAX_FEDERATED_CREDENTIALS,
    AzureSpec,
    Delivery,
    Identity,
    KubernetesSpec,
    ServiceSpec,
    SourceRef,
    VaultSpec,
)

Loc = tuple[str | int, ...]
#: (index in spec.services, the service, its secrets' indices in the file (None: the same),
#: whether some of its own fields failed: then checks that depend on them are not made)
Entry = tuple[int, ServiceSpec, Sequence[int] | None, bool]


class FieldError(ValueError):
    """One problem at a nested field, with its fix."""

    def __init__(self, path: Loc, message: str, hint: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.hint = hint


class FieldErrors(ValueError):
    """Several :class:`FieldError` raised at once from a model validator."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


def suggest(word: str, choices: Iterable[str], otherwise: str) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else otherwise


def cross_reference_errors(
    azure: AzureSpec | None,
    vault: VaultSpec | None,
    kubernetes: KubernetesSpec,
    services: Sequence[Entry],
    *,
    azure_known: bool = True,
    vault_known: bool = True,
) -> list[FieldError]:
    """Every cross-reference problem of the services; ``*_known`` False means that section
    did not parse, so what depends on it is not judged (its own errors are reported)."""
    out: list[FieldError] = []
    names: set[str] = set()
    accounts: set[tuple[str, str]] = set()
    federated: dict[str, int] = {}
    for si, svc, where, partial in services:
        if svc.name in names:
            out.append(
                FieldError(
                    ("services", si, "name"),
                    f"duplicate service '{svc.name}'",
                    "service names must be unique",
                )
            )
        names.add(svc.name)
        key = (svc.namespace or kubernetes.namespace, svc.service_account_name)
        if key in accounts and svc.identity is not Identity.NONE:
            out.append(
                FieldError(
                    ("services", si, "serviceAccount"),
                    f"service account {key[0]}/{key[1]} is already used by another service",
                    "give each service its own service account (a shared one shares every grant)",
                )
            )
        accounts.add(key)
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            federated[svc.identity_name] = federated.get(svc.identity_name, 0) + 1
            if federated[svc.identity_name] == MAX_FEDERATED_CREDENTIALS + 1:
                out.append(
                    FieldError(
                        ("services", si, "managedIdentity"),
                        f"more than {MAX_FEDERATED_CREDENTIALS} workload-identity services "
                        f"share identity '{svc.identity_name}'; Azure allows at most "
                        f"{MAX_FEDERATED_CREDENTIALS} federated credentials per identity",
                        "give some of these services their own managedIdentity",
                    )
                )
        checks = _ServiceChecks(azure, vault, azure_known, vault_known, si, svc, where)
        checks.partial = partial
        out.extend(checks.run())
    return out


class _ServiceChecks:
    def __init__(
        self,
        azure: AzureSpec | None,
        vault: VaultSpec | None,
        azure_known: bool,
        vault_known: bool,
        si: int,
        svc: ServiceSpec,
        where: Sequence[int] | None,
    ) -> None:
        self.azure, self.vault = azure, vault
        self.azure_known, self.vault_known = azure_known, vault_known
        self.si, self.svc = si, svc
        self.where = where
        self.partial = False
        self.out: list[FieldError] = []

    def at(self, ci: int, *rest: str | int) -> Loc:
        """A secret's location in the file (its index there, not among those that parsed)."""
        index = self.where[ci] if self.where is not None else ci
        return ("services", self.si, "secrets", index, *rest)

    def err(self, path: Loc, message: str, hint: str) -> None:
        self.out.append(FieldError(path, message, hint))

    def run(self) -> list[FieldError]:
        self.outputs()
        if not self.partial:  # identity and delivery may be the fields that failed
            self.identity()
        for ci, secret in enumerate(self.svc.secrets):
            for fi, ref in enumerate(secret.sources):
                field = ("from",) if fi == 0 else ("fallback", fi - 1)
                self.source(self.at(ci, *field), ref)
        return self.out

    def outputs(self) -> None:
        seen: dict[str, set[str]] = {"name": set(), "file": set(), "env": set()}
        for ci, secret in enumerate(self.svc.secrets):
            outputs = {"name": secret.name, "file": secret.file_name, "env": secret.env}
            for field, value in outputs.items():
                if not value:
                    continue
                if value in seen[field]:
                    self.err(self.at(ci, field), *_duplicate(field, value))
                seen[field].add(value)

    def identity(self) -> None:
        svc, si = self.svc, self.si
        if (
            svc.identity is Identity.WORKLOAD_IDENTITY
            and self.azure_known
            and (self.azure is None or not self.azure.oidc_issuer)
        ):
            self.err(
                ("services", si, "identity"),
                "workload-identity needs azure.oidcIssuer",
                "set azure.oidcIssuer to the cluster's OIDC issuer URL",
            )
        if svc.identity is Identity.POD_IDENTITY and self.azure_known and self.azure is None:
            self.err(
                ("services", si, "identity"),
                "pod-identity needs the azure section",
                "add azure.tenantId, subscriptionId, resourceGroup and location",
            )
        if svc.delivery in (Delivery.CSI, Delivery.FLEXVOLUME):
            for ci, secret in enumerate(svc.secrets):
                if secret.source.scheme != "keyvault":
                    self.err(
                        self.at(ci, "from"),
                        f"delivery '{svc.delivery.value}' reads only Key Vault",
                        "use keyvault:// sources or delivery: init-container",
                    )

    def source(self, path: Loc, ref: SourceRef) -> None:
        if ref.scheme == "keyvault":
            self.keyvault(path, ref)
        elif ref.scheme == "vault" and self.vault_known:
            self.vault_source(path)

    def keyvault(self, path: Loc, ref: SourceRef) -> None:
        if self.azure_known and (self.azure is None or self.azure.key_vault(ref.store) is None):
            known = [kv.name for kv in self.azure.key_vaults] if self.azure else []
            self.err(
                path,
                f"Key Vault '{ref.store}' is not declared",
                suggest(ref.store, known, "add it to azure.keyVaults"),
            )
        if self.svc.identity is Identity.NONE and not self.partial:
            self.err(
                path,
                "a keyvault:// source needs an identity",
                "set identity: workload-identity (or pod-identity)",
            )

    def vault_source(self, path: Loc) -> None:
        if self.vault is None:
            self.err(
                path,
                "a vault:// source needs the vault section",
                "add vault.address and vault.auth",
            )
            return
        method = self.svc.vault_auth.value
        if getattr(self.vault.auth, method) is None:
            self.err(
                path,
                f"the service logs in to Vault with '{method}' but "
                f"vault.auth.{method} is not configured",
                f"add vault.auth.{method} or set vaultAuth",
            )
        if method == "azure" and self.svc.identity is Identity.NONE:
            self.err(
                path,
                "Vault azure auth needs a managed identity",
                "set identity: workload-identity or pod-identity",
            )


def _duplicate(field: str, value: str) -> tuple[str, str]:
    if field == "name":
        return f"duplicate secret name '{value}'", "give each secret of a service its own name"
    if field == "file":
        return f"two secrets write '{value}'", "give each secret its own file"
    return f"two secrets set ${value}", "give each secret its own variable"
