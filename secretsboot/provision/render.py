"""Plans as text (terraform-like) and JSON. Values are names and fingerprints only.

::

    azure
      service delivery
        + managed-identity rg-dd/id-delivery
            location: "eastus2"
    ...
    Plan: 12 to create, 1 to update, 0 to delete, 30 unchanged.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from secretsboot.provision.model import SYSTEM_ORDER, Action, Change, FieldDiff, Plan

_SIGN = {Action.CREATE: "+", Action.UPDATE: "~", Action.DELETE: "-", Action.NOOP: " "}


def render_text(plan: Plan, *, show_noop: bool = False, color: bool = False) -> str:
    """The plan for people: per system, per service, one line per object, its field diffs."""
    lines: list[str] = []
    for system in SYSTEM_ORDER:
        changes = [c for c in plan.changes if c.key.system == system.value]
        shown = [c for c in changes if show_noop or c.action is not Action.NOOP]
        if not shown:
            continue
        lines.append(_paint(system.value, "bold", color))
        by_service: dict[str, list[Change]] = {}
        for c in shown:
            by_service.setdefault(", ".join(c.services) or "(shared)", []).append(c)
        for service in sorted(by_service):
            lines.append(f"  service {service}")
            for c in by_service[service]:
                head = f"    {_SIGN[c.action]} {c.key.kind} {c.key.name}"
                if c.action is Action.NOOP:
                    head += "  (no changes)"
                lines.append(_paint(head, _COLOR[c.action], color))
                if c.action in (Action.CREATE, Action.UPDATE):
                    for d in c.diffs:
                        lines.extend(_field_lines(d))
                    extra = _extra(c)
                    if extra:
                        lines.append(f"        {extra}")
    if plan.notes:
        lines.append("")
        for n in plan.notes:
            lines.append(f"{n.level}: [{n.service}] {n.message}")
            if n.detail:
                lines.extend(f"    {line}" for line in n.detail.splitlines())
    counts = plan.counts()
    lines.append("")
    if plan.has_changes:
        lines.append(
            f"Plan: {counts['create']} to create, {counts['update']} to update, "
            f"{counts['delete']} to delete, {counts['no-op']} unchanged."
        )
    else:
        lines.append(f"No changes. {counts['no-op']} objects match the spec.")
    if plan.unmanaged_extra:
        lines.append(
            f"{plan.unmanaged_extra} object(s) managed by this spec are no longer in it; "
            "--prune deletes them."
        )
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    doc: dict[str, Any] = plan.to_json()
    doc["hasChanges"] = plan.has_changes
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


_COLOR = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.NOOP: "dim",
}


def _paint(text: str, style: str, color: bool) -> str:
    if not color:
        return text
    from rich.markup import escape

    return f"[{style}]{escape(text)}[/{style}]"


def _field_lines(d: FieldDiff) -> list[str]:
    """One line per field; multi-line text as a block (create) or a line diff (update)."""
    pad = "        "
    after, before = d.after, d.before
    multiline = isinstance(after, str) and "\n" in after.rstrip("\n")
    if not multiline:
        return [f"{pad}{d}"]
    assert isinstance(after, str)  # noqa: S101 - checked above
    if not isinstance(before, str):
        return [f"{pad}{d.path}: <<EOT", *(f"{pad}  {x}" for x in after.splitlines()), f"{pad}EOT"]
    delta = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
    body = [x for x in delta if not x.startswith(("---", "+++"))]
    return [f"{pad}{d.path}: (text changed)", *(f"{pad}  {x}" for x in body)]


def _extra(change: Change) -> str:
    if change.desired is None:
        return ""
    extra = change.desired.extra
    if change.key.kind == "role-assignment":
        return f"(role {extra.get('role')}, assignment name {extra.get('assignment')})"
    if change.key.kind == "Secret" and change.desired.secrets:
        return "(values synced from the primary source; shown as fingerprints)"
    return ""
