"""The Azure half of the sandbox: Entra ID, IMDS, ARM and Key Vault fakes over HTTPS.

Four kinds of apps share one :class:`~secretsboot.sandbox.azure.state.AzureState`
and serve on 127.0.0.1 with certificates of the sandbox CA: Entra ID
(:mod:`.entra`), IMDS (:mod:`.imds`), ARM (:mod:`.arm`) and one Key Vault data
plane per vault (:mod:`.keyvault`). The official SDK clients talk to them
configured only by endpoint and CA. Example::

    ca = CertificateAuthority.create(tmp)
    az = AzureFakes.start(ca, tmp)
    try:
        az.create_keyvault("shop-kv")
        az.set_secret("shop-kv", "db-password", "CANARY-1")
        mi = az.create_identity("rg", "orders")
        az.assign_role(az.vault_id("shop-kv"), mi.principal_id, KEY_VAULT_SECRETS_USER)
        cred = ClientSecretCredential(az.tenant_id, app_id, secret,
                                      authority=az.authority_host,
                                      disable_instance_discovery=True,
                                      connection_verify=str(ca.ca_path))
        SecretClient(az.keyvault_url("shop-kv"), cred, verify_challenge_resource=False,
                     connection_verify=str(ca.ca_path)).get_secret("db-password")
    finally:
        az.stop()

MSAL sends instance discovery to login.microsoftonline.com for any authority host
it does not know: credentials aimed at this fake need ``disable_instance_discovery=True``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from secretsboot.sandbox._http import FakeApp, FakeServer, Faults
from secretsboot.sandbox._running import Running
from secretsboot.sandbox.azure.arm import ArmApp
from secretsboot.sandbox.azure.auth import TokenIssuer
from secretsboot.sandbox.azure.entra import EntraApp
from secretsboot.sandbox.azure.imds import ImdsApp
from secretsboot.sandbox.azure.keyvault import KeyVaultApp
from secretsboot.sandbox.azure.state import (
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_SECRETS_OFFICER,
    KEY_VAULT_SECRETS_USER,
    AccessPolicy,
    AzureState,
    Identity,
    PodBinding,
    Vault,
)
from secretsboot.sandbox.pki import CertificateAuthority
from secretsboot.sandbox.tokens import SigningKey
from secretsboot.secret import SecretValue

__all__ = [
    "KEY_VAULT_ADMINISTRATOR",
    "KEY_VAULT_SECRETS_OFFICER",
    "KEY_VAULT_SECRETS_USER",
    "AzureFakes",
    "AzureState",
    "Identity",
]

Component = Literal["entra", "imds", "arm", "keyvault"]


class _VaultFaults(Faults):
    """One set of knobs for every vault's data plane: ``stop()`` stops them all."""

    def __init__(self) -> None:
        super().__init__()
        self._stops: list[Callable[[], None]] = []
        self._starts: list[Callable[[], None]] = []

    def _bind(self, stop: Callable[[], None], start: Callable[[], None]) -> None:
        self._stops.append(stop)
        self._starts.append(start)

    def stop(self) -> None:
        for hook in list(self._stops):
            hook()

    def start(self) -> None:
        for hook in list(self._starts):
            hook()


