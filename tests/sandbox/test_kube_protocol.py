"""The Kubernetes fake's wire formats without a server: protobuf request bodies,
Tables, and the strategic-merge directives kubectl sends."""

from __future__ import annotations

from typing import Any

import pytest

from secretsboot.sandbox.kube import ApiError
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.bodies import as_metadata
from secretsboot.sandbox.kube.patches import strategic_merge_patch
from secretsboot.sandbox.kube.protobuf import MAGIC, decode
from secretsboot.sandbox.kube.tables import human_duration


# A minimal protobuf encoder, enough to build what Go's generated Marshal writes.
def _varint(n: int) -> bytes:
    out = b""
    n &= (1 << 64) - 1
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def _f(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return MAGIC + _f(1, _f(1, api_version) + _f(2, kind)) + _f(2, raw) + _f(3, "") + _f(4, "")


def _meta(name: str, **labels: str) -> bytes:
    # Go writes every non-pointer field, empty or not, and an empty creationTimestamp
    meta = b"".join(_f(n, name if n == 1 else "") for n in range(1, 7)) + _f(7, 0) + _f(8, b"")
    for key, value in labels.items():
        meta += _f(11, _f(1, key) + _f(2, value))
    return meta


def test_protobuf_deployment_keeps_pointer_zeroes_and_drops_empty_values() -> None:
    container = _f(1, "app") + _f(2, "app:1") + _f(5, "") + _f(8, b"") + _f(16, 0)
    container += _f(7, _f(1, "A") + _f(2, "1"))
    container += _f(9, _f(1, "secrets") + _f(2, 1) + _f(3, "/secrets"))
    volume = _f(1, "secrets") + _f(2, _f(2, _f(1, "Memory")))  # inline VolumeSource.emptyDir
    pod_spec = _f(1, volume) + _f(2, container) + _f(3, "") + _f(21, 0)
    template = _f(1, _meta("", app="web")) + _f(2, pod_spec)
    max_surge = _f(1, 1) + _f(3, "25%")  # IntOrString, the string form
    spec = (
        _f(1, 0)  # replicas: a pointer, so 0 is kept
        + _f(2, _f(1, _f(1, "app") + _f(2, "web")))
        + _f(3, template)
        + _f(4, _f(1, "RollingUpdate") + _f(2, _f(2, max_surge)))
        + _f(5, 0)
    )
    body = _envelope("apps/v1", "Deployment", _f(1, _meta("web")) + _f(2, spec) + _f(3, b""))
    assert decode(body) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "volumes": [{"name": "secrets", "emptyDir": {"medium": "Memory"}}],
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "resources": {},
                            "env": [{"name": "A", "value": "1"}],
                            "volumeMounts": [
                                {"name": "secrets", "readOnly": True, "mountPath": "/secrets"}
                            ],
                        }
                    ],
                    "automountServiceAccountToken": False,
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
        },
        "status": {},
    }


def test_protobuf_secret_data_is_base64_and_repeated_empty_strings_stay() -> None:
    secret = _envelope(
        "v1", "Secret", _f(1, _meta("db")) + _f(2, _f(1, "k") + _f(2, b"\x00\xff")) + _f(3, "")
    )
    assert decode(secret)["data"] == {"k": "AP8="}
    rule = _f(1, "get") + _f(2, "") + _f(3, "secrets")  # apiGroups [""]: the core group
    role = _envelope("rbac.authorization.k8s.io/v1", "Role", _f(1, _meta("r")) + _f(2, rule))
    assert decode(role)["rules"] == [
        {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_envelope("v1", "Secret", _f(1, _meta("db")) + _f(99, "x")), "unknown field 99 of Secret"),
        (_envelope("batch/v1", "Job", b""), "protobuf batch/v1/Job"),
    ],
)
def test_protobuf_unknown_is_a_clear_415(body: bytes, message: str) -> None:
    with pytest.raises(ApiError) as err:
        decode(body)
    assert (err.value.code, err.value.reason) == (415, "UnsupportedMediaType")
    assert message in err.value.message


def test_protobuf_garbage_is_400() -> None:
    for body in (b"not protobuf", MAGIC + b"\x0a\xff"):
        with pytest.raises(ApiError) as err:
            decode(body)
        assert err.value.code == 400


def _secret_list() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "SecretList",
        "metadata": {"resourceVersion": "7"},
        "items": [
            {
                "metadata": {"name": "db", "creationTimestamp": "2020-01-01T00:00:00Z"},
                "type": "Opaque",
                "data": {"a": "", "b": ""},
            }
        ],
    }


def test_accept_header_negotiation() -> None:
    accept = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    table = as_metadata(accept, _secret_list(), many=True)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Type", "Data", "Age"]
    assert table["rows"][0]["cells"][:3] == ["db", "Opaque", 2]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    # a protobuf range is passed over for the JSON one after it
    plain = as_metadata(
        "application/vnd.kubernetes.protobuf, application/json", {"a": 1}, many=False
    )
    assert plain == {"a": 1}
    with pytest.raises(ApiError) as err:
        as_metadata("application/json;as=Bogus;v=v1;g=meta.k8s.io", _secret_list(), many=True)
    assert err.value.code == 406


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-5, "<invalid>"), (0, "0s"), (119, "119s"), (150, "2m30s"), (600, "10m"),
     (3 * 3600 + 60, "3h1m"), (30 * 3600, "30h"), (50 * 3600, "2d2h"), (400 * 86400, "400d"),
     (3 * 365 * 86400 + 86400, "3y1d")],
)  # fmt: skip
def test_human_duration(seconds: int, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_strategic_merge_directives_kubectl_sends() -> None:
    live = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]},
                        {"name": "b", "image": "b:1"},
                    ],
                    "volumes": [{"name": "v", "secret": {"secretName": "s"}}],
                }
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        }
    }
    patch = {
        "spec": {
            "$retainKeys": ["strategy", "template"],
            "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [{"name": "a", "ports": [{"containerPort": 81}]}],
                    "volumes": [
                        {
                            "name": "v",
                            "$retainKeys": ["name", "configMap"],
                            "configMap": {"name": "c"},
                        }
                    ],
                }
            },
        }
    }
    out = strategic_merge_patch(res.lookup("deployments"), live, patch)
    spec = out["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["b", "a"]
    assert spec["containers"][1]["ports"] == [{"containerPort": 80}, {"containerPort": 81}]
    assert spec["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    with pytest.raises(ApiError) as err:
        strategic_merge_patch(
            res.lookup("pods"), {}, {"spec": {"containers": [{"image": "no-name"}]}}
        )
    assert err.value.code == 400
