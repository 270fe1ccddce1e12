"""The floors of docs/architecture.md hold: every import of every module of ours points at a
package on a lower floor (imports inside functions included), so no package imports one
above it and no two packages import each other. And the code stays short enough to read:
no function of ours over 60 lines, no module over 400 (migrations aside)."""

import ast
import re
from pathlib import Path

import pytest

from tests.code_shape import long_functions, long_modules

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def floors() -> dict[str, int]:
    """Package -> floor, from the `floors` block of docs/architecture.md (top line highest)."""
    block = re.search(r"```floors\n(.*?)```", ARCHITECTURE.read_text(), re.S)
    assert block, "docs/architecture.md has no ```floors block"
    lines = [line.split(":", 1)[1].split() for line in block.group(1).strip().splitlines()]
    return {package: len(lines) - 1 - height for height, packages in enumerate(lines) for package in packages}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_imports(root: Path, floor_of: dict[str, int]) -> list[str]:
    problems = []
    for package, floor in floor_of.items():
        for path in sorted((root / package).rglob("*.py")):
            for line, target in imported_packages(path):
                if target in floor_of and target != package and floor_of[target] >= floor:
                    problems.append(f"{path.relative_to(root)}:{line} imports {target} (floor {floor_of[target]}, not below {floor})")
    return problems


def test_every_package_of_ours_has_a_floor():
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert packages == set(floors()), "add the package to the floors block of docs/architecture.md"


def test_no_import_points_up_a_floor_or_across_one():
    assert upward_imports(ROOT, floors()) == []


def test_the_check_finds_an_import_up_a_floor_even_inside_a_function(tmp_path):
    for package in ("low", "high"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "high" / "views.py").write_text("from low import thing\n")
    (tmp_path / "low" / "thing.py").write_text("def f():\n    import high.views\n")
    assert upward_imports(tmp_path, {"low": 0, "high": 1}) == ["low/thing.py:2 imports high (floor 1, not below 0)"]


@pytest.mark.parametrize("package", ["common", "zakops"])
def test_the_ground_imports_no_app(package):
    floor_of = floors()
    assert floor_of[package] == 0
    assert not [target for path in (ROOT / package).rglob("*.py") for _, target in imported_packages(path) if target in floor_of and target != package]


@pytest.mark.parametrize("package", sorted(floors()))
def test_functions_and_modules_stay_short(package):
    assert long_functions(package) == []
    assert long_modules(package) == []
