"""The pod's Kubernetes identity: its service-account token, or a kubeconfig outside a cluster.

In a pod: ``KUBERNETES_SERVICE_HOST``/``PORT`` and the mounted service-account folder
(``token``, ``ca.crt``, ``namespace``; ``$SECRETSBOOT_SERVICEACCOUNT_DIR`` overrides
the folder for tests). Outside: ``$KUBECONFIG`` (current context; token, tokenFile,
or client certificate; CA file or data).

>>> ApiAccess(server="https://10.0.0.1:443", token="t", namespace="shop").namespace
'shop'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from secretsboot.contract import SERVICEACCOUNT_DIR
from secretsboot.errors import BadInputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple
else:
    from secretsboot._records import NamedTuple


class ApiAccess(NamedTuple):
    """Where the API server is and how we authenticate to it (a token or a client cert)."""

    server: str
    token: str | None = None
    namespace: str = "default"
    ca_file: str | None = None
    ca_data: str | None = None
    client_cert: tuple[str, str] | None = None
    source: str = "in-cluster"
    user: str | None = None
    #: a private folder holding the kubeconfig's client certificate and key as files
    #: (``ssl`` reads only files); :func:`forget_client_cert` removes it once loaded
    temp_dir: str | None = None

    def __repr__(self) -> str:  # never show the token
        return f"ApiAccess(server={self.server!r}, namespace={self.namespace!r})"


def serviceaccount_dir(env: Mapping[str, str]) -> str:
    return env.get("SECRETSBOOT_SERVICEACCOUNT_DIR") or SERVICEACCOUNT_DIR


def read_serviceaccount_token(env: Mapping[str, str], path: str | None = None) -> str:
    """The pod's service-account JWT (for Vault kubernetes/jwt auth).

    ``path`` under the in-pod folder (``/var/run/secrets/kubernetes.io/serviceaccount``,
    as provision writes a jwt auth's ``tokenPath``) moves with
    ``$SECRETSBOOT_SERVICEACCOUNT_DIR``, so a fetch run by hand as a pod (``sandbox
    token --out DIR``) reads the tokens minted there.
    """
    folder = serviceaccount_dir(env)
    if path is None:
        path = os.path.join(folder, "token")
    elif path.startswith(SERVICEACCOUNT_DIR + "/") and folder != SERVICEACCOUNT_DIR:
        path = os.path.join(folder, path[len(SERVICEACCOUNT_DIR) + 1 :])
    try:
        with open(path, encoding="utf-8") as fh:
            token = fh.read().strip()
    except OSError as exc:
        raise BadInputError(
            f"cannot read the service-account token {path}: {exc.strerror}",
            hint="set automountServiceAccountToken: true or project a token volume "
            "(vault.auth.tokenPath)",
        ) from None
    if not token:
        raise BadInputError(f"the service-account token {path} is empty")
    return token


def api_access(env: Mapping[str, str], namespace: str | None = None) -> ApiAccess:
    """In-cluster access when ``KUBERNETES_SERVICE_HOST`` is set, else the kubeconfig."""
    host = env.get("KUBERNETES_SERVICE_HOST")
    if host:
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        folder = serviceaccount_dir(env)
        ns = namespace
        if not ns:
            try:
                with open(os.path.join(folder, "namespace"), encoding="utf-8") as fh:
                    ns = fh.read().strip()
            except OSError:
                ns = "default"
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return ApiAccess(
            server=f"https://{hostport}",
            token=read_serviceaccount_token(env),
            namespace=ns or "default",
            ca_file=os.path.join(folder, "ca.crt"),
            source="in-cluster service account",
        )
    return kubeconfig_access(env, namespace)


def kubeconfig_access(env: Mapping[str, str], namespace: str | None = None) -> ApiAccess:
    path = (env.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")).split(os.pathsep)[0]
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BadInputError(
            f"no Kubernetes access: not in a pod and cannot read kubeconfig {path} "
            f"({exc.strerror})",
            hint="run in a pod, or set KUBECONFIG",
        ) from None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        raise BadInputError(f"kubeconfig {path} is not valid YAML") from None
    return _from_kubeconfig(doc, path, namespace)


def _named(items: Any, name: str, kind: str, path: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            inner = item.get(kind)
            return inner if isinstance(inner, dict) else {}
    raise BadInputError(f"kubeconfig {path}: no {kind} named '{name}'")


def _from_kubeconfig(doc: Any, path: str, namespace: str | None) -> ApiAccess:
    if not isinstance(doc, dict):
        raise BadInputError(f"kubeconfig {path} is not a mapping")
    current = doc.get("current-context")
    if not current:
        raise BadInputError(f"kubeconfig {path} has no current-context")
    ctx = _named(doc.get("contexts"), current, "context", path)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster", path)
    user = _named(doc.get("users"), ctx.get("user", ""), "user", path)
    server = cluster.get("server")
    if not server:
        raise BadInputError(f"kubeconfig {path}: cluster has no server")

    base = os.path.dirname(os.path.abspath(path))
    ca_data = None
    if cluster.get("certificate-authority-data"):
        ca_data = _b64(cluster["certificate-authority-data"], "certificate-authority-data", path)
        if "-----BEGIN CERTIFICATE-----" not in ca_data:
            raise BadInputError(
                f"kubeconfig {path}: cluster certificate-authority-data is not a PEM certificate",
                hint="put the base64 of the cluster's CA certificate (PEM) there",
            )
    ca_file = cluster.get("certificate-authority")
    if ca_file and not os.path.isabs(ca_file):
        ca_file = os.path.join(base, ca_file)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        with open(user["tokenFile"], encoding="utf-8") as fh:
            token = fh.read().strip()
    client_cert = None
    temp_dir = None
    if user.get("client-certificate-data") and user.get("client-key-data"):
        client_cert = _write_client_cert(
            _b64(user["client-certificate-data"], "client-certificate-data", path).encode(),
            _b64(user["client-key-data"], "client-key-data", path).encode(),
        )
        temp_dir = os.path.dirname(client_cert[0])
    elif user.get("client-certificate") and user.get("client-key"):
        client_cert = (user["client-certificate"], user["client-key"])
    return ApiAccess(
        server=server,
        token=token,
        namespace=namespace or ctx.get("namespace") or "default",
        ca_file=ca_file,
        ca_data=ca_data,
        client_cert=client_cert,
        source=f"kubeconfig {path} context {current}",
        user=ctx.get("user"),
        temp_dir=temp_dir,
    )


def _b64(value: Any, field: str, path: str) -> str:
    """A kubeconfig ``*-data`` field: base64 of PEM text; BadInputError names the field."""
    import base64
    import binascii

    try:
        return base64.b64decode("".join(str(value).split()), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise BadInputError(
            f"kubeconfig {path}: {field} is not base64 of a PEM file",
            hint=f"set {field} to the output of `base64 -w0 FILE.pem`",
        ) from None


def forget_client_cert(access: ApiAccess) -> None:
    """Remove the temporary copy of a kubeconfig's client key (once the TLS context holds it)."""
    if access.temp_dir:
        import shutil

        shutil.rmtree(access.temp_dir, ignore_errors=True)


def _write_client_cert(cert: bytes, key: bytes) -> tuple[str, str]:
    # ssl wants files: a private 0700 folder, files 0600.
    import tempfile

    folder = tempfile.mkdtemp(prefix="secretsboot-kube-")
    paths = (os.path.join(folder, "client.crt"), os.path.join(folder, "client.key"))
    for p, data in zip(paths, (cert, key), strict=True):
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return paths
