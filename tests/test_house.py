"""The house plan, checked: the package's import graph (no cycle; the core never imports the book's
layer; no private name imported across modules) and ruff's lint and import order."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "alllib"
#: Modules allowed to import both layers.
BOTH_LAYERS = {"alllib.cli", "alllib.__main__"}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str], root: Path = PACKAGE) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for every ``alllib`` import in ``path``, at any
    depth (imports inside functions count: they only hide a cycle). ``from alllib.x import y``
    where ``y`` is itself a module counts as an import of ``alllib.x.y``."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "alllib"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "alllib":
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub, None, node.lineno) if sub in modules else (base, a.name, node.lineno))
    return out


def import_graph(root: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    """The package's module graph (module -> modules it imports) and the private names imported
    across modules (``"importer:line imports module._name"``)."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph, private = {}, []
    for name, path in files.items():
        graph[name] = set()
        for target, what, line in imports(path, set(files), root):
            if target != name:
                graph[name].add(target)
            if what and what.startswith("_") and not what.endswith("__") and target != name:
                private.append(f"{name}:{line} imports {target}.{what}")
    return graph, private


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, the first repeated at the end), or ``None``.

    >>> find_cycle({"a": {"b"}, "b": {"a"}})
    ['a', 'b', 'a']
    >>> find_cycle({"a": {"b"}, "b": set()}) is None
    True
    """
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Core modules that import the book's layer (``alllib.book``)."""
    return [f"{m} imports {t}" for m, targets in sorted(graph.items()) for t in sorted(targets)
            if not m.startswith("alllib.book") and m not in BOTH_LAYERS and t.startswith("alllib.book")]


def test_the_package_has_no_import_cycle():
    graph, _ = import_graph()
    assert len(graph) > 20 and find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_core_never_imports_the_book_layer():
    graph, _ = import_graph()
    assert "alllib.book.chapter" in graph and not layer_violations(graph)


def test_no_private_name_is_imported_across_modules():
    assert import_graph()[1] == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """A planted cycle, a core module importing the book and a private import are all found."""
    pkg = tmp_path / "alllib"
    (pkg / "book").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "book" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from alllib.b import g  # hidden in a function\n")
    (pkg / "b.py").write_text("from alllib import a\nfrom alllib.book.chapter import _x\ng = 1\n")
    (pkg / "book" / "chapter.py").write_text("_x = 1\n")
    graph, private = import_graph(pkg)
    assert find_cycle(graph) in (["alllib.a", "alllib.b", "alllib.a"], ["alllib.b", "alllib.a", "alllib.b"])
    assert layer_violations(graph) == ["alllib.b imports alllib.book.chapter"]
    assert private == ["alllib.b:2 imports alllib.book.chapter._x"]


def test_ruff_finds_nothing():
    """Lint and import order (``[tool.ruff]`` in pyproject.toml); ``python -m ruff check --fix``
    sorts the imports."""
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                       capture_output=True).returncode:
        pytest.skip("ruff is not installed (pip install -r requirements.txt installs it)")
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "alllib", "tests", "benchmarks", "notebooks"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_environment_variable_is_declared_once_and_listed_in_the_readme():
    """The variables the library reads are those of ``alllib.paths.ENVIRONMENT``, and the README's
    table lists exactly them."""
    import re

    from alllib.paths import ENVIRONMENT

    read = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"ALLLIB_[A-Z_]+|KERAS_HOME", node.value):
                read.add(node.value)
    assert read - {"ALLLIB_EXAMPLE"} == set(ENVIRONMENT)  # ALLLIB_EXAMPLE: the settings module's doctest
    table = re.findall(r"^\| `([A-Z_]+)` \|", (ROOT / "README.md").read_text(), re.M)
    assert sorted(table) == sorted(ENVIRONMENT)


def test_the_module_map_is_the_one_the_code_makes():
    """CONTRIBUTING.md's module map is what ``.ci/module_map.py`` makes of the code: every module,
    its line count and its docstring's first line (``python .ci/module_map.py --write`` updates it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("module_map", ROOT / ".ci" / "module_map.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    text = (ROOT / "CONTRIBUTING.md").read_text()
    assert tool.replace_map(text, tool.module_map()) == text, "run: python .ci/module_map.py --write"
