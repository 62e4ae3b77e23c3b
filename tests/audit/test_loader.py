"""The loader: files, folders, stdin, broken documents, Helm templates, Lists, lines."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from secretsboot.audit.loader import HELM_HINT, load, load_text, parse_documents
from secretsboot.errors import BadInputError


def test_multi_document_with_a_broken_document_in_the_middle() -> None:
    text = textwrap.dedent(
        """\
        kind: Pod
        metadata: {name: a}
        ---
        kind: Pod
        metadata: {name: [unclosed
        ---
        kind: Pod
        metadata: {name: c}
        """
    )
    result = load_text(text, "x.yaml")
    assert [m.name for m in result.manifests] == ["a", "c"]
    assert [(m.doc_index, m.line) for m in result.manifests] == [(0, 1), (2, 7)]
    (error,) = result.errors
    assert (error.file, error.doc_index) == ("x.yaml", 1)
    assert error.line in (5, 6) and error.reason.startswith("invalid YAML")
    assert result.coverage.documents == 3 and result.coverage.objects == 2


def test_unrendered_helm_template_is_reported_not_skipped_silently() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ include "app.fullname" . }}
        spec:
          {{- if .Values.replicas }}
          replicas: {{ .Values.replicas }}
          {{- end }}
        """
    )
    (error,) = load_text(text, "templates/deploy.yaml").errors
    assert error.reason == HELM_HINT
    assert "helm template" in error.reason


def test_quoted_helm_values_are_audited_and_flagged() -> None:
    text = 'kind: Pod\nmetadata: {name: "{{ .Release.Name }}-web"}\nspec: {containers: []}\n'
    result = load_text(text)
    assert [m.kind for m in result.manifests] == ["Pod"]
    assert result.errors[0].reason.startswith(HELM_HINT)


def test_consul_template_in_a_block_scalar_is_plain_yaml() -> None:
    text = textwrap.dedent(
        """\
        kind: Pod
        metadata:
          name: p
          annotations:
            vault.hashicorp.com/agent-inject-template-db: |
              {{- with secret "database/creds/app" -}}
              postgres://{{ .Data.username }}:{{ .Data.password }}@db:5432/app
              {{- end }}
        """
    )
    result = load_text(text)
    assert result.errors == [] and [m.name for m in result.manifests] == ["p"]


def test_non_objects_are_counted_with_reasons() -> None:
    text = "---\n---\n42\n---\n[1, 2]\n---\nfoo: bar\n---\nkind: Pod\nmetadata: {name: p}\n"
    result = load_text(text)
    assert [m.name for m in result.manifests] == ["p"]
    assert result.coverage.skipped == {
        "empty document": 1,
        "not an object (a scalar)": 1,
        "not an object (a list)": 1,
        "no kind (not a Kubernetes object)": 1,
    }


def test_kind_list_is_flattened_with_item_kinds_and_lines() -> None:
    text = textwrap.dedent(
        """\
        apiVersion: apps/v1
        kind: DeploymentList
        items:
          - metadata: {name: a}
            spec: {}
          - metadata: {name: b}
        """
    )
    result = load_text(text)
    assert [(m.kind, m.api_version, m.name, m.line) for m in result.manifests] == [
        ("Deployment", "apps/v1", "a", 4),
        ("Deployment", "apps/v1", "b", 6),
    ]
    assert result.manifests[1].line_of(("metadata", "name")) == 6


def test_anchors_aliases_and_merge_keys() -> None:
    text = textwrap.dedent(
        """\
        kind: Pod
        metadata:
          name: p
          labels: &labels {app: web, tier: front}
        spec:
          base: &base {a: 1, b: 2}
          merged: {<<: *base, b: 3}
          labels: *labels
          quoted: {"<<": 1}
        """
    )
    (m,) = load_text(text).manifests
    assert m.body == yaml.safe_load(text)
    assert m.body["spec"]["merged"] == {"a": 1, "b": 3}


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]\n",  # refers to itself
        "a: *nothing\n",
        "? [a, b]\n: 1\n",  # a collection as a key
        "a: " + "[" * 300 + "]" * 300 + "\n",  # too deep
        "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",  # an alias bomb
    ],
    ids=["self-reference", "unknown-alias", "collection-key", "too-deep", "alias-bomb"],
)
def test_hostile_documents_become_load_errors(text: str) -> None:
    result = load_text("kind: Pod\nmetadata: {name: ok}\n---\n" + text)
    assert [m.name for m in result.manifests] == ["ok"]
    assert len(result.errors) == 1 and result.errors[0].doc_index == 1


