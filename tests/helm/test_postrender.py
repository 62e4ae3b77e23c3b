"""`secretsboot inject` as a Helm post-renderer, driven by the real helm 4 binary.

The Helm 4 form is the plugin in ``helm-plugin/`` (``--post-renderer secretsboot``);
the Helm 3 form is the ``secretsboot-postrender`` executable, run here directly
as Helm 3 runs it (release on stdin, result on stdout, exit code checked).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsboot.cli.postrender import main as postrender_main
from secretsboot.inject import INIT_CONTAINER, dump_documents, inject_documents, load_documents
from secretsboot.spec import load_spec

from .conftest import Helm

HERE = Path(__file__).resolve().parent
CHART = HERE / "sample-chart"
SPEC = HERE / "spec.yaml"
POSTRENDER = Path(sys.executable).parent / "secretsboot-postrender"
#: annotations Helm itself adds around a post-renderer (not part of the objects)
HELM_BOOKKEEPING = ("postrenderer.helm.sh/",)


def _objects(text: str) -> list[Any]:
    """Parsed objects, in a stable order, without Helm's own bookkeeping annotations."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        meta = doc.get("metadata", {})
        notes = meta.get("annotations")
        if isinstance(notes, dict):
            for key in [k for k in notes if k.startswith(HELM_BOOKKEEPING)]:
                del notes[key]
            if not notes:
                del meta["annotations"]
    return sorted(docs, key=lambda d: (d["kind"], d["metadata"]["name"]))


def _template(
    helm: Helm, *extra: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return helm(
        "template", "orders", str(CHART), "--namespace", "shop", *extra, env=env, check=check
    )


def _executable(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``secretsboot-postrender`` as Helm 3 runs it: a subprocess, stdin to stdout."""
    return subprocess.run(
        [str(POSTRENDER), *args], input=stdin, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def plain(helm: Helm) -> str:
    return _template(helm).stdout


@pytest.fixture(scope="module")
def expected(plain: str) -> list[Any]:
    result = inject_documents(load_documents(plain), load_spec(SPEC))
    assert [o.ref for o in result.injected] == ["Deployment/orders", "Job/orders-migrate"]
    return _objects(dump_documents(result.documents))


def test_helm4_plugin_with_the_spec_in_the_environment_equals_inject(
    helm: Helm, plugin: str, expected: list[Any]
) -> None:
    out = _template(helm, "--post-renderer", plugin, env={"SECRETSBOOT_SPEC": str(SPEC)})
    assert _objects(out.stdout) == expected
    # Helm's file bookkeeping went through us intact: each object keeps its source
    assert "# Source: orders/templates/deployment.yaml" in out.stdout
    deployment = next(o for o in expected if o["metadata"]["name"] == "orders")
    init = deployment["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in init] == [INIT_CONTAINER]


def test_helm4_plugin_with_the_spec_in_post_renderer_args(
    helm: Helm, plugin: str, expected: list[Any]
) -> None:
    args = ("--post-renderer-args", "-f", "--post-renderer-args", str(SPEC))
    out = _template(helm, "--post-renderer", plugin, *args)
    assert _objects(out.stdout) == expected


def test_every_upgrade_renders_the_same_and_a_second_pass_changes_nothing(
    helm: Helm, plugin: str
) -> None:
    env = {"SECRETSBOOT_SPEC": str(SPEC)}
    first = _template(helm, "--post-renderer", plugin, env=env).stdout
    again = _template(helm, "--post-renderer", plugin, env=env).stdout
    assert again == first  # helm upgrade re-renders: no drift between revisions
    injected = _executable(first, "-f", str(SPEC))
    assert injected.returncode == 0, injected.stderr
    assert _objects(injected.stdout) == _objects(first)


def test_a_bad_spec_makes_helm_fail_with_our_one_line_error(
    helm: Helm, plugin: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad-spec.yaml"
    bad.write_text("apiVersion: secretsboot/v1\nkind: SecretsbootSpec\nservices: 3\n")
    out = _template(
        helm, "--post-renderer", plugin, env={"SECRETSBOOT_SPEC": str(bad)}, check=False
    )
    assert out.returncode != 0
    assert out.stdout == ""
    ours = [line for line in out.stderr.splitlines() if "secretsboot-postrender" in line]
    assert len(ours) == 1, out.stderr
    assert ours[0].startswith("secretsboot-postrender: error: ")
    assert str(bad) in ours[0] and "services" in ours[0]


def test_no_spec_at_all_fails_helm_and_says_how_to_pass_one(helm: Helm, plugin: str) -> None:
    out = _template(helm, "--post-renderer", plugin, check=False)
    assert out.returncode != 0 and out.stdout == ""
    assert "no spec given" in out.stderr and "SECRETSBOOT_SPEC" in out.stderr


# ----------------------------------------------------------------------------- Helm 3 form


def test_executable_form_reads_stdin_writes_stdout(plain: str, expected: list[Any]) -> None:
    proc = _executable(plain, "--file", str(SPEC))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert _objects(proc.stdout) == expected


def test_bad_release_yaml_writes_nothing_to_stdout() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = postrender_main(
        ["-f", str(SPEC)],
        stdin=io.StringIO("kind: Pod\n---\n- [unclosed\n"),
        stdout=stdout,
        stderr=stderr,
        env={},
    )
    assert code == 2
    assert stdout.getvalue() == ""
    assert stderr.getvalue().count("\n") == 1
    assert stderr.getvalue().startswith("secretsboot-postrender: error: <helm release>:")


def test_arguments_win_over_the_environment(tmp_path: Path, plain: str) -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    env = {"SECRETSBOOT_SPEC": str(tmp_path / "missing.yaml"), "SECRETSBOOT_IMAGE": "reg/x:1"}
    code = postrender_main(
        ["-f", str(SPEC), "--image", "reg/y:2"],
        stdin=io.StringIO(plain),
        stdout=stdout,
        stderr=stderr,
        env=env,
    )
    assert code == 0, stderr.getvalue()
    images = {
        c["image"]
        for d in yaml.safe_load_all(stdout.getvalue())
        if d and d["kind"] == "Deployment" and d["metadata"]["name"] == "orders"
        for c in d["spec"]["template"]["spec"]["initContainers"]
    }
    assert images == {"reg/y:2"}


def test_unknown_flag_is_one_line_exit_2() -> None:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = postrender_main(["--nope"], stdin=io.StringIO(""), stdout=stdout, stderr=stderr, env={})
    assert code == 2 and stdout.getvalue() == ""
    assert stderr.getvalue().count("\n") == 1 and "--nope" in stderr.getvalue()
