"""Sizes the house keeps (STYLE.md): no module over 600 lines, no function of
radon grade D or worse (cyclomatic complexity above 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[1] / "secretsboot"
MAX_LINES = 600
MAX_COMPLEXITY = 20
MODULES = sorted(ROOT.rglob("*.py"))


def test_no_module_is_oversized() -> None:
    big = {
        str(p.relative_to(ROOT.parent)): n
        for p in MODULES
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not big, f"modules over {MAX_LINES} lines (split them along their seams): {big}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_function_of_grade_d_or_worse(path: Path) -> None:
    blocks = cc_visit(path.read_text(encoding="utf-8"))
    complex_ = [
        f"{path.relative_to(ROOT.parent)}:{b.lineno} {b.fullname} (complexity {b.complexity})"
        for b in blocks
        if b.complexity > MAX_COMPLEXITY
    ]
    assert not complex_, "functions of radon grade D or worse:\n" + "\n".join(complex_)
