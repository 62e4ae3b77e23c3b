"""SB501-SB508: container privileges, host access, image provenance."""

from __future__ import annotations

import pytest
from _audit_case import deployment, rule_hits

HARDENED_SC = (
    "securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true, "
    "capabilities: {drop: [ALL]}}"
)


def one(sc: str = HARDENED_SC, image: str = "app:1.0", pod: str = "") -> str:
    return deployment(f"{pod}containers:\n  - name: app\n    image: {image}\n    {sc}\n")


CASES = [
    ("SB501 privileged", one("securityContext: {privileged: true}"), "SB501", ["high"]),
    ("SB501 hardened", one(), "SB501", []),
    ("SB502 unset", one("securityContext: {runAsNonRoot: true}"), "SB502", ["medium"]),
    ("SB502 true", one("securityContext: {allowPrivilegeEscalation: true}"), "SB502", ["medium"]),
    ("SB502 false", one(), "SB502", []),
    ("SB503 nothing set", one("securityContext: {}"), "SB503", ["medium"]),
    (
        "SB503 runAsUser 0",
        one("securityContext: {runAsNonRoot: true, runAsUser: 0}"),
        "SB503",
        ["medium"],
    ),
    (
        "SB503 pod-level runAsNonRoot",
        one("securityContext: {}", pod="securityContext: {runAsNonRoot: true}\n"),
        "SB503",
        [],
    ),
    (
        "SB503 container false overrides pod true",
        one(
            "securityContext: {runAsNonRoot: false}", pod="securityContext: {runAsNonRoot: true}\n"
        ),
        "SB503",
        ["medium"],
    ),
    ("SB503 non-zero runAsUser", one("securityContext: {runAsUser: 1000}"), "SB503", []),
    ("SB504 no drop", one("securityContext: {runAsNonRoot: true}"), "SB504", ["low"]),
    (
        "SB504 adds SYS_ADMIN",
        one("securityContext: {capabilities: {drop: [ALL], add: [SYS_ADMIN]}}"),
        "SB504",
        ["medium"],
    ),
    ("SB504 drop ALL", one(), "SB504", []),
    (
        "SB505 hostPath docker socket",
        one(pod="volumes: [{name: d, hostPath: {path: /var/run/docker.sock}}]\n"),
        "SB505",
        ["high"],
    ),
    (
        "SB505 hostPath data dir",
        one(pod="volumes: [{name: d, hostPath: {path: /data/cache}}]\n"),
        "SB505",
        ["medium"],
    ),
    ("SB505 emptyDir", one(pod="volumes: [{name: d, emptyDir: {}}]\n"), "SB505", []),
    ("SB506 hostNetwork", one(pod="hostNetwork: true\n"), "SB506", ["medium"]),
    (
        "SB506 hostPID and hostIPC",
        one(pod="hostPID: true\nhostIPC: true\n"),
        "SB506",
        ["medium", "medium"],
    ),
    ("SB506 hostNetwork false", one(pod="hostNetwork: false\n"), "SB506", []),
    ("SB508 latest", one(image="nginx:latest"), "SB508", ["low"]),
    ("SB508 no tag", one(image="nginx"), "SB508", ["low"]),
    ("SB508 registry port, no tag", one(image="localhost:5000/nginx"), "SB508", ["low"]),
    ("SB508 pinned tag", one(image="nginx:1.25.3"), "SB508", []),
    ("SB508 digest", one(image="nginx@sha256:0123abcd"), "SB508", []),
]


@pytest.mark.parametrize(
    ("text", "rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_pod_security(text: str, rule: str, expected: list[str]) -> None:
    assert [h.severity.label for h in rule_hits(text, rule)] == expected


TRUSTED_CASES = [
    ("no trusted list: rule off", "busybox:1.36", (), []),
    ("docker hub vs mcr", "busybox:1.36", ("mcr.microsoft.com",), ["medium"]),
    ("mcr image trusted", "mcr.microsoft.com/oss/nginx:1.25", ("mcr.microsoft.com",), []),
    ("glob registry", "myacr.azurecr.io/shop/api:1", ("*.azurecr.io",), []),
    ("path prefix", "myacr.azurecr.io/shop/api:1", ("myacr.azurecr.io/shop",), []),
    (
        "path prefix mismatch",
        "myacr.azurecr.io/other/api:1",
        ("myacr.azurecr.io/shop",),
        ["medium"],
    ),
    (
        "prefix is not a substring match",
        "myacr.azurecr.io/shopping/api:1",
        ("myacr.azurecr.io/shop",),
        ["medium"],
    ),
    ("docker.io library explicit", "nginx:1.25", ("docker.io",), []),
]


@pytest.mark.parametrize(
    ("image", "trusted", "expected"),
    [c[1:] for c in TRUSTED_CASES],
    ids=[c[0] for c in TRUSTED_CASES],
)
def test_sb507_trusted_registries(
    image: str, trusted: tuple[str, ...], expected: list[str]
) -> None:
    hits = rule_hits(one(image=image), "SB507", trusted_registries=trusted)
    assert [h.severity.label for h in hits] == expected
