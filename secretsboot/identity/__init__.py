"""How a pod proves who it is.

- :mod:`.azure`: Entra ID tokens, lean client (workload identity, IMDS / pod identity,
  service principal); :mod:`.azure_sdk`: the same through azure-identity.
- :mod:`.kubernetes`: the pod's service account (in-cluster) or a kubeconfig.
- :mod:`.vault`: the body of a Vault login (kubernetes, jwt, azure auth methods).

Modules import their clients lazily: an Azure-only fetch never imports a Vault or
Kubernetes client and the other way round.
"""
