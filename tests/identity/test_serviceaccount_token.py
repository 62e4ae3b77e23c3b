"""The pod's service-account token, in a pod and for a fetch run by hand as a pod."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsboot.contract import SERVICEACCOUNT_DIR, VAULT_JWT_TOKEN_PATH
from secretsboot.errors import BadInputError
from secretsboot.identity.kubernetes import read_serviceaccount_token


def test_paths_under_the_pod_folder_move_with_the_override(tmp_path: Path) -> None:
    """provision writes a jwt auth's tokenPath under the in-pod folder; `sandbox token
    --out DIR` mints into DIR and sets SECRETSBOOT_SERVICEACCOUNT_DIR=DIR."""
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "vault-token").write_text("jwt-token")
    env = {"SECRETSBOOT_SERVICEACCOUNT_DIR": str(tmp_path)}
    assert VAULT_JWT_TOKEN_PATH.startswith(SERVICEACCOUNT_DIR + "/")
    assert read_serviceaccount_token(env) == "sa-token"
    assert read_serviceaccount_token(env, VAULT_JWT_TOKEN_PATH) == "jwt-token"


def test_other_paths_are_read_as_given(tmp_path: Path) -> None:
    elsewhere = tmp_path / "projected" / "token"
    elsewhere.parent.mkdir()
    elsewhere.write_text("projected")
    env = {"SECRETSBOOT_SERVICEACCOUNT_DIR": str(tmp_path / "sa")}
    assert read_serviceaccount_token(env, str(elsewhere)) == "projected"
    with pytest.raises(BadInputError, match=r"cannot read the service-account token .*sa/vault"):
        read_serviceaccount_token(env, VAULT_JWT_TOKEN_PATH)
