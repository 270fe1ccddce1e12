"""The approval workflow's code is laid out so that a reader finds each effect where it
belongs: the services by family of transitions, every row lock in one module (so their
order can be read in one place). How long functions and modules may be is checked for
every package in tests/test_architecture.py."""

import ast

from tests.code_shape import ROOT

SERVICES = ROOT / "approvals" / "services"


def test_the_services_are_a_package_whose_init_only_names_the_families():
    init = ast.parse((SERVICES / "__init__.py").read_text())
    assert len(init.body) == 1 and isinstance(init.body[0], ast.Expr)  # a docstring, no re-exports
    for family in ("requests", "decisions", "claims", "expiry", "events", "locks"):
        assert (SERVICES / f"{family}.py").exists(), family
        assert family in ast.get_docstring(init), family


def test_every_row_lock_is_taken_in_locks_and_its_docstring_gives_the_order():
    lockers = sorted(
        path.name for path in ROOT.joinpath("approvals").rglob("*.py") if "select_for_update" in path.read_text()
    )
    assert lockers == ["locks.py"]
    doc = ast.get_docstring(ast.parse((SERVICES / "locks.py").read_text()))
    assert "action, then request, then claim" in " ".join(doc.split())
