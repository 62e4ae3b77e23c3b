"""The official SDKs as oracles: the same sandbox, asked the same thing by our client and
by azure-identity + azure-keyvault-secrets, hvac and the kubernetes client, must give
the same values and the same classes of error.

Each SDK is configured only by endpoint, credential and CA. Its exception is mapped
to our tree by :func:`sdk_class` (status -> class, the one rule every system shares),
and our client's error must be an instance of that class. Where our map is finer
(a propagating grant, a firewall), the SDK's body carries the same code.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsboot.backends.keyvault import KeyVault, verify_challenge_resource
from secretsboot.backends.kubernetes import Kubernetes
from secretsboot.backends.vault import Vault
from secretsboot.contract import AzureConfig, VaultAuthConfig, VaultConfig
from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    PropagationPendingError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.identity.azure import WorkloadIdentity
from secretsboot.identity.kubernetes import ApiAccess
from secretsboot.identity.vault import login_request
from secretsboot.refs import Ref
from secretsboot.transport import Deadline

pytestmark = pytest.mark.integration
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}o{next(_ids)}"


def soon() -> Deadline:
    return Deadline.after(10)


def by_status(status: int) -> type[SecretsbootError]:
    if status == 429 or status >= 500:
        return UnavailableError
    return {401: DeniedError, 403: DeniedError, 404: NotFoundError}.get(status, BadInputError)


def sdk_class(exc: BaseException) -> type[SecretsbootError]:
    """The class of our tree an SDK exception stands for."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    if isinstance(exc, ClientAuthenticationError):
        return DeniedError
    if isinstance(exc, HttpResponseError):
        return by_status(exc.status_code or 0)
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)  # kubernetes
    if not isinstance(status, int):  # hvac: one exception class per status
        status = HVAC_STATUS.get(type(exc).__name__)
    if isinstance(status, int):
        return by_status(status)
    raise AssertionError(f"no oracle class for {type(exc).__name__}")


HVAC_STATUS = {"InvalidRequest": 400, "Unauthorized": 401, "Forbidden": 403, "InvalidPath": 404,
               "RateLimitExceeded": 429, "InternalServerError": 500, "VaultDown": 503}  # fmt: skip


def ours_and_theirs(
    ours: Callable[[], Any], theirs: Callable[[], Any]
) -> tuple[BaseException, BaseException]:
    with pytest.raises(SecretsbootError) as mine:
        ours()
    with pytest.raises(Exception) as sdk:
        theirs()
    assert isinstance(mine.value, sdk_class(sdk.value)), (mine.value, sdk.value)
    return mine.value, sdk.value


# ---- Key Vault and Entra ID: azure-identity + azure-keyvault-secrets --------------------


