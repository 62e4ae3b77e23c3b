"""Property tests: no input makes the audit raise; only LoadErrors and findings come out."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsboot.audit.engine import run
from secretsboot.audit.loader import Loader, load, load_text, parse_documents
from secretsboot.audit.model import AuditResult

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(
    [
        "kind",
        "metadata",
        "name",
        "namespace",
        "labels",
        "annotations",
        "spec",
        "template",
        "containers",
        "initContainers",
        "env",
        "envFrom",
        "value",
        "valueFrom",
        "secretKeyRef",
        "volumes",
        "csi",
        "secret",
        "secretName",
        "projected",
        "sources",
        "flexVolume",
        "driver",
        "volumeAttributes",
        "secretProviderClass",
        "serviceAccountName",
        "args",
        "image",
        "jobTemplate",
        "ownerReferences",
        "items",
        "selector",
        "provider",
        "parameters",
        "target",
        "output",
        "destination",
        "subjects",
        "roleRef",
        "aadpodidbinding",
        "azure.workload.identity/use",
        "vault.hashicorp.com/agent-inject",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(
        [
            "true",
            "secrets-store.csi.k8s.io",
            "azure/kv",
            "x@azurekeyvault",
            "vault:a#b",
            "Pod",
            "Deployment",
            "azure",
            "vault",
            "CANARY-9d1f",
            "$(X)",
        ]
    ),
)
TREES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), children, max_size=5)
    ),
    max_leaves=40,
)
KINDS = st.sampled_from(
    [
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicaSet",
        "ReplicationController",
        "ServiceAccount",
        "Secret",
        "SecretProviderClass",
        "AzureIdentityBinding",
        "AzureIdentity",
        "ExternalSecret",
        "ClusterExternalSecret",
        "AzureKeyVaultSecret",
        "VaultStaticSecret",
        "RoleBinding",
        "ClusterRoleBinding",
        "Role",
        "ConfigMap",
        "List",
        "DeploymentList",
        "Widget",
    ]
)


@st.composite
def k8s_objects(draw: st.DrawFn) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": draw(st.sampled_from(["v1", "apps/v1", "x.io/v1"])),
        "kind": draw(KINDS),
    }
    if draw(st.booleans()):
        obj["metadata"] = draw(
            st.fixed_dictionaries(
                {"name": st.one_of(st.text(max_size=10), TREES)},
                optional={
                    "namespace": st.one_of(st.text(max_size=6), TREES),
                    "labels": TREES,
                    "annotations": TREES,
                    "ownerReferences": TREES,
                },
            )
        )
    else:
        obj["metadata"] = draw(TREES)
    obj["spec"] = draw(TREES)
    if draw(st.booleans()):
        obj["items"] = draw(st.lists(TREES, max_size=3))
    return obj


def audit_text(text: str, name: str = "fuzz.yaml") -> AuditResult:
    return run(load_text(text, name))


def _sound(result: AuditResult) -> None:
    assert result.coverage.workloads == len(result.workloads)
    for w in result.workloads:
        for a in w.approaches:
            assert a.evidence


@SETTINGS
@given(st.lists(k8s_objects(), min_size=1, max_size=4))
def test_random_objects_never_crash(objects: list[dict[str, Any]]) -> None:
    text = "---\n".join(yaml.safe_dump(o) for o in objects)
    _sound(audit_text(text))
    _sound(audit_text(json.dumps(objects[0]), "fuzz.json"))


@SETTINGS
@given(TREES)
def test_random_documents_never_crash(tree: Any) -> None:
    _sound(audit_text(yaml.safe_dump(tree)))


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(tmp_path_factory: Any, data: bytes) -> None:
    f: Path = tmp_path_factory.mktemp("fuzz") / "bytes.yaml"
    f.write_bytes(data)
    _sound(run(load([f])))


YAMLISH = st.lists(
    st.sampled_from(
        [
            *"abcdef",
            ":",
            " ",
            "\n",
            "-",
            "---\n",
            "{{",
            "}}",
            "&a",
            "*a",
            "<<",
            "[",
            "]",
            "{",
            "}",
            "'",
            '"',
            "#",
            "!",
            "|",
            "kind: Pod\n",
            "kind: List\nitems:\n",
            "  ",
            "\t",
            "%",
        ]
    ),
    max_size=30,
).map("".join)


@SETTINGS
@given(YAMLISH)
def test_yaml_like_noise_never_crashes(text: str) -> None:
    _sound(audit_text(text))
    loader = Loader()
    loader.add_text(text, "stdin-like")
    assert loader.result.coverage.files == 1


SAFE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(alphabet=string.printable, max_size=15)
)
SAFE_TREES = st.recursive(
    SAFE_SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=string.ascii_letters, min_size=1, max_size=6), children, max_size=4
        )
    ),
    max_leaves=30,
)


@SETTINGS
@given(SAFE_TREES, st.sampled_from([None, False, True]))
def test_parser_agrees_with_pyyaml(tree: Any, flow: bool | None) -> None:
    text = yaml.safe_dump(tree, default_flow_style=flow)
    expected = yaml.safe_load(text)
    ((data, _line, _items, _entries, _dups),) = parse_documents(text)
    assert data == expected
