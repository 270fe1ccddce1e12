"""How long an app's functions and modules are, for the tests that keep them short
(STYLE.md: a reader takes in a function at once, a module in one sitting)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


def long_functions(app: str) -> list[str]:
    """`module:function (lines)` for each function of `app` longer than the limit,
    its decorators and docstring counted."""
    found = []
    for path in _modules(app):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
                lines = node.end_lineno - first + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{node.name} ({lines})")
    return found


def long_modules(app: str) -> list[str]:
    """`module (lines)` for each module of `app` longer than the limit."""
    found = []
    for path in _modules(app):
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{path.relative_to(ROOT)} ({lines})")
    return found