class AzurePod:
    """A service account's token, a managed identity and, unless told, its credential."""

    def __init__(self, sb: Any, tmp: Path, subject: str | None = None) -> None:
        ns, sa = unique("ns"), unique("sa")
        sb.kube.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        sb.kube.store.create(
            {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": {"name": sa, "namespace": ns}}
        )  # fmt: skip
        self.sb = sb
        self.token = tmp / f"{sa}.jwt"
        self.token.write_text(sb.kube.mint_token(ns, sa, ["api://AzureADTokenExchange"]))
        self.mi = sb.azure.create_identity("rg", unique("id-"))
        self.subject = f"system:serviceaccount:{ns}:{sa}"
        fic_subject = subject(self.subject) if callable(subject) else subject
        if fic_subject != "":
            sb.azure.add_federated_credential(
                self.mi.id, "fic", sb.kube.oidc_issuer, fic_subject or self.subject
            )
        self.ca = str(sb.ca_path)
        self.opened: list[Any] = []

    def close(self) -> None:
        for thing in self.opened:
            thing.close()

    def ours(self, vault: str) -> KeyVault:
        az = self.sb.azure
        tokens = WorkloadIdentity(
            az.tenant_id, self.mi.client_id, str(self.token), az.authority_host, self.ca, {}
        )
        self.opened.append(tokens)
        url = az.keyvault_url(vault)
        return KeyVault(AzureConfig(key_vaults={vault: url}, ca_cert=self.ca), tokens, {})

    def theirs(self, vault: str) -> Any:
        from azure.identity import WorkloadIdentityCredential
        from azure.keyvault.secrets import SecretClient

        az = self.sb.azure
        cred = WorkloadIdentityCredential(
            tenant_id=az.tenant_id,
            client_id=self.mi.client_id,
            token_file_path=str(self.token),
            authority=az.authority_host,
            disable_instance_discovery=True,
            connection_verify=self.ca,
        )
        url = az.keyvault_url(vault)
        self.opened.append(cred)
        client = SecretClient(
            url,
            cred,
            verify_challenge_resource=verify_challenge_resource(url),
            connection_verify=self.ca,
            retry_total=0,
        )
        self.opened.append(client)
        return client


@pytest.fixture
def azure(sandbox: Any) -> Any:
    if sandbox.azure is None:
        pytest.skip("the sandbox has no Azure fakes")
    return sandbox.azure


def vault_with(az: Any, mode: str = "rbac", **secrets: str) -> str:
    name = unique("kv")
    az.create_keyvault(name, mode=mode)
    for key, value in secrets.items():
        az.set_secret(name, key, value)
    return name


def test_keyvault_values_and_versions_agree(sandbox: Any, azure: Any, tmp_path: Path) -> None:
    kv = vault_with(azure, db="CANARY-kv-1")
    first = Ref.parse(f"keyvault://{kv}/db")
    pod = AzurePod(sandbox, tmp_path)
    azure.assign_role(azure.vault_id(kv), pod.mi.principal_id, KEY_VAULT_SECRETS_USER)
    ours, theirs = pod.ours(kv), pod.theirs(kv)
    try:
        old = theirs.get_secret("db")
        assert ours.get(first, soon()).reveal() == old.value == "CANARY-kv-1"
        assert ours.version(first, soon()) == old.properties.version
        azure.set_secret(kv, "db", "CANARY-kv-2")
        new = theirs.get_secret("db")
        assert ours.get(first, soon()).reveal() == new.value == "CANARY-kv-2"
        assert ours.version(first, soon()) == new.properties.version != old.properties.version
        pinned = Ref.parse(f"keyvault://{kv}/db@{old.properties.version}")
        assert ours.get(pinned, soon()).reveal() == "CANARY-kv-1"
        assert theirs.get_secret("db", old.properties.version).value == "CANARY-kv-1"
        ours_and_theirs(
            lambda: ours.get(Ref.parse(f"keyvault://{kv}/missing"), soon()),
            lambda: theirs.get_secret("missing"),
        )
    finally:
        ours.close()
        pod.close()


@pytest.mark.parametrize("case", ["rbac", "access-policy", "disabled", "firewall"])
def test_keyvault_denials_agree(sandbox: Any, azure: Any, tmp_path: Path, case: str) -> None:
    kv = vault_with(azure, "access-policy" if case == "access-policy" else "rbac", db="CANARY-d")
    pod = AzurePod(sandbox, tmp_path)
    if case in ("disabled", "firewall"):
        azure.assign_role(azure.vault_id(kv), pod.mi.principal_id, KEY_VAULT_SECRETS_USER)
    ours, theirs = pod.ours(kv), pod.theirs(kv)
    app = azure.vault_apps[kv.lower()]
    try:
        if case == "disabled":  # as an operator would, with rights the pod does not have
            versions = azure.state.get_vault(kv).secrets["db"]
            with azure.state.lock:
                versions[-1].enabled = False
        if case == "firewall":
            app.firewall_closed = True
        mine, sdk = ours_and_theirs(
            lambda: ours.get(Ref.parse(f"keyvault://{kv}/db"), soon()),
            lambda: theirs.get_secret("db"),
        )
    finally:
        app.firewall_closed = False
        ours.close()
        pod.close()
    inner = {"rbac": "ForbiddenByRbac", "access-policy": "AccessDenied",
             "disabled": "SecretDisabled", "firewall": "ForbiddenByFirewall"}[case]  # fmt: skip
    assert sdk.error.innererror == {"code": inner}  # type: ignore[attr-defined]
    # a grant still propagating is retried; a firewall or a disabled secret is not
    assert isinstance(mine, PropagationPendingError) is (case in ("rbac", "access-policy"))


@pytest.mark.parametrize(
    ("fic_subject", "code", "pending"),
    [
        (lambda s: s.replace(":sa", ":other-sa"), "AADSTS700213", True),
        (lambda s: s.upper(), "AADSTS7002138", False),
        ("", "AADSTS70021", True),
    ],
)
def test_entra_federated_credential_errors_agree(
    sandbox: Any, azure: Any, tmp_path: Path, fic_subject: Any, code: str, pending: bool
) -> None:
    kv = vault_with(azure, db="CANARY-e")
    pod = AzurePod(sandbox, tmp_path, subject=fic_subject)
    ours, theirs = pod.ours(kv), pod.theirs(kv)
    try:
        mine, sdk = ours_and_theirs(
            lambda: ours.get(Ref.parse(f"keyvault://{kv}/db"), soon()),
            lambda: theirs.get_secret("db"),
        )
    finally:
        ours.close()
        pod.close()
    assert f"{code}:" in str(sdk)
    assert f"{code}:" in str(mine) or f"{code} " in str(mine)
    assert isinstance(mine, PropagationPendingError) is pending


# ---- Vault: hvac ---------------------------------------------------------------------------


@pytest.fixture
def vault_pod(sandbox: Any, tmp_path: Path) -> Iterator[tuple[Any, str, str, str]]:
    """A service account, its token, a policy reading ``secret/data/<base>/ok*`` and a role."""
    ns, sa, base = unique("ns"), unique("sa"), unique("app")
    store = sandbox.kube.store
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
    )
    jwt = sandbox.kube.app.mint_token(ns, sa, None, 3600)
    policy = f'path "secret/data/{base}/ok*" {{ capabilities = ["read"] }}\n'
    policy += f'path "secret/metadata/{base}/ok*" {{ capabilities = ["read"] }}'
    sandbox.vault.request("PUT", f"sys/policies/acl/{sa}", {"policy": policy})
    sandbox.vault.request(
        "POST",
        f"auth/kubernetes/role/{sa}",
        {"bound_service_account_names": [sa], "bound_service_account_namespaces": [ns],
         "token_policies": [sa], "ttl": "5m"},
    )  # fmt: skip
    yield sandbox, sa, jwt, base


