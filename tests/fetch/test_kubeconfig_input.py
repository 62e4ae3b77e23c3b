"""A malformed kubeconfig is bad input naming the field (exit 2), never an internal error,
and no copy of a client key is left behind when it is refused."""

from __future__ import annotations

import base64
import glob
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from secretsboot.errors import BadInputError, exit_code_for
from secretsboot.fetch._cli import main
from secretsboot.identity.kubernetes import kubeconfig_access

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _kubeconfig(tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any]) -> Path:
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443", **cluster}}],
        "users": [{"name": "u", "user": user}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    return path


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("cluster", "user", "field"),
    [
        (
            {"certificate-authority-data": "not base64 !!"},
            {"token": "t"},
            "certificate-authority-data",
        ),
        (
            {"certificate-authority-data": b64("just text")},
            {"token": "t"},
            "certificate-authority-data",
        ),
        ({"certificate-authority-data": "////"}, {"token": "t"}, "certificate-authority-data"),
        (
            {"certificate-authority-data": b64(PEM)},
            {"client-certificate-data": b64(PEM), "client-key-data": "%%%"},
            "client-key-data",
        ),
    ],
)
def test_malformed_data_fields_are_bad_input_naming_the_field(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any], field: str
) -> None:
    before = set(glob.glob(f"{tempfile.gettempdir()}/secretsboot-kube-*"))
    path = _kubeconfig(tmp_path, cluster, user)
    with pytest.raises(BadInputError) as info:
        kubeconfig_access({"KUBECONFIG": str(path)})
    assert exit_code_for(info.value) == 2
    assert f"kubeconfig {path}: {field}" in str(info.value) or field in str(info.value)
    assert set(glob.glob(f"{tempfile.gettempdir()}/secretsboot-kube-*")) == before


def test_fetch_reports_a_malformed_kubeconfig_as_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _kubeconfig(tmp_path, {"certificate-authority-data": "@@"}, {"token": "t"})
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setenv("SECRETSBOOT_SECRETS", "db=k8s://db#pw")
    assert main(["fetch", "--out", str(tmp_path / "out"), "--timeout", "5"]) == 2
    err = capsys.readouterr().err
    assert "certificate-authority-data is not base64" in err and "internal error" not in err
    assert not (tmp_path / "out").exists()