@pytest.mark.parametrize(
    "scalar",
    [
        "yes",
        "No",
        "on",
        "~",
        "null",
        "12",
        "-3",
        "0x1f",
        "0755",
        "1_000",
        "1.5",
        ".inf",
        "-.Inf",
        "1e3",
        "2001-12-14",
        "0.",
        "+12",
        "'12'",
        '"true"',
        "!!str 12",
        "!!int '7'",
        "abc",
    ],
)
def test_scalars_resolve_like_pyyaml(scalar: str) -> None:
    ((data, _line, _items, _entries, _dups),) = parse_documents(f"v: {scalar}\n")
    expected = yaml.safe_load(f"v: {scalar}\n")["v"]
    if scalar == "2001-12-14":
        assert data["v"] == "2001-12-14"  # timestamps stay text: reports print them as written
    else:
        assert data["v"] == expected and type(data["v"]) is type(expected)


def test_field_lines_are_read_lazily_from_the_file(tmp_path: Path) -> None:
    f = tmp_path / "app.yaml"
    f.write_text(
        "# header\nkind: Service\nmetadata: {name: s}\n---\nkind: Pod\nmetadata:\n  name: p\n"
        "spec:\n  containers:\n    - name: a\n      env:\n        - name: X\n          value: y\n"
    )
    (_, pod) = load([f]).manifests
    assert pod.line == 5
    assert pod.line_of(("spec", "containers", 0, "env", 0, "value")) == 13
    assert pod.line_of(("spec", "nope")) == 8


def test_folders_are_read_recursively_by_extension(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for name in ("a/one.yaml", "a/b/two.yml", "a/b/three.yam", ".git/x.yaml", "a/.hidden.yaml"):
        (tmp_path / name).write_text(f"kind: Pod\nmetadata: {{name: {Path(name).stem}}}\n")
    (tmp_path / "a" / "four.json").write_text(
        json.dumps({"kind": "Pod", "metadata": {"name": "four"}})
    )
    (tmp_path / "a" / "notes.txt").write_text("kind: Pod\nmetadata: {name: txt}\n")
    result = load([tmp_path])
    assert sorted(m.name for m in result.manifests) == ["four", "one", "three", "two"]
    assert result.coverage.files == 4


def test_missing_path_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such file or folder"):
        load([tmp_path / "nope"])


def test_stdin_yaml_and_json() -> None:
    result = load(
        ["-"],
        stdin=io.StringIO("kind: Pod\nmetadata: {name: y}\n---\nkind: Pod\nmetadata: {name: z}\n"),
    )
    assert [m.name for m in result.manifests] == ["y", "z"]
    assert result.manifests[1].line_of(("metadata", "name")) == 5
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [{"kind": "Pod", "metadata": {"name": "j"}}],
    }
    result = load(["-"], stdin=io.StringIO("\n  " + json.dumps(listing)))
    assert [m.name for m in result.manifests] == ["j"]


