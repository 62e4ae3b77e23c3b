"""How a pod proves who it is.

- :mod:`.azure`: Entra ID tokens (workload identity, IMDS / pod identity, service
  principal) on the transport's HTTP client.
- :mod:`.kubernetes`: the pod's service account (in-cluster) or a kubeconfig.
- :mod:`.vault`: the body of a Vault login (kubernetes, jwt, azure auth methods).

Modules import their clients lazily: an Azure-only fetch never imports a Vault or
Kubernetes client and the other way round.
"""
