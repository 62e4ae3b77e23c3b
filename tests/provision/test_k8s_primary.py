"""Issue 13, finding 3: a k8s:// primary is the operator's Secret.

provision never creates, labels or fills it (no placeholder); it grants the
service ``get`` on it and the plan tells the operator to create it; fetch's error
for a missing one says to create it and never suggests --sync-fallbacks.
"""

from __future__ import annotations

import pytest

from secretsboot.backends.kubernetes import extract
from secretsboot.errors import NotFoundError
from secretsboot.provision.desired import build
from secretsboot.refs import Ref
from secretsboot.spec import load_spec_text
from secretsboot.transport.status import kubernetes_error

SPEC = """\
apiVersion: secretsboot/v1
kind: SecretsbootSpec
kubernetes: {namespace: shop-legacy}
vault:
  address: https://vault.example:8200
  auth: {kubernetes: {mount: kubernetes}}
services:
  - name: catalog
    identity: none
    secrets:
      - name: cache-password
        from: k8s://catalog-cache#password
      - name: db
        from: vault://secret/catalog/db#password
        fallback: [k8s://catalog-fallback#db]
"""


def test_a_primary_secret_is_granted_but_never_built_while_a_fallback_is() -> None:
    state = build(load_spec_text(SPEC), identities={})
    secrets = {d.key.name for d in state.objects if d.key.kind == "Secret"}
    assert secrets == {"shop-legacy/catalog-fallback"}  # not catalog-cache: the operator's
    (role,) = [d for d in state.objects if d.key.kind == "Role"]
    assert role.body["rules"][0]["resourceNames"] == ["catalog-cache", "catalog-fallback"]
    assert state.k8s_primaries == [("catalog", "shop-legacy", "catalog-cache", "password")]


@pytest.mark.parametrize(
    "error",
    [
        kubernetes_error(404, "shop-legacy", "catalog-cache", "sa"),
        pytest.param(None, id="missing key"),
    ],
)
def test_fetch_says_to_create_a_missing_secret_and_not_to_sync(error: Exception | None) -> None:
    if error is None:
        with pytest.raises(NotFoundError) as info:
            extract({"data": {}}, Ref.parse("k8s://catalog-cache#password"), "shop-legacy")
        error = info.value
    text = str(error)
    assert "kubectl -n shop-legacy create secret generic catalog-cache" in text
    assert "--sync-fallbacks" not in text
