"""The Kubernetes fake's lifecycle: store + app + HTTPS server + kubeconfig.

Example::

    kube = KubeFake.start(ca, state_dir)
    kube.store.create({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "orders", "namespace": "default"}})
    token = kube.mint_token("default", "orders", audiences=["vault"])
    kubernetes.config.load_kube_config(str(kube.kubeconfig_path))   # the official client
    kube.stop()
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from secretsboot._fs import atomic_write
from secretsboot.sandbox._http import FakeServer, Faults
from secretsboot.sandbox._running import Running
from secretsboot.sandbox.kube.app import KubeApp
from secretsboot.sandbox.kube.store import ObjectStore
from secretsboot.sandbox.pki import CertificateAuthority
from secretsboot.sandbox.tokens import SigningKey

CONTEXT = "secretsboot-sandbox"

_SEED_CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    {"name": "cluster-admin", "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
    {
        "name": "system:auth-delegator",
        "rules": [
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["tokenreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["subjectaccessreviews"],
                "verbs": ["create"],
            },
        ],
    },
)


class KubeFake(Running):
    """The Kubernetes fake's lifecycle: store + app + HTTPS server + kubeconfig."""

    def __init__(self, ca: CertificateAuthority, state_dir: Path, *, port: int = 0) -> None:
        self.ca = ca
        self.state_dir = state_dir
        self.store = ObjectStore()
        for role in _SEED_CLUSTER_ROLES:
            self.store.create(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": role["name"]},
                    "rules": role["rules"],
                }
            )
        self.admin_token = secrets.token_urlsafe(32)
        self.signing_key = SigningKey.shared("kubernetes-sa-issuer")
        self.app = KubeApp(self.store, self.signing_key, self.admin_token)
        # the app's own: a token as TokenRequest issues it (audiences default to the API
        # server's), and the TokenReview of one
        self.mint_token = self.app.mint_token
        self.review_token = self.app.review_token
        cert = ca.issue_server_cert(name="kubernetes")
        self.server = FakeServer(self.app, ssl_context=cert.ssl_context(), port=port)
        self.kubeconfig_path = state_dir / "kubeconfig"
        self.context = CONTEXT
        self.namespace = "default"

    @classmethod
    def start(cls, ca: CertificateAuthority, state_dir: Path, *, port: int = 0) -> KubeFake:
        """Serve on 127.0.0.1 (a free port) and write ``state_dir/kubeconfig``."""
        fake = cls(ca, state_dir, port=port)
        fake.server.start()
        fake.write_kubeconfig()
        return fake

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def oidc_issuer(self) -> str:
        return self.app.issuer

    @property
    def faults(self) -> Faults:
        return self.app.faults

    def adopt(self, *, issuer: str | None, context: str | None, namespace: str) -> None:
        """Look like the operator's cluster: its OIDC issuer in tokens, its context name."""
        self.app.issuer_url = issuer
        self.context = context or CONTEXT
        self.namespace = namespace
        self.write_kubeconfig()

    def write_kubeconfig(self) -> Path:
        ctx = self.context
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": ctx,
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca.ca_path)},
                }
            ],
            "users": [{"name": f"{ctx}-admin", "user": {"token": self.admin_token}}],
            "contexts": [
                {
                    "name": ctx,
                    "context": {
                        "cluster": ctx,
                        "user": f"{ctx}-admin",
                        "namespace": self.namespace,
                    },
                }
            ],
            "current-context": ctx,
            "preferences": {},
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(  # holds the admin token: private, never through a symlink
            self.kubeconfig_path,
            lambda fh: yaml.safe_dump(config, fh, sort_keys=False),
            mode=0o600,
            what="kubeconfig",
        )
        return self.kubeconfig_path

    def healthy(self) -> bool:
        return self.server.running

    def stop(self) -> None:
        self.app.closing.set()  # open watches end
        self.server.stop()

    def __repr__(self) -> str:
        return f"KubeFake({self.url!r})"
