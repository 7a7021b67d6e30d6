"""The package's layout: no import cycle among urlvr_jax's modules (imports inside functions count too), and no
module over ``MAX_LINES`` lines (the house rule: split a module before it grows past ~400)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "urlvr_jax"
MAX_LINES = 400
OVER: dict[str, str] = {}  # module -> why it may be longer (none today: the longest, studies/seeds.py, has 391)


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The urlvr_jax modules ``name`` imports (``from pkg import mod`` names the module when it is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != name}


def test_no_import_cycle():
    known = modules()
    graph = {name: imports(name, path, set(known))
             for name, path in known.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_module_over_the_limit():
    lengths = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    over = {name: n for name, n in lengths.items() if n > MAX_LINES and name not in OVER}
    assert not over, f"modules over {MAX_LINES} lines (split them): {over}"


def test_the_check_finds_a_cycle(tmp_path):
    """The cycle check is not vacuous: the two pairs this layout removed would fail it."""
    (tmp_path / "a.py").write_text("def f():\n    from urlvr_jax.b import g\n")
    (tmp_path / "b.py").write_text("from urlvr_jax.a import f\n")
    known = {"urlvr_jax.a", "urlvr_jax.b"}
    assert imports("urlvr_jax.a", tmp_path / "a.py", known) == {"urlvr_jax.b"}
    assert imports("urlvr_jax.b", tmp_path / "b.py", known) == {"urlvr_jax.a"}
