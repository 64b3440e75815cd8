"""The shape of the code (issue #37): no import cycles between modules, one folder per
backend at the top of integrations/, and every file readable in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = ("app", "core", "integrations", "materializers", "pipelines", "stacks", "steps")
MAX_LINES = 600


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the project's own code (run.py included)."""
    found = {"run": root / "run.py"} if (root / "run.py").exists() else {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _runtime_nodes(tree: ast.AST):
    """Every node that can run: module level and inside functions (a lazy import is an
    import), but not `if TYPE_CHECKING:` blocks (annotations only; they never run) nor a
    ZenML flavor's `implementation_class`: ZenML's plugin contract has the flavor name its
    implementation there, lazily, so that registering a flavor never imports the backend;
    the implementation's own import of its flavor is the dependency that counts."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.FunctionDef) and node.name == "implementation_class":
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_between(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (`from a import b`: a.b when b is a module)."""
    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        targets = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package[: len(package) - node.level + 1]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                for alias in node.names:
                    if f"{base}.{alias.name}" in modules:
                        targets.add(f"{base}.{alias.name}")
                    elif base in modules:
                        targets.add(base)
        graph[name] = targets - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: each strongly connected group of more than one module (Tarjan),
    as one path around it."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(start: str) -> None:  # iterative: no recursion limit on long chains
        work = [(start, iter(sorted(graph[start])))]
        order[start] = low[start] = len(order)
        stack.append(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in order:
                    order[child] = low[child] = len(order)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], order[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == order[node]:
                group = []
                while True:
                    member = stack.pop()
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for name in sorted(graph):
        if name not in order:
            visit(name)
    return [_path_around(sorted(group), graph) for group in sorted(groups)]


def _path_around(group: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A cycle through the group's first module, as a readable a -> b -> a list."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        node = frontier.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                frontier.append(child)
    return group


def test_no_module_imports_one_that_imports_it_back():
    found = cycles(imports_between(module_files(REPO_ROOT)))
    assert found == [], "\n".join(" -> ".join(cycle) for cycle in found)


def test_the_cycle_check_sees_lazy_imports_and_longer_cycles(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "a.py").write_text("def f():\n    from app import b\n")
    (tmp_path / "app" / "b.py").write_text("from app.c import x\n")
    (tmp_path / "app" / "c.py").write_text("from . import a\n")
    (tmp_path / "app" / "d.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import e\n"
    )
    (tmp_path / "app" / "e.py").write_text(
        "from app import d\nclass F:\n    def implementation_class(self):\n"
        "        from app import d\n"
    )
    graph = imports_between(module_files(tmp_path))
    assert graph["app.d"] == set() and graph["app.e"] == {"app.d"}
    assert cycles(graph) == [["app.a", "app.b", "app.c", "app.a"]]


def test_integrations_top_level_holds_only_backend_folders():
    top = REPO_ROOT / "integrations"
    loose = [p.name for p in top.iterdir() if p.is_file() and p.name != "__init__.py"]
    assert loose == [], f"move these into a backend folder (or core/<concept>/): {loose}"
    folders = [p for p in top.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert folders and all((p / "__init__.py").is_file() for p in folders), folders


def our_files(root: Path):
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] not in {".venv", ".git", ".zenkube", ".zen", "build"}:
            yield relative


def test_no_file_over_600_lines():
    long = {
        str(relative): lines
        for relative in our_files(REPO_ROOT)
        if (lines := len((REPO_ROOT / relative).read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, "split these by job (the front's router/ package is the example)"


def test_no_two_test_files_share_a_name():
    """The test folders are not packages: pytest imports a test file by its name, so a
    second file of the same name elsewhere errors the whole run ("import file mismatch")
    although each passes alone."""
    seen: dict[str, Path] = {}
    for path in sorted((REPO_ROOT / "tests").rglob("test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]}: rename one"
        seen[path.name] = path