def ours_vault(sb: Any, role: str, jwt: str) -> Vault:
    auth = VaultAuthConfig("kubernetes", role=role)
    cfg = VaultConfig(address=sb.vault.address, ca_cert=str(sb.ca_path), auth=auth)
    return Vault(cfg, lambda d: login_request(auth, lambda: jwt, None, d), f"role {role}", {})


def hvac_client(sb: Any, role: str, jwt: str) -> Any:
    import hvac

    client = hvac.Client(url=sb.vault.address, verify=str(sb.ca_path))
    client.auth.kubernetes.login(role, jwt)
    return client


def test_vault_values_versions_and_errors_agree(vault_pod: tuple[Any, str, str, str]) -> None:
    sb, role, jwt, base = vault_pod
    for value in ("CANARY-v1", "CANARY-v2"):
        sb.vault.request("POST", f"secret/data/{base}/ok", {"data": {"password": value}})
    ours, theirs = ours_vault(sb, role, jwt), hvac_client(sb, role, jwt)
    kv = theirs.secrets.kv.v2
    try:
        ref = Ref.parse(f"vault://secret/{base}/ok#password")
        read = kv.read_secret_version(path=f"{base}/ok", raise_on_deleted_version=True)
        assert ours.get(ref, soon()).reveal() == read["data"]["data"]["password"] == "CANARY-v2"
        meta = kv.read_secret_metadata(path=f"{base}/ok")
        assert ours.version(ref, soon()) == str(meta["data"]["current_version"]) == "2"
        ours_and_theirs(  # missing: a path the policy allows, nothing there
            lambda: ours.get(Ref.parse(f"vault://secret/{base}/ok-missing#password"), soon()),
            lambda: kv.read_secret_version(
                path=f"{base}/ok-missing", raise_on_deleted_version=True
            ),
        )
        ours_and_theirs(  # denied: a path outside the policy
            lambda: ours.get(Ref.parse(f"vault://secret/{base}/other#password"), soon()),
            lambda: kv.read_secret_version(path=f"{base}/other", raise_on_deleted_version=True),
        )
    finally:
        ours.close()
        theirs.auth.token.revoke_self()
        theirs.adapter.close()


