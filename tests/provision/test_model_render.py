"""Diffing and rendering plans: pure."""

from __future__ import annotations

import json

import pytest

from secretsboot.provision.model import (
    ANY_VALUE,
    Action,
    Desired,
    FieldDiff,
    Note,
    Observed,
    Ownership,
    Plan,
    ResourceKey,
    diff,
    diff_one,
    field_diffs,
    join_path,
)
from secretsboot.provision.render import render_json, render_text
from secretsboot.secret import SecretValue

SA = ResourceKey("kubernetes", "ServiceAccount", "ns/app")


def want(body: dict[str, object], key: ResourceKey = SA, rank: int = 1) -> Desired:
    return Desired(key, body, ("app",), rank=rank)


@pytest.mark.parametrize(
    ("desired", "observed", "action", "paths"),
    [
        ({"a": 1}, None, Action.CREATE, ["a"]),
        ({"a": 1}, {"a": 1, "extra": 2}, Action.NOOP, []),
        ({"a": 1}, {"a": 2}, Action.UPDATE, ["a"]),
        ({"m": {"x": "1", "y": "2"}}, {"m": {"x": "1"}}, Action.UPDATE, ["m.y"]),
        ({"l": ["b", "a"]}, {"l": ["a", "b"]}, Action.NOOP, []),  # order-insensitive lists
        ({"l": ["a"]}, {"l": ["a", "b"]}, Action.UPDATE, ["l"]),
        ({"d": {"k": ANY_VALUE}}, {"d": {"k": "sha256:x"}}, Action.NOOP, []),
        ({"d": {"k": ANY_VALUE}}, {"d": {}}, Action.UPDATE, ["d.k"]),
        ({}, {"whatever": 1}, Action.NOOP, []),
    ],
)
def test_diff_one(
    desired: dict[str, object],
    observed: dict[str, object] | None,
    action: Action,
    paths: list[str],
) -> None:
    have = Observed(SA, observed) if observed is not None else None
    change = diff_one(want(desired), have)
    assert change.action is action
    assert [d.path for d in change.diffs] == paths


def test_label_keys_with_dots_are_bracketed() -> None:
    assert join_path("metadata.labels", "app.kubernetes.io/name") == (
        'metadata.labels["app.kubernetes.io/name"]'
    )
    assert join_path("", "spec") == "spec"
    diffs = field_diffs({"metadata": {"labels": {"a.b/c": "x"}}}, {})
    assert str(diffs[0]) == 'metadata.labels["a.b/c"]: "x"'


def test_prune_deletes_only_created_objects_releases_adopted_and_only_when_asked() -> None:
    kept = ResourceKey("kubernetes", "Role", "ns/old")
    adopted = ResourceKey("kubernetes", "Secret", "ns/operators")
    unrecorded = ResourceKey("kubernetes", "Role", "ns/older")
    foreign = ResourceKey("kubernetes", "Role", "ns/theirs")
    observed = {
        SA: Observed(SA, {"a": 1}, managed=True, ownership=Ownership.CREATED),
        kept: Observed(kept, {}, managed=True, services=("old",), ownership=Ownership.CREATED),
        adopted: Observed(adopted, {}, managed=True, ownership=Ownership.ADOPTED),
        unrecorded: Observed(unrecorded, {}, managed=True),  # no record: never deleted
        foreign: Observed(foreign, {}, managed=False),
    }
    changes, extra = diff([want({"a": 1})], observed, prune=False)
    assert [c.action for c in changes] == [Action.NOOP]
    assert extra == 3
    changes, extra = diff([want({"a": 1})], observed, prune=True)
    assert sorted((str(c.key), c.action.value) for c in changes) == [
        ("kubernetes:Role/ns/old", "delete"),
        ("kubernetes:Role/ns/older", "release"),
        ("kubernetes:Secret/ns/operators", "release"),
        ("kubernetes:ServiceAccount/ns/app", "no-op"),
    ]
    assert extra == 0
    text = render_text(Plan(changes))
    assert "- Role ns/old  (created by secretsboot: deleted)" in text
    assert "/ Secret ns/operators  (adopted: released" in text
    assert text.rstrip().endswith("Plan: 0 to add, 0 to change, 1 to destroy, 2 to release.")
    changes, extra = diff(
        [want({"a": 1})], observed, prune=True, prune_filter=lambda o: "other" in o.services
    )
    assert all(c.action is not Action.DELETE for c in changes)
    assert extra == 0  # out of scope: neither deleted nor counted