def test_invalid_json_file_is_a_load_error(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text('{"kind": "Pod",\n "metadata": }')
    result = load([f])
    (error,) = result.errors
    assert error.line == 2 and error.reason.startswith("invalid JSON")


def test_byte_order_mark_and_undecodable_bytes(tmp_path: Path) -> None:
    f = tmp_path / "bom.yaml"
    f.write_bytes(
        b"\xef\xbb\xbfkind: Pod\nmetadata: {name: bom}\n---\n"
        b"kind: Pod\nmetadata: {name: \xff\xfe}\n"
    )
    result = load([f])
    assert result.manifests[0].name == "bom"
    assert len(result.manifests) + len(result.errors) == 2


def test_same_objects_as_pyyaml_on_the_corpus() -> None:
    from test_corpus import corpus_roots

    files = [f for root in corpus_roots() for f in sorted(root.glob("*/*.yaml"))]
    assert files
    for f in files:
        expected = [
            d for d in yaml.safe_load_all(f.read_text()) if isinstance(d, dict) and d.get("kind")
        ]
        assert [m.body for m in load([f]).manifests] == expected, f


def test_stdin_yaml_flow_style_is_not_mistaken_for_json() -> None:
    result = load(
        ["-"],
        stdin=io.StringIO(
            "{kind: Pod, metadata: {name: flow}}\n---\nkind: Pod\nmetadata: {name: b}\n"
        ),
    )
    assert [m.name for m in result.manifests] == ["flow", "b"]


def test_fast_field_lines_match_the_line_map_of_secretsboot_yaml() -> None:
    """The compact entry lines give the same line as a full map, for every field of the corpus."""
    from test_corpus import corpus_roots

    from secretsboot._yaml import load_all_with_lines

    checked = 0
    for f in [f for root in corpus_roots() for f in sorted(root.glob("*/*.yaml"))]:
        manifests = load([f]).manifests
        reference = [
            (body, lines)
            for body, lines in load_all_with_lines(f.read_text())
            if isinstance(body, dict) and body.get("kind")
        ]
        for m, (_body, lines) in zip(manifests, reference, strict=True):
            offset = m.line - lines[()]
            for path, line in lines.items():
                if path:
                    assert m.lines[path] == line + offset, (f, path)
                    checked += 1
    assert checked > 500


def test_field_lines_of_list_items_and_aliased_documents() -> None:
    text = (
        "kind: List\nitems:\n- kind: Pod\n  metadata:\n    name: a\n"
        "- kind: Pod\n  metadata:\n    name: b\n"
    )
    a, b = load_text(text).manifests
    assert (a.line_of(("metadata", "name")), b.line_of(("metadata", "name"))) == (5, 8)
    aliased = "kind: Pod\nmetadata:\n  name: p\n  labels: &l {a: b}\nspec:\n  x: *l\n  y: 1\n"
    (m,) = load_text(aliased).manifests
    assert m.line_of(("spec", "y")) == 7


def test_parallel_folder_read_equals_the_serial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretsboot.audit import _parallel as loader

    for i in range(12):
        (tmp_path / f"f{i:02}.yaml").write_text(
            f"kind: Pod\nmetadata: {{name: p{i}}}\n---\n42\n---\n"
            f"kind: Deployment\nmetadata:\n  name: d{i}\nspec: {{replicas: [unclosed\n"
        )
    monkeypatch.setenv("SECRETSBOOT_NO_PARALLEL", "1")
    serial = load([tmp_path])
    monkeypatch.delenv("SECRETSBOOT_NO_PARALLEL")
    monkeypatch.setattr(loader, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(loader, "BATCH_BYTES", 200)
    monkeypatch.setattr(loader, "MIN_BATCH_BYTES", 100)
    monkeypatch.setattr(loader.os, "cpu_count", lambda: 2)
    parallel = load([tmp_path])
    assert [(m.file, m.doc_index, m.line, m.body) for m in parallel.manifests] == [
        (m.file, m.doc_index, m.line, m.body) for m in serial.manifests
    ]
    assert parallel.errors == serial.errors and len(parallel.errors) == 12
    assert parallel.coverage == serial.coverage
    assert parallel.manifests[3].line_of(("metadata", "name")) == 2


def test_helm_template_output_on_stdin() -> None:
    rendered = textwrap.dedent(
        """\
        ---
        # Source: shop/templates/serviceaccount.yaml
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: release-shop
        ---
        # Source: shop/templates/deployment.yaml
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: release-shop
        spec:
          template:
            spec:
              serviceAccountName: release-shop
              containers:
                - name: shop
                  image: "myacr.azurecr.io/shop:1.0.0"
        """
    )
    result = load(["-"], stdin=io.StringIO(rendered))
    assert [(m.kind, m.line) for m in result.manifests] == [
        ("ServiceAccount", 3),
        ("Deployment", 9),
    ]
    assert result.errors == [] and result.coverage.documents == 2
    assert result.manifests[1].line_of(("spec", "template", "spec", "containers", 0, "image")) == 19


def test_a_large_stream_is_parsed_in_parallel_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretsboot.audit import _parallel as loader

    docs = []
    for i in range(40):
        docs.append(f"kind: Pod\nmetadata:\n  name: p{i}\n  labels: {{app: a{i}}}\n")
        if i % 7 == 0:
            docs.append("kind: Pod\nmetadata: {name: [broken\n")
        if i % 9 == 0:
            docs.append("'just a scalar'\n")
    text = "---\n".join(docs)
    f = tmp_path / "big.yaml"
    f.write_text(text)
    monkeypatch.setenv("SECRETSBOOT_NO_PARALLEL", "1")
    serial = load([f])
    serial_stdin = load(["-"], stdin=io.StringIO(text))
    monkeypatch.delenv("SECRETSBOOT_NO_PARALLEL")
    monkeypatch.setattr(loader, "PARALLEL_MIN_BYTES", 300)
    monkeypatch.setattr(loader, "MIN_BATCH_BYTES", 150)
    monkeypatch.setattr(loader.os, "cpu_count", lambda: 2)
    for parallel, reference in (
        (load([f]), serial),
        (load(["-"], stdin=io.StringIO(text)), serial_stdin),
    ):
        assert [(m.doc_index, m.line, m.body) for m in parallel.manifests] == [
            (m.doc_index, m.line, m.body) for m in reference.manifests
        ]
        assert parallel.errors == reference.errors and len(parallel.errors) == 6
        assert parallel.coverage == reference.coverage
        assert parallel.manifests[-1].line_of(("metadata", "labels", "app")) == text.count("\n")
