"""The layers hold (docs/ARCHITECTURE.md): no import cycle between any two modules, no import
tucked into a function to dodge one, and what the bot accepts does not depend on what
happened to be imported before."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from runtime.cli.check import check_config

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bots", "handlers", "storage", "runtime")
#: imports that stay inside a function on purpose, and why (none of them dodges a cycle)
LAZY = {
    # asyncpg is loaded only by installations that configure PostgreSQL
    ("storage/__init__.py", "storage.pg"),
    ("runtime/workers.py", "storage.pg"),
}


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph(*PACKAGES)  # TYPE_CHECKING imports included
    assert _cycles(graph) == []


def test_no_project_import_hides_in_a_function() -> None:
    hidden = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for func in ast.walk(tree):
                if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                for node in ast.walk(func):
                    if isinstance(node, ast.ImportFrom) and node.module:
                        names = [node.module]
                    elif isinstance(node, ast.Import):
                        names = [alias.name for alias in node.names]
                    else:
                        continue
                    for name in names:
                        if name.split(".")[0] in PACKAGES:
                            hidden.add((str(path.relative_to(ROOT)), name))
    assert hidden <= LAZY, sorted(hidden - LAZY)


@pytest.fixture
def overriding_config(example_config: Path) -> Path:
    """The example config with template overrides that only features and the runtime
    declare (subscribe.j2: announcements, reload_failed.j2: hot reload)."""
    folder = example_config.parent / "templates-school"
    folder.mkdir()
    (folder / "subscribe.j2").write_text("Подписка: {{ topics }}\n", encoding="utf-8")
    (folder / "reload_failed.j2").write_text("Ошибки: {{ problems }} {{ more }}\n", "utf-8")
    text = example_config.read_text(encoding="utf-8")
    text = text.replace(
        "    # templates: examples/templates/school-17/", "    templates: templates-school/", 1
    )
    example_config.write_text(text, encoding="utf-8")
    return example_config


@pytest.mark.slow
def test_check_gives_the_same_result_in_a_fresh_interpreter(overriding_config: Path) -> None:
    program = (
        "import json, sys\n"
        "from runtime.features import TEMPLATES\n"
        "from runtime.validation import check_all\n"
        "problems, warnings = check_all(sys.argv[1], TEMPLATES)\n"
        "print(json.dumps([[str(p) for p in problems], [str(w) for w in warnings]]))\n"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", program, str(overriding_config)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    problems, warnings = check_config(str(overriding_config))  # the CLI is imported here
    here = [[str(p) for p in problems], [str(w) for w in warnings]]
    assert json.loads(fresh.stdout) == here
    assert here[0] == [], "the overrides are templates the bot uses"