def test_changes_sort_by_system_then_rank() -> None:
    ident = ResourceKey("azure", "managed-identity", "rg/id")
    pol = ResourceKey("vault", "policy", "p")
    ns = ResourceKey("kubernetes", "Namespace", "ns")
    changes, _ = diff(
        [want({}, pol, 0), want({}, SA, 1), want({}, ns, 0), want({}, ident, 0)], {}, prune=False
    )
    assert [str(c.key) for c in changes] == [str(ident), str(ns), str(SA), str(pol)]


def _plan() -> Plan:
    secret_key = ResourceKey("kubernetes", "Secret", "ns/db")
    value = SecretValue("CANARY-9d2c41")
    synced = Desired(
        secret_key,
        {"data": {"password": value.fingerprint}},
        ("app",),
        rank=1,
        secrets={"password": value},
    )
    policy_key = ResourceKey("vault", "policy", "secretsboot-x-app")
    policy = Desired(policy_key, {"policy": 'path "a" {\n}\npath "b" {\n}\n'}, ("app",), 0)
    changes, _ = diff(
        [want({"automountServiceAccountToken": False}), synced, policy],
        {
            SA: Observed(SA, {"automountServiceAccountToken": True}, managed=True),
            policy_key: Observed(policy_key, {"policy": 'path "a" {\n}\n'}, managed=True),
        },
        prune=False,
    )
    return Plan(changes, [Note("app", "warning", "deprecated thing", "do this instead")])


def test_render_text_is_terraform_like_and_shows_fingerprints_only() -> None:
    text = render_text(_plan())
    assert "kubernetes\n  service app\n" in text
    assert "    ~ ServiceAccount ns/app" in text
    assert "        automountServiceAccountToken: true -> false" in text
    assert "    + Secret ns/db" in text
    assert "sha256:" in text
    assert "CANARY" not in text
    assert (
        "        policy: (text changed)\n"
        "          @@ -2 +2,3 @@\n"
        "           }\n"
        '          +path "b" {\n' in text
    )
    assert "warning: [app] deprecated thing" in text
    assert text.rstrip().endswith("Plan: 1 to add, 2 to change, 0 to destroy.")


def test_render_text_no_changes() -> None:
    plan = Plan([diff_one(want({"a": 1}), Observed(SA, {"a": 1}))])
    assert not plan.has_changes
    assert "No changes. 1 objects match the spec." in render_text(plan)
    assert "ServiceAccount" not in render_text(plan)
    assert "(no changes)" in render_text(plan, show_noop=True)


def test_render_json_round_trips_without_values() -> None:
    text = render_json(_plan())
    assert "CANARY" not in text
    doc = json.loads(text)
    assert doc["hasChanges"] is True
    assert doc["summary"] == {"create": 1, "update": 2, "no-op": 0, "delete": 0, "release": 0}
    sa = next(c for c in doc["changes"] if c["kind"] == "ServiceAccount")
    assert sa["diffs"] == [{"path": "automountServiceAccountToken", "before": True, "after": False}]
    assert doc["notes"][0]["level"] == "warning"


def test_field_diff_text() -> None:
    assert str(FieldDiff("a", None, "x")) == 'a: "x"'
    assert str(FieldDiff("a", 1, None)) == "a: 1 -> (removed)"
    assert str(FieldDiff("a", ["x"], ["y"])) == 'a: ["x"] -> ["y"]'