def test_vault_login_refusal_agrees(vault_pod: tuple[Any, str, str, str]) -> None:
    """Both refused; our tree files a refused login (400/401/403) under denial, since its
    fix is a role or a binding (hvac has only the status: 400, InvalidRequest)."""
    import hvac.exceptions

    sb, _, jwt, _ = vault_pod
    ours = ours_vault(sb, "no-such-role", jwt)
    try:
        with pytest.raises(DeniedError, match="Vault login refused") as mine:
            ours.get(Ref.parse("vault://secret/x#k"), soon())
        with pytest.raises(hvac.exceptions.InvalidRequest) as sdk:
            hvac_client(sb, "no-such-role", jwt)
    finally:
        ours.close()
    assert "role" in str(sdk.value) and "role" in str(mine.value)


# ---- Kubernetes: the kubernetes client ------------------------------------------------


def test_kubernetes_values_versions_and_errors_agree(sandbox: Any) -> None:
    from kubernetes import client as k8s

    ns, sa = unique("ns"), unique("sa")
    store = sandbox.kube.store
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
    )
    for name in ("db", "hidden"):
        store.create(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
             "data": {"pw": base64.b64encode(b"CANARY-k8s-" + name.encode()).decode()}}
        )  # fmt: skip
    store.create(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "read", "namespace": ns},
         "rules": [{"apiGroups": [""], "resources": ["secrets"],
                    "resourceNames": ["db", "missing"], "verbs": ["get"]}]}
    )  # fmt: skip
    store.create(
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "read", "namespace": ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
         "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]}
    )  # fmt: skip
    token = sandbox.kube.app.mint_token(ns, sa, None, 3600)
    ca = str(sandbox.ca_path)
    ours = Kubernetes(ApiAccess(sandbox.kube.url, token, ns, ca_file=ca), {})
    cfg = k8s.Configuration()
    cfg.host, cfg.ssl_ca_cert = sandbox.kube.url, ca
    cfg.api_key = {"authorization": f"Bearer {token}"}
    api_client = k8s.ApiClient(cfg)
    theirs = k8s.CoreV1Api(api_client)
    try:
        secret = theirs.read_namespaced_secret("db", ns)
        value = base64.b64decode(secret.data["pw"]).decode()
        assert ours.get(Ref.parse("k8s://db#pw"), soon()).reveal() == value == "CANARY-k8s-db"
        assert ours.version(Ref.parse("k8s://db#pw"), soon()) == secret.metadata.resource_version
        ours_and_theirs(
            lambda: ours.get(Ref.parse("k8s://missing#pw"), soon()),
            lambda: theirs.read_namespaced_secret("missing", ns),
        )
        ours_and_theirs(
            lambda: ours.get(Ref.parse("k8s://hidden#pw"), soon()),
            lambda: theirs.read_namespaced_secret("hidden", ns),
        )
    finally:
        ours.close()
        api_client.close()
