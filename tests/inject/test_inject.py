"""`secretsboot inject`: what it adds, to what, and what it leaves alone."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsboot import __version__
from secretsboot.cli import main
from secretsboot.errors import BadInputError, SpecError
from secretsboot.inject import (
    DEFAULT_IMAGE,
    FETCH_ARGS,
    RUN_PREFIX,
    WORKLOAD_KINDS,
    dump_documents,
    inject_documents,
    inject_text,
    load_documents,
)
from secretsboot.spec import Spec, load_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "drone-delivery.yaml"
K8S_VERSION = "1.37.0"
SECRETS_DIR = "/var/run/secrets/secretsboot"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(EXAMPLE)


def pod_spec(*names: str, command: list[str] | None = None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = []
    for n in names:
        c: dict[str, Any] = {"name": n, "image": f"example/{n}:1.2.3"}
        if command:
            c["command"] = list(command)
        containers.append(c)
    return {"containers": containers}


def workload(
    kind: str,
    name: str,
    *,
    namespace: str | None = "backend-dev",
    annotations: dict[str, str] | None = None,
    command: list[str] | None = None,
    containers: tuple[str, ...] = ("app", "sidecar"),
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    template: dict[str, Any] = {
        "metadata": {"labels": {"app": name}},
        "spec": pod_spec(*containers, command=command),
    }
    if annotations:
        template["metadata"]["annotations"] = dict(annotations)
    if kind in ("Job", "CronJob"):
        template["spec"]["restartPolicy"] = "OnFailure"
    selector = {"matchLabels": {"app": name}}
    if kind == "Pod":
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {**meta, **template["metadata"]},
            "spec": template["spec"],
        }
    if kind == "CronJob":
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": meta,
            "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": template}}},
        }
    if kind == "Job":
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": meta,
            "spec": {"template": template},
        }
    body: dict[str, Any] = {"selector": selector, "template": template}
    if kind == "StatefulSet":
        body["serviceName"] = name
    api = "v1" if kind == "ReplicationController" else "apps/v1"
    if kind == "ReplicationController":
        body["selector"] = {"app": name}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": body}


def pod_of(obj: dict[str, Any]) -> dict[str, Any]:
    node: Any = obj
    for part in WORKLOAD_KINDS[obj["kind"]]:
        node = node[part]
    return node


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    matches = [i for i in items if i.get("name") == name]
    assert len(matches) == 1, f"{name}: {len(matches)} entries"
    return matches[0]


OTHERS = [
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "delivery"},
        "spec": {"selector": {"app": "delivery"}, "ports": [{"port": 80, "targetPort": 8080}]},
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"a": "1", "multi": "line one\nline two\n"},
    },
    {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "other"},
        "spec": {"provider": "azure", "parameters": {}},
    },
]


def stream() -> list[dict[str, Any]]:
    """A realistic input: every kind, plus objects inject must not touch."""
    docs: list[dict[str, Any]] = [copy.deepcopy(OTHERS[0])]
    docs.append(workload("Deployment", "delivery", command=["dotnet", "Delivery.dll"]))
    docs.append(workload("StatefulSet", "package"))
    docs.append(
        workload("DaemonSet", "agent", annotations={"secretsboot.dev/service": "ingestion"})
    )
    docs.append(copy.deepcopy(OTHERS[1]))
    docs.append(
        workload("Job", "ingestion-backfill", annotations={"secretsboot.dev/service": "ingestion"})
    )
    docs.append(workload("CronJob", "dronescheduler"))
    docs.append(workload("Pod", "workflow"))
    docs.append(workload("ReplicaSet", "unrelated"))
    docs.append(copy.deepcopy(OTHERS[2]))
    return docs


# ----------------------------------------------------------------------------- per kind


@pytest.mark.parametrize("kind", sorted(WORKLOAD_KINDS))
def test_every_workload_kind_gets_the_init_container(spec: Spec, kind: str) -> None:
    obj = workload(kind, "package")
    result = inject_documents([obj], spec)
    assert [o.action for o in result.outcomes] == ["injected"]
    out = result.documents[0]
    pod = pod_of(out)
    fetch = by_name(pod["spec"]["initContainers"], "secretsboot-fetch")
    assert fetch["image"] == DEFAULT_IMAGE == f"ghcr.io/secretsboot/secretsboot:{__version__}"
    assert fetch["args"] == list(FETCH_ARGS)
    assert fetch["args"][0] == "fetch"
    ctx = fetch["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctx["runAsUser"] != 0
    assert set(fetch["resources"]) == {"requests", "limits"}
    vol = by_name(pod["spec"]["volumes"], "secretsboot-secrets")
    assert vol["emptyDir"]["medium"] == "Memory"
    cfg = by_name(pod["spec"]["volumes"], "secretsboot-config")
    assert cfg["configMap"]["name"] == "secretsboot-package"
    for container in pod["spec"]["containers"]:  # every app container, read-only
        mount = by_name(container["volumeMounts"], "secretsboot-secrets")
        assert mount == {"name": "secretsboot-secrets", "mountPath": SECRETS_DIR, "readOnly": True}
    assert pod["spec"]["serviceAccountName"] == "package"
    assert pod["metadata"]["annotations"]["secretsboot.dev/service"] == "package"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    # strict schema validation of the whole object
    kubernetes_validate.validate(out, K8S_VERSION, strict=True)


def test_init_container_runs_first_and_existing_ones_keep_their_order(spec: Spec) -> None:
    obj = workload("Deployment", "delivery")
    obj["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "migrate", "image": "example/migrate:1.0.0"}
    ]
    out = inject_documents([obj], spec).documents[0]
    names = [c["name"] for c in out["spec"]["template"]["spec"]["initContainers"]]
    assert names == ["secretsboot-fetch", "migrate"]
    # the existing init container is an app container too: it may need the secrets
    migrate = out["spec"]["template"]["spec"]["initContainers"][1]
    assert migrate == {"name": "migrate", "image": "example/migrate:1.0.0"}


# ----------------------------------------------------------------------------- idempotence


def test_injecting_twice_equals_once_byte_for_byte(spec: Spec) -> None:
    text = dump_documents(stream())
    once, _ = inject_text(text, spec)
    twice, _ = inject_text(once, spec)
    assert twice == once
    assert once != text


def test_idempotent_with_config_and_forced_service(spec: Spec) -> None:
    text = dump_documents([workload("Deployment", "web"), copy.deepcopy(OTHERS[0])])
    once, _ = inject_text(text, spec, service="ingestion", with_config=True)
    twice, _ = inject_text(once, spec, service="ingestion", with_config=True)
    assert twice == once
    docs = load_documents(once)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Deployment", "Service"]
    assert docs[0]["metadata"] == {
        "name": "secretsboot-ingestion",
        "namespace": "backend-dev",
        "labels": {
            "app.kubernetes.io/managed-by": "secretsboot",
            "secretsboot.dev/service": "ingestion",
        },
    }
    fetch_cfg = yaml.safe_load(docs[0]["data"]["fetch.yaml"])
    assert fetch_cfg["kind"] == "FetchConfig" and fetch_cfg["service"] == "ingestion"
    assert fetch_cfg["vault"]["auth"]["method"] == "kubernetes"


def test_untouched_objects_are_identical_and_order_is_kept(spec: Spec) -> None:
    docs = stream()
    before = copy.deepcopy(docs)
    result = inject_documents(docs, spec)
    assert docs == before, "the input must not be modified"
    out = result.documents
    assert [(d["kind"], d["metadata"]["name"]) for d in out] == [
        (d["kind"], d["metadata"]["name"]) for d in before
    ]
    for i, doc in enumerate(before):
        if doc["kind"] in ("Service", "ConfigMap", "SecretProviderClass"):
            assert out[i] == doc
    unrelated = next(d for d in out if d["metadata"]["name"] == "unrelated")
    assert unrelated == next(d for d in before if d["metadata"]["name"] == "unrelated")
    # the untouched objects also survive the text round trip
    reloaded = load_documents(dump_documents(out))
    assert reloaded == out


def test_only_pod_fields_change(spec: Spec) -> None:
    obj = workload("Deployment", "package")
    obj["spec"]["replicas"] = 3
    obj["metadata"]["labels"] = {"team": "x"}
    out = inject_documents([obj], spec).documents[0]
    assert out["metadata"] == obj["metadata"]
    assert out["spec"]["replicas"] == 3
    assert out["spec"]["selector"] == obj["spec"]["selector"]
    assert out["spec"]["template"]["metadata"]["labels"]["app"] == "package"


def test_whole_stream_validates_strictly(spec: Spec) -> None:
    result = inject_documents(stream(), spec)
    for doc in result.documents:
        if doc["kind"] == "SecretProviderClass":
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_can_fail() -> None:
    """Guard for the test above: the validator really rejects a bad field."""
    bad = workload("Deployment", "x")
    bad["spec"]["template"]["spec"]["containers"][0]["readOnly"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


# ----------------------------------------------------------------------------- identities


def test_workload_identity_label_on_pod_template_never_the_service_account(spec: Spec) -> None:
    sa = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "delivery", "namespace": "backend-dev"},
    }
    docs = [sa, workload("Deployment", "delivery")]
    out = inject_documents(docs, spec).documents
    assert out[0] == sa
    labels = out[1]["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"
    assert "azure.workload.identity/use" not in out[1]["metadata"].get("labels", {})


def test_pod_identity_gets_aadpodidbinding(spec: Spec) -> None:
    out = inject_documents([workload("Deployment", "dronescheduler")], spec).documents[0]
    labels = out["spec"]["template"]["metadata"]["labels"]
    assert labels["aadpodidbinding"] == "dronescheduler"
    assert "azure.workload.identity/use" not in labels


def test_vault_kubernetes_auth_gets_a_token_in_the_init_container_only(spec: Spec) -> None:
    out = inject_documents([workload("Deployment", "ingestion")], spec).documents[0]
    pod = out["spec"]["template"]
    assert "labels" not in pod["metadata"] or (
        "azure.workload.identity/use" not in pod["metadata"]["labels"]
        and "aadpodidbinding" not in pod["metadata"]["labels"]
    )
    token = by_name(pod["spec"]["volumes"], "secretsboot-token")
    sources = token["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["expirationSeconds"] == 600
    fetch = by_name(pod["spec"]["initContainers"], "secretsboot-fetch")
    mount = by_name(fetch["volumeMounts"], "secretsboot-token")
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    assert mount["readOnly"] is True
    for container in pod["spec"]["containers"]:
        assert all(m["name"] != "secretsboot-token" for m in container["volumeMounts"])


def test_k8s_fallback_also_needs_the_token(spec: Spec) -> None:
    out = inject_documents([workload("Deployment", "package")], spec).documents[0]
    assert by_name(out["spec"]["template"]["spec"]["volumes"], "secretsboot-token")


def test_keyvault_only_service_gets_no_api_token(spec: Spec) -> None:
    out = inject_documents([workload("Deployment", "dronescheduler")], spec).documents[0]
    names = [v["name"] for v in out["spec"]["template"]["spec"]["volumes"]]
    assert names == ["secretsboot-secrets", "secretsboot-config"]


def test_csi_service_gets_the_csi_volume_not_the_init_container(spec: Spec) -> None:
    out = inject_documents([workload("Deployment", "workflow")], spec).documents[0]
    pod = out["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    vol = by_name(pod["volumes"], "secretsboot-secrets")
    assert vol["csi"] == {
        "driver": "secrets-store.csi.k8s.io",
        "readOnly": True,
        "volumeAttributes": {"secretProviderClass": "secretsboot-workflow"},
    }
    assert all(v["name"] != "secretsboot-config" for v in pod["volumes"])
    kubernetes_validate.validate(out, K8S_VERSION, strict=True)


def test_init_container_runs_as_the_apps_user(spec: Spec) -> None:
    obj = workload("Deployment", "package")
    obj["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 1500, "runAsGroup": 1600}
    result = inject_documents([obj], spec)
    fetch = result.documents[0]["spec"]["template"]["spec"]["initContainers"][0]
    assert (fetch["securityContext"]["runAsUser"], fetch["securityContext"]["runAsGroup"]) == (
        1500,
        1600,
    )
    assert result.outcomes[0].warnings == ()


def test_root_app_still_gets_a_non_root_init_container_and_a_warning(spec: Spec) -> None:
    obj = workload("Deployment", "package")
    result = inject_documents([obj], spec)
    fetch = result.documents[0]["spec"]["template"]["spec"]["initContainers"][0]
    assert fetch["securityContext"]["runAsUser"] == 10001
    assert any("runAsUser" in w for w in result.outcomes[0].warnings)
    obj["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 0}
    fetch = inject_documents([obj], spec).documents[0]["spec"]["template"]["spec"][
        "initContainers"
    ][0]
    assert fetch["securityContext"]["runAsUser"] == 10001


# ----------------------------------------------------------------------------- env secrets


def test_env_secret_wraps_a_known_command_once(spec: Spec) -> None:
    obj = workload(
        "Deployment", "delivery", command=["dotnet", "Delivery.dll"], containers=("app",)
    )
    once = inject_documents([obj], spec)
    app = once.documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert app["command"] == [*RUN_PREFIX, "dotnet", "Delivery.dll"]
    assert any("APPLICATIONINSIGHTS_CONNECTION_STRING" in w for w in once.outcomes[0].warnings)
    # `secretsboot run` fetches in the app container: it reads the same config, read-only
    config_mount = by_name(app["volumeMounts"], "secretsboot-config")
    assert config_mount == {
        "name": "secretsboot-config",
        "mountPath": "/etc/secretsboot",
        "readOnly": True,
    }
    twice = inject_documents(once.documents, spec)
    assert (
        twice.documents[0]["spec"]["template"]["spec"]["containers"][0]["command"]
        == (app["command"])
    )


def test_env_secret_without_known_command_warns(spec: Spec) -> None:
    result = inject_documents([workload("Deployment", "delivery", containers=("app",))], spec)
    app = result.documents[0]["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in app
    (warning,) = [w for w in result.outcomes[0].warnings if "environment" in w]
    assert "command is not in the manifest" in warning
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in warning


# ----------------------------------------------------------------------------- matching


def test_matching_rules(spec: Spec) -> None:
    docs = [
        workload("Deployment", "package"),  # by name
        workload("Deployment", "web", annotations={"secretsboot.dev/service": "ingestion"}),
        workload("Deployment", "web2"),  # nothing matches
        workload("Deployment", "web3", annotations={"secretsboot.dev/service": "nope"}),
        workload("Deployment", "delivery", namespace="other"),  # wrong namespace
        workload("Deployment", "workflow", namespace=None),  # no namespace: fine
    ]
    result = inject_documents(docs, spec)
    got = [(o.ref, o.action, o.service) for o in result.outcomes]
    assert got == [
        ("Deployment/backend-dev/package", "injected", "package"),
        ("Deployment/backend-dev/web", "injected", "ingestion"),
        ("Deployment/backend-dev/web2", "skipped", None),
        ("Deployment/backend-dev/web3", "skipped", None),
        ("Deployment/other/delivery", "skipped", "delivery"),
        ("Deployment/workflow", "injected", "workflow"),
    ]
    reasons = {o.ref: o.reason for o in result.outcomes}
    assert "no service matches" in reasons["Deployment/backend-dev/web2"]
    assert "not a service of the spec" in reasons["Deployment/backend-dev/web3"]
    assert "namespace other" in reasons["Deployment/other/delivery"]
    assert result.documents[2] == docs[2]


def test_forced_service_respects_annotations_for_another(spec: Spec) -> None:
    docs = [
        workload("Deployment", "web"),
        workload("Deployment", "api", annotations={"secretsboot.dev/service": "package"}),
    ]
    result = inject_documents(docs, spec, service="delivery")
    assert [(o.action, o.service) for o in result.outcomes] == [
        ("injected", "delivery"),
        ("skipped", None),
    ]
    assert "not --service delivery" in result.outcomes[1].reason


def test_unknown_forced_service_is_a_spec_error(spec: Spec) -> None:
    with pytest.raises(SpecError, match=r"no service named 'deliver'.*did you mean 'delivery'"):
        inject_documents([], spec, service="deliver")


def test_kind_list_items_are_injected(spec: Spec) -> None:
    lst = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [workload("Deployment", "package"), copy.deepcopy(OTHERS[0])],
    }
    result = inject_documents([lst], spec)
    assert [o.ref for o in result.injected] == ["Deployment/backend-dev/package"]
    assert result.documents[0]["items"][1] == OTHERS[0]


def test_pod_without_containers_is_bad_input(spec: Spec) -> None:
    obj = workload("Deployment", "package")
    obj["spec"]["template"]["spec"]["containers"] = []
    with pytest.raises(BadInputError, match="Deployment/backend-dev/package: the pod has no"):
        inject_documents([obj], spec)


def test_bad_yaml_names_source_and_line() -> None:
    with pytest.raises(BadInputError, match=r"app\.yaml:4: invalid YAML"):
        load_documents("a: 1\nb: [1,\nc: 2\n", "app.yaml")
    with pytest.raises(BadInputError, match=r"app\.yaml: document 2 is not a Kubernetes object"):
        load_documents("a: 1\n---\n- x\n", "app.yaml")


# ----------------------------------------------------------------------------- the CLI


def test_cli_files_and_stdin_print_yaml_and_summary(
    spec: Spec, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "app.yaml"
    src.write_text("# a comment\n" + dump_documents(stream()), encoding="utf-8")
    assert main(["inject", "-f", str(EXAMPLE), str(src)]) == 0
    out, err = capsys.readouterr()
    expected, result = inject_text(src.read_text(encoding="utf-8"), spec)
    assert out == expected
    assert "injected Deployment/backend-dev/delivery (service delivery)" in err
    assert "skipped ReplicaSet/backend-dev/unrelated: no service matches" in err
    assert f"{len(result.injected)} injected, 1 skipped" in err
    # stdin, and the output of the first run is a fixed point
    monkeypatch.setattr("sys.stdin", io.StringIO(out))
    assert main(["inject", "-f", str(EXAMPLE), "-"]) == 0
    again, _ = capsys.readouterr()
    assert again == out


def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", str(EXAMPLE), str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n", encoding="utf-8")
    assert main(["inject", "-f", str(EXAMPLE), str(bad)]) == 2
    assert "bad.yaml:2: invalid YAML" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text(dump_documents([workload("Deployment", "x")]), encoding="utf-8")
    assert main(["inject", "-f", str(EXAMPLE), "--service", "nope", str(good)]) == 2
    assert "no service named 'nope'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the audit agrees


def test_injected_output_audits_as_secretsboot_init_without_high_findings(spec: Spec) -> None:
    from secretsboot.audit.engine import run
    from secretsboot.audit.loader import load_text
    from secretsboot.audit.model import Severity

    docs = stream()
    for doc in docs:  # a hardened app, so the audit judges what inject adds
        if doc["kind"] in WORKLOAD_KINDS:
            pod = pod_of(doc)["spec"]
            pod["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000}
            for c in pod["containers"]:
                c["securityContext"] = {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                }
    text, result = inject_text(dump_documents(docs), spec, with_config=True)
    audit = run(load_text(text, "injected.yaml"))
    assert not audit.errors
    approaches = {w.ref: {a.id for a in w.approaches} for w in audit.workloads}
    for outcome in result.injected:
        if outcome.service == "workflow":  # csi delivery: no init container
            assert "keyvault-csi" in approaches[outcome.ref], approaches[outcome.ref]
            continue
        assert "secretsboot-init" in approaches[outcome.ref], (outcome.ref, approaches)
    high = [
        (f.rule_id, f.evidence.object, f.message)
        for f in audit.findings
        if f.severity >= Severity.HIGH
    ]
    assert high == []
    # and nothing about the init container itself
    init_findings = [f for f in audit.findings if "initContainers" in f.evidence.path]
    assert init_findings == [], [(f.rule_id, f.evidence.path) for f in init_findings]


def test_inject_pipes_into_audit(tmp_path: Path) -> None:
    """`secretsboot inject ... | secretsboot audit -`: the pipeline the README shows."""
    import subprocess
    import sys

    src = tmp_path / "app.yaml"
    hardened = workload("Deployment", "package", containers=("app",))
    hardened["spec"]["template"]["spec"]["securityContext"] = {"runAsUser": 1000}
    hardened["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    src.write_text(dump_documents([hardened]), encoding="utf-8")
    cmd = [sys.executable, "-m", "secretsboot"]
    injected = subprocess.run(
        [*cmd, "inject", "-f", str(EXAMPLE), str(src)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert injected.returncode == 0, injected.stderr
    audited = subprocess.run(
        [*cmd, "audit", "-", "-o", "json"],
        input=injected.stdout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert '"secretsboot-init"' in audited.stdout


# ----------------------------------------------------------------------------- properties


_names = st.sampled_from(["delivery", "package", "workflow", "ingestion", "dronescheduler", "web"])
_extra_volume = st.fixed_dictionaries(
    {"name": st.sampled_from(["data", "secretsboot-secrets"]), "emptyDir": st.just({})}
)


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(WORKLOAD_KINDS)))
    name = draw(_names)
    annotated = draw(st.one_of(st.none(), _names))
    containers = tuple(
        draw(
            st.lists(st.sampled_from(["app", "proxy", "log"]), min_size=1, max_size=3, unique=True)
        )
    )
    command = draw(st.one_of(st.none(), st.just(["serve", "--port", "8080"])))
    obj = workload(
        kind,
        name,
        annotations={"secretsboot.dev/service": annotated} if annotated else None,
        command=command,
        containers=containers,
    )
    pod = pod_of(obj)["spec"]
    if draw(st.booleans()):
        pod["volumes"] = [draw(_extra_volume)]
    if draw(st.booleans()):
        pod["securityContext"] = {"runAsUser": draw(st.integers(0, 70000))}
    if draw(st.booleans()):
        pod["initContainers"] = [{"name": "migrate", "image": "example/migrate:1.0.0"}]
    return obj


_SPEC = load_spec(EXAMPLE)  # hypothesis runs each example in one test call: load once


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(workloads(), min_size=1, max_size=4),
    forced=st.one_of(st.none(), st.sampled_from(["package", "ingestion", "workflow"])),
)
def test_property_inject_is_idempotent_and_touches_only_pods(
    docs: list[dict[str, Any]], forced: str | None
) -> None:
    spec = _SPEC
    once_text, once = inject_text(dump_documents(docs), spec, service=forced)
    twice_text, twice = inject_text(once_text, spec, service=forced)
    assert twice_text == once_text
    assert [o.action for o in twice.outcomes] == [o.action for o in once.outcomes]
    for before, after in zip(docs, load_documents(once_text), strict=True):
        assert after["metadata"] == before["metadata"] or after["kind"] == "Pod"
        if pod_of(after) is not after:
            outside = {
                k: v for k, v in after["spec"].items() if k not in ("template", "jobTemplate")
            }
            assert outside == {
                k: v for k, v in before["spec"].items() if k not in ("template", "jobTemplate")
            }
        app_names = [c["name"] for c in pod_of(after)["spec"]["containers"]]
        assert app_names == [c["name"] for c in pod_of(before)["spec"]["containers"]]


def test_migration_from_pod_identity_keeps_the_old_label_and_says_so(spec: Spec) -> None:
    obj = workload("Deployment", "delivery")
    obj["spec"]["selector"]["matchLabels"]["aadpodidbinding"] = "delivery"
    obj["spec"]["template"]["metadata"]["labels"]["aadpodidbinding"] = "delivery"
    result = inject_documents([obj], spec)
    labels = result.documents[0]["spec"]["template"]["metadata"]["labels"]
    assert labels["aadpodidbinding"] == "delivery"  # the selector still matches
    assert labels["azure.workload.identity/use"] == "true"
    assert any("aadpodidbinding" in w for w in result.outcomes[0].warnings)
    kubernetes_validate.validate(result.documents[0], K8S_VERSION, strict=True)


def test_vault_jwt_services_get_a_token_with_vaults_audience() -> None:
    from secretsboot.contract import VAULT_JWT_TOKEN_PATH, FetchConfig
    from secretsboot.spec import load_spec_text

    text = (
        EXAMPLE.read_text()
        .replace(
            "kubernetes:\n  context:",
            "    jwt:\n      mount: jwt\n      audience: vault-dd\nkubernetes:\n  context:",
        )
        .replace("    vaultAuth: kubernetes\n", "    vaultAuth: jwt\n")
    )
    jwt_spec = load_spec_text(text, "jwt.yaml")
    result = inject_documents([workload("Deployment", "ingestion")], jwt_spec)
    pod = pod_of(result.documents[0])["spec"]
    token = by_name(pod["volumes"], "secretsboot-token")
    sources = [
        s["serviceAccountToken"]
        for s in token["projected"]["sources"]
        if "serviceAccountToken" in s
    ]
    assert {"path": "vault-token", "audience": "vault-dd", "expirationSeconds": 600} in sources
    mount = by_name(
        by_name(pod["initContainers"], "secretsboot-fetch")["volumeMounts"], "secretsboot-token"
    )
    assert f"{mount['mountPath']}/vault-token" == VAULT_JWT_TOKEN_PATH
    config = FetchConfig.from_spec(jwt_spec, "ingestion")
    assert config.vault is not None
    assert config.vault.auth.token_path == VAULT_JWT_TOKEN_PATH
    # kubernetes auth keeps the API-server token: no Vault-audience token is projected
    plain = pod_of(
        inject_documents([workload("Deployment", "ingestion")], load_spec(EXAMPLE)).documents[0]
    )
    plain_sources = by_name(plain["spec"]["volumes"], "secretsboot-token")["projected"]["sources"]
    assert all(s.get("serviceAccountToken", {}).get("path") != "vault-token" for s in plain_sources)
