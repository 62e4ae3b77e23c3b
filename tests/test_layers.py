"""The import contract: imports flow one way, floor by floor (STYLE.md, CONTRIBUTING.md).

::

    cli                                  parses, calls a face, maps errors to exit codes
    fetch  provision  audit  inject      the faces; never import each other
    backends                             one module per store
    identity                             how a pod proves who it is
    transport                            the one HTTP client
    core                                 errors, secret, refs, contract, spec, small helpers

Every ``import`` counts, also one inside a function or under ``TYPE_CHECKING``.
The sandbox (and the demo inside it) sits beside the package: any floor is
below it, and only ``cli`` may import it. A violation is reported as
``file:line: importer -> imported (why)``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "secretsboot"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: floor of each top-level part of the package; higher may import lower.
FLOORS: dict[str, int] = {
    "errors": 0,
    "secret": 0,
    "refs": 0,
    "contract": 0,
    "spec": 0,
    "_records": 0,
    "_yaml": 0,
    "_fs": 0,
    "_lazy": 0,
    "interval": 0,
    "transport": 1,
    "identity": 2,
    "backends": 3,
    "fetch": 4,
    "provision": 4,
    "audit": 4,
    "inject": 4,
    "cli": 5,
    "__main__": 6,
    "__init__": 6,  # the library facade re-exports faces by name (lazily)
    "sandbox": 7,
}
FACE_FLOOR = 4
#: beside the package: they may import any floor, and only the entry points may import them.
BESIDE = frozenset({"sandbox"})
ENTRY = frozenset({"cli", "__main__"})


def _part(module: str) -> str | None:
    """``secretsboot.fetch.writer`` -> ``fetch``; None for a module outside the package."""
    bits = module.split(".")
    if bits[0] != PACKAGE or module == PACKAGE:
        return None
    return bits[1] if len(bits) > 1 else "__init__"


def _module_name(root: Path, path: Path) -> tuple[str, str]:
    """The dotted name of ``path`` and the package its relative imports start from."""
    bits = list(path.relative_to(root.parent).with_suffix("").parts)
    if bits[-1] == "__init__":
        package = ".".join(bits[:-1])
        return (package if len(bits) > 2 else f"{package}.__init__"), package
    return ".".join(bits), ".".join(bits[:-1])


def _imports(path: Path, package: str) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            yield node.lineno, target
            for alias in node.names:  # `from secretsboot import fetch` imports a part too
                yield node.lineno, f"{target}.{alias.name}"


def violations(root: Path = ROOT) -> list[str]:
    """Every import in ``root`` (a package folder) that breaks the contract."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module, package = _module_name(root, path)
        importer = _part(module)
        if importer is None or importer not in FLOORS:
            found.append(f"{path}:1: {module} is in no floor (add it to FLOORS)")
            continue
        seen: set[tuple[int, str]] = set()
        for lineno, target in _imports(path, package):
            imported = _part(target)
            if imported is None or imported == importer or imported not in FLOORS:
                continue
            if (lineno, imported) in seen:
                continue
            seen.add((lineno, imported))
            where = f"{path.relative_to(root.parent)}:{lineno}: {module} -> {target}"
            mine, theirs = FLOORS[importer], FLOORS[imported]
            if imported in BESIDE:
                if importer not in ENTRY | BESIDE:
                    found.append(f"{where} (only cli may import the sandbox)")
            elif theirs > mine:
                found.append(f"{where} (points upward: floor {mine} imports floor {theirs})")
            elif mine == theirs == FACE_FLOOR:
                found.append(f"{where} (sideways: faces never import each other)")
            elif mine == theirs and mine > 0:
                found.append(f"{where} (sideways within one floor)")
    return found


#: Violations on main when this test was written; each lands fixed and its line goes.
#: The list must end empty: test_known_violations_still_exist keeps it honest.
KNOWN: frozenset[str] = frozenset()


def _key(line: str) -> str:
    """A violation without its line number, so edits above it do not move the key."""
    location, rest = line.split(": ", 1)
    return f"{location.rsplit(':', 1)[0]}: {rest}"


def test_package_keeps_the_import_contract() -> None:
    new = [v for v in violations() if _key(v) not in KNOWN]
    assert not new, "imports that break the layer contract:\n" + "\n".join(new)


def test_known_violations_still_exist() -> None:
    current = {_key(v) for v in violations()}
    gone = sorted(KNOWN - current)
    assert not gone, "fixed, so remove from KNOWN:\n" + "\n".join(gone)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / PACKAGE
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    ("name", "text", "why"),
    [
        ("identity/azure.py", "from secretsboot.backends import keyvault\n", "upward"),
        (
            "backends/vault.py",
            "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from secretsboot.fetch import runtime\n",
            "upward",
        ),
        ("provision/desired.py", "def f():\n    import secretsboot.fetch.runtime\n", "sideways"),
        ("inject.py", "from secretsboot.audit import loader\n", "sideways"),
        ("fetch/runtime.py", "from secretsboot.sandbox import stack\n", "only cli"),
        ("errors.py", "from .cli import main\n", "upward"),
        ("fetch/writer.py", "from ..provision import apply\n", "sideways"),
    ],
)
def test_a_bad_import_is_caught_with_its_file_and_line(
    tmp_path: Path, name: str, text: str, why: str
) -> None:
    root = _tree(tmp_path, {"__init__.py": "", name: text})
    found = violations(root)
    assert len(found) == 1, found
    line = text.count("\n", 0, text.index("import")) + 1
    assert found[0].startswith(f"{PACKAGE}/{name}:{line}: "), found
    assert why in found[0]


def test_allowed_imports_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "cli/__init__.py": "from secretsboot.sandbox import stack\nimport secretsboot.fetch\n",
            "fetch/runtime.py": "from secretsboot.backends import vault\nfrom . import writer\n",
            "backends/vault.py": "from secretsboot.identity import v\nfrom ..transport import x\n",
            "sandbox/stack.py": "from secretsboot.provision import apply\n",
            "contract.py": "from secretsboot.spec import Spec\n",
        },
    )
    assert violations(root) == []
