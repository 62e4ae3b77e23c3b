"""Plans as text (terraform-like) and JSON. Values are names and fingerprints only.

::

    azure
      service delivery
        + managed-identity rg-dd/id-delivery
            location: "eastus2"
    ...
    Plan: 12 to add, 1 to change, 0 to destroy.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from secretsboot.provision.model import SYSTEM_ORDER, Action, Change, FieldDiff, Plan

_SIGN = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.RELEASE: "/",
    Action.NOOP: " ",
}


def render_text(plan: Plan, *, show_noop: bool = False, color: bool = False) -> str:
    """The plan for people: per system, per service, one line per object, its field diffs;
    the notes (failed checks first); one summary line."""
    lines: list[str] = []
    for system in SYSTEM_ORDER:
        shown = [
            c
            for c in plan.changes
            if c.key.system == system.value and (show_noop or c.action is not Action.NOOP)
        ]
        if shown:
            lines.append(_paint(system.value, "bold", color))
            lines.extend(_system_lines(shown, color))
    if plan.notes:
        lines.append("")
        for n in sorted(plan.notes, key=lambda n: _NOTE_ORDER.get(n.level, 9)):
            lines.append(f"{n.level}: [{n.service}] {n.message}")
            if n.detail:
                lines.extend(f"    {line}" for line in n.detail.splitlines())
    lines.append("")
    lines.append(summary(plan))
    if plan.unmanaged_extra:
        lines.append(
            f"{plan.unmanaged_extra} object(s) managed by this spec are no longer in it; "
            "--prune deletes those secretsboot created and releases those it adopted."
        )
    return "\n".join(lines) + "\n"


def summary(plan: Plan) -> str:
    """``Plan: 23 to add, 0 to change, 0 to destroy.`` (terraform's words), or no changes."""
    counts = plan.counts()
    if not plan.has_changes:
        return f"No changes. {counts['no-op']} objects match the spec."
    text = (
        f"Plan: {counts['create']} to add, {counts['update']} to change, "
        f"{counts['delete']} to destroy"
    )
    if counts["release"]:
        text += f", {counts['release']} to release"
    return text + "."


_NOTE_ORDER = {"error": 0, "action": 1, "warning": 2, "info": 3}


def _system_lines(shown: list[Change], color: bool) -> list[str]:
    lines: list[str] = []
    by_service: dict[str, list[Change]] = {}
    for c in shown:
        by_service.setdefault(", ".join(c.services) or "(shared)", []).append(c)
    for service in sorted(by_service):
        lines.append(f"  service {service}")
        for c in by_service[service]:
            head = f"    {_SIGN[c.action]} {c.key.kind} {c.key.name}{_owner_note(c)}"
            lines.append(_paint(head, _COLOR[c.action], color))
            if c.action in (Action.CREATE, Action.UPDATE):
                lines.extend(line for d in c.diffs for line in _field_lines(d))
                extra = _extra(c)
                if extra:
                    lines.append(f"        {extra}")
    return lines


def _owner_note(c: Change) -> str:
    """Which objects secretsboot made and which it adopted, where it matters."""
    if c.action is Action.NOOP:
        return "  (no changes)"
    if c.action is Action.DELETE:
        return "  (created by secretsboot: deleted)"
    if c.action is Action.RELEASE:
        return "  (adopted: released, its secretsboot marks removed; the object stays)"
    if c.action is Action.UPDATE and c.observed is not None and not c.observed.managed:
        return "  (exists: adopted, never deleted by --prune)"
    return ""


def render_json(plan: Plan) -> str:
    doc: dict[str, Any] = plan.to_json()
    doc["hasChanges"] = plan.has_changes
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


_COLOR = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.RELEASE: "cyan",
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