class AzureFakes(Running):
    """The running Azure fakes and the helpers tests use to seed their state."""

    def __init__(self, ca: CertificateAuthority, state_dir: Path, state: AzureState) -> None:
        self.ca = ca
        self.state_dir = state_dir
        self.state = state
        self.tokens = TokenIssuer(state, SigningKey.shared("sandbox-azure-entra"))
        self._ssl = ca.issue_server_cert(name="azure").ssl_context()
        self._lock = threading.RLock()
        self.entra = EntraApp(state, self.tokens, ca.ca_path)
        self.imds = ImdsApp(state, self.tokens)
        self.arm = ArmApp(state, self.tokens, on_vault=self._serve_vault)
        self.vault_faults = _VaultFaults()
        self.vault_apps: dict[str, KeyVaultApp] = {}
        self._servers: dict[str, FakeServer] = {}
        # seeding without HTTP: the state's own methods (an identity: client_id,
        # principal_id, id; a role by GUID or full definition id at a scope; an app
        # signing in with a client secret, returning its object id)
        self.create_identity = state.create_identity
        self.add_federated_credential = state.add_federated_credential
        self.assign_role = state.assign_role
        self.add_service_principal = state.add_service_principal

    # ---- lifecycle ---------------------------------------------------------------

    @classmethod
    def start(
        cls,
        ca: CertificateAuthority,
        state_dir: Path,
        *,
        tenant_id: str | None = None,
        subscription_id: str | None = None,
    ) -> AzureFakes:
        """Start Entra, IMDS and ARM (vault data planes start with each vault)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        fakes = cls(ca, state_dir, AzureState(tenant_id, subscription_id))
        try:
            for app in (fakes.entra, fakes.imds, fakes.arm):
                fakes._start_app(app.name, app)
            fakes.tokens.authority = fakes.entra.base_url
            fakes.state.ensure_resource_group("rg")
            fakes._write_endpoints()
        except BaseException:
            fakes.stop()
            raise
        return fakes

    def _start_app(self, key: str, app: FakeApp) -> FakeServer:
        server = FakeServer(app, ssl_context=self._ssl).start()
        with self._lock:
            self._servers[key] = server
        return server

    def stop(self) -> None:
        """Stop every server (idempotent)."""
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.stop()

    def healthy(self) -> bool:
        """True while Entra, IMDS, ARM and every vault are serving."""
        with self._lock:
            servers = list(self._servers.values())
        return len(servers) >= 3 and all(s.running for s in servers)

    def _write_endpoints(self) -> None:
        data = {
            "tenant_id": self.tenant_id,
            "subscription_id": self.subscription_id,
            "authority_host": self.authority_host,
            "imds_url": self.imds_url,
            "arm_url": self.arm_url,
            "keyvaults": {app.vault_name: app.base_url for app in self.vault_apps.values()},
        }
        (self.state_dir / "azure.json").write_text(json.dumps(data, indent=2), encoding="utf-8")

    # ---- endpoints ---------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def subscription_id(self) -> str:
        return self.state.subscription_id

    @property
    def authority_host(self) -> str:
        """Entra ID (``{authority_host}/{tenant}/oauth2/v2.0/token``)."""
        return self.entra.base_url

    @property
    def imds_url(self) -> str:
        """For ``AZURE_POD_IDENTITY_AUTHORITY_HOST``."""
        return self.imds.base_url

    @property
    def arm_url(self) -> str:
        """``base_url`` of the azure-mgmt-* clients."""
        return self.arm.base_url

    def keyvault_url(self, name: str) -> str:
        """The data-plane URL of vault ``name`` (``SecretClient(vault_url=...)``)."""
        with self._lock:
            app = self.vault_apps.get(name.lower())
        if app is None:
            raise KeyError(f"no vault named {name!r}; create it with create_keyvault()")
        return app.base_url

    def vault_id(self, name: str) -> str:
        """The ARM resource id of vault ``name`` (a role-assignment scope)."""
        return self.state.get_vault(name).id

    def env(self) -> dict[str, str]:
        """The environment a client process needs to find these fakes."""
        env = {
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_AUTHORITY_HOST": self.authority_host,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_url,
            "SECRETSBOOT_ARM_ENDPOINT": self.arm_url,
            "SECRETSBOOT_SUBSCRIPTION_ID": self.subscription_id,
        }
        with self._lock:
            apps = list(self.vault_apps.values())
        for app in apps:
            env["SECRETSBOOT_KEYVAULT_" + app.vault_name.upper().replace("-", "_")] = app.base_url
        return env

    def faults(self, component: Component) -> Faults:
        """The fault knobs of ``entra``, ``imds``, ``arm`` or ``keyvault`` (every vault)."""
        apps: dict[str, Faults] = {
            "entra": self.entra.faults,
            "imds": self.imds.faults,
            "arm": self.arm.faults,
            "keyvault": self.vault_faults,
        }
        if component not in apps:
            raise ValueError(f"component must be one of {sorted(apps)}, not {component!r}")
        return apps[component]

    @property
    def apps(self) -> dict[str, FakeApp]:
        """Every app by name (``keyvault-<name>`` per vault), for their ``calls`` logs."""
        out: dict[str, FakeApp] = {"entra": self.entra, "imds": self.imds, "arm": self.arm}
        with self._lock:
            out.update({app.name: app for app in self.vault_apps.values()})
        return out

    # ---- seeding helpers ---------------------------------------------------------

    def _serve_vault(self, vault: Vault) -> None:
        with self._lock:
            app = self.vault_apps.get(vault.name.lower())
            if app is None:
                app = KeyVaultApp(self.state, self.tokens, vault.name)
                app.faults = self.vault_faults
                self.vault_apps[vault.name.lower()] = app
                self._start_app(app.name, app)
            vault.url = app.base_url
        self._write_endpoints()

    def create_keyvault(
        self,
        name: str,
        mode: Literal["rbac", "access-policy"] = "rbac",
        resource_group: str = "rg",
    ) -> Vault:
        """Create vault ``name`` (RBAC or access-policy mode) and start its data plane."""
        vault = self.state.create_vault(name, mode=mode, resource_group=resource_group)
        self._serve_vault(vault)
        return vault

    def set_secret(self, vault: str, name: str, value: str | SecretValue) -> str:
        """Seed a secret without HTTP; returns the new version id."""
        return self.state.set_secret(vault, name, value).version

    def add_access_policy(
        self, vault: str, object_id: str, secrets: list[str] | None = None
    ) -> list[AccessPolicy]:
        """Grant ``secrets`` permissions (default ``["get"]``) on an access-policy vault."""
        policy = AccessPolicy(self.tenant_id, object_id, list(secrets or ["get"]))
        return self.state.update_access_policies(self.state.get_vault(vault), "add", [policy])

    def set_keyvault_firewall(self, vault: str | None, *, closed: bool) -> None:
        """Close (or open) the network rules of vault ``vault`` (``None``: every vault):
        while closed, every authenticated request is 403 ``Forbidden`` /
        ``ForbiddenByFirewall``, as for a caller outside the allowed networks."""
        with self._lock:
            apps = list(self.vault_apps.values())
        chosen = [a for a in apps if vault is None or a.vault_name.lower() == vault.lower()]
        if vault is not None and not chosen:
            raise KeyError(f"no vault named {vault!r}; create it with create_keyvault()")
        for app in chosen:
            app.firewall_closed = closed

    def bind_pod_identity(
        self, identity: Identity | str, selector: str | None = None
    ) -> PodBinding:
        """IMDS: give ``identity`` (object, ARM id or client id) to callers presenting
        ``selector`` (aadpodidbinding label), or to every caller when ``None`` (the node)."""
        if isinstance(identity, Identity):
            identity_id = identity.id
        else:
            found = self.state.identity_by_client_id(identity)
            identity_id = found.id if found else identity
        return self.state.bind_pod_identity(identity_id, selector)

    def set_imds_caller(self, selector: str | None) -> None:
        """Which pod calls IMDS from now on: its ``aadpodidbinding`` label, or None (the node)."""
        with self.state.lock:
            self.state.imds_caller = selector

    def set_propagation_delay(self, seconds: float) -> None:
        """From now on, every new FIC, role assignment and access policy (seeded here or
        written over ARM) takes effect at Entra and Key Vault only ``seconds`` after it
        is created (ARM lists it at once), as in Azure."""
        with self.state.lock:
            self.state.propagation_delay_s = max(0.0, seconds)

    def set_propagation(self, low: float, high: float | None = None) -> None:
        """Each FIC, role assignment and access policy written over ARM from now on takes
        effect after a random delay in ``[low, high]`` seconds (``0``: at once); the
        seeding helpers here stand for grants made long ago and are not delayed."""
        high = low if high is None else high
        if low < 0 or high < low:
            raise ValueError(f"propagation range must be 0 <= low <= high, not {low}-{high}")
        with self.state.lock:
            self.state.propagation_range = (low, high)

    def settle(self) -> float:
        """Wait until every grant written so far has propagated (as an operator waits
        before relying on it); returns the seconds waited."""
        with self.state.lock:
            pending = [ra.effective_at for ra in self.state.role_assignments.values()]
            for identity in self.state.identities.values():
                pending += [f.effective_at for f in identity.federated.values()]
            for vault in self.state.vaults.values():
                pending += [p.effective_at for p in vault.access_policies]
        wait = max([0.0, *pending]) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        return max(0.0, wait)

    def set_fic_write_latency(self, seconds: float) -> None:
        """Each FIC write over ARM lasts ``seconds``; an overlapping write on the same
        identity gets 409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity."""
        with self.state.lock:
            self.state.fic_write_latency_s = max(0.0, seconds)

    def deny_arm_action(self, action: str, principal_id: str | None = None) -> None:
        """ARM answers 403 AuthorizationFailed for ``action`` (wildcards allowed)."""
        self.state.deny_arm_action(action, principal_id)

    def clear_arm_denials(self) -> None:
        self.state.clear_arm_denials()

    def __repr__(self) -> str:
        running = sorted(self._servers)
        return f"AzureFakes(tenant={self.tenant_id!r}, servers={running!r})"

    def describe(self) -> dict[str, Any]:
        """Endpoints and counts (no secret values), for ``secretsboot sandbox status``."""
        with self.state.lock:
            return {
                "tenant_id": self.tenant_id,
                "subscription_id": self.subscription_id,
                "authority_host": self.authority_host,
                "imds_url": self.imds_url,
                "arm_url": self.arm_url,
                "identities": len(self.state.identities),
                "role_assignments": len(self.state.role_assignments),
                "vaults": {v.name: v.url for v in self.state.vaults.values()},
            }
