"""The import graph runs one way: core ← integrations/materializers ← stacks ← steps ←
pipelines ← app ← run.py (and benchmarks/). A module may import its own package and lower
layers only; run.py parses and prints, so it imports app/ and core/ only."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import REPO_ROOT

LAYERS = {
    "core": 0,
    "integrations": 1,
    "materializers": 1,
    "stacks": 2,
    "steps": 3,
    "pipelines": 4,
    "app": 5,
    "run": 6,
    "benchmarks": 6,  # scripts that measure any layer; nothing imports them
}


def imports_of(path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def upward_imports(root) -> list[str]:
    wrong = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        package = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        if package not in LAYERS:
            continue
        for line, module in imports_of(path):
            target = module.split(".")[0]
            if target in LAYERS and target != package and LAYERS[target] >= LAYERS[package]:
                wrong.append(f"{relative}:{line} imports {module}")
    return wrong


def test_no_module_imports_a_higher_or_sibling_layer():
    assert upward_imports(REPO_ROOT) == []


def test_run_py_imports_only_app_and_core():
    ours = {module.split(".")[0] for _, module in imports_of(REPO_ROOT / "run.py")}
    assert ours & set(LAYERS) <= {"app", "core"}, sorted(ours & set(LAYERS))
    # It parses options and prints; anything longer has grown decisions that belong in app/.
    assert len((REPO_ROOT / "run.py").read_text().splitlines()) <= 300


def test_the_benchmarks_are_checked_and_nothing_imports_them():
    assert list((REPO_ROOT / "benchmarks").rglob("*.py"))  # the check above walks them
    for package in set(LAYERS) - {"benchmarks", "run"}:
        for path in (REPO_ROOT / package).rglob("*.py"):
            assert all(not m.startswith("benchmarks") for _, m in imports_of(path)), path


def test_the_check_sees_an_upward_import(tmp_path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "bad.py").write_text("from steps.errors import X\n")
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "ok.py").write_text("def f():\n    from core.errors import X\n")
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "bench.py").write_text("import run\nfrom steps import y\n")
    assert upward_imports(tmp_path) == [
        "benchmarks/bench.py:1 imports run",
        "core/bad.py:1 imports steps.errors",
    ]


@pytest.mark.parametrize("package", ["core"])
def test_core_imports_nothing_of_ours(package):
    for path in (REPO_ROOT / package).rglob("*.py"):
        for _, module in imports_of(path):
            assert module.split(".")[0] not in set(LAYERS) - {package}, (path, module)
