"""Secret stores, one module per store, found through :data:`STORES`.

Each module declares ``SCHEME`` (the URI scheme of its sources), ``FETCH_BACKEND``
(the class implementing :class:`~secretsboot.backends.base.SecretStore`) and
``build(context)``, which makes that backend for one fetch. Adding a store is one
module and one line in :data:`secretsboot.refs.STORES` (the store table lives in
core so the spec and the contract know every scheme). Modules load on first use,
so an Azure-only fetch never imports the Vault or Kubernetes backends.

>>> sorted(STORES)
['k8s', 'keyvault', 'vault']
"""

from __future__ import annotations

from secretsboot.errors import BadInputError
from secretsboot.refs import STORES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

    from secretsboot.backends.base import SecretStore, StoreContext

__all__ = ["STORES", "build_store", "store_module"]


def store_module(scheme: str) -> ModuleType:
    """The backend module of ``scheme`` (imported now)."""
    name = STORES.get(scheme)
    if name is None:
        raise BadInputError(
            f"unknown scheme '{scheme}'", hint=f"use one of {', '.join(sorted(STORES))}"
        )
    import importlib

    module = importlib.import_module(name)
    if getattr(module, "SCHEME", None) != scheme:  # a registry line pointing elsewhere
        raise BadInputError(f"{name} does not declare SCHEME = '{scheme}'")
    return module


def build_store(scheme: str, context: StoreContext) -> SecretStore:
    """The backend for ``scheme`` in one fetch (``context``: config, env, Azure tokens)."""
    store: SecretStore = store_module(scheme).build(context)
    return store
