"""The package's layout holds: no import circle, imports run down the layers, no file over 400 lines.

Every import is counted, those placed inside functions too (they hide circles); only imports under
`if TYPE_CHECKING:` are not, as they never run. docs/design.md shows the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "s3ft"

LAYERS = [
    ("ground", ["errors", "records", "methods", "config", "nearcopy", "logs", "agreement"]),
    ("run directory", ["rundir", "telemetry", "provenance", "shards", "cache", "registry", "device", "lock", "stops",
                       "verify"]),
    ("plug-ins", ["backends", "tasks", "judges"]),
    ("training, weights, readers", ["training", "weights", "results", "replication", "harness", "harness_names",
                                    "trackers", "tiny",
                                    "world",
                                    "lm_eval_tasks"]),
    ("stages", ["context", "stages"]),
    ("pipeline", ["pipeline", "validate", "export", "judge_audit"]),
    ("commands", ["cli", "demo", "__init__", "__main__"]),
]
"""From the ground up: a module may import from its own layer and those below it."""

UPWARD: dict[tuple[str, str], str] = {}
"""Imports allowed to run from a lower layer to a higher one (at most 3), each with why."""


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def imports(path: Path, known: set[str]) -> set[str]:
    """The s3ft modules `path` imports, wherever the import statement is (but under `if TYPE_CHECKING:`)."""
    found: set[str] = set()
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "s3ft":
                    found.add(_known(a.name, known))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "s3ft":
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    found.add(sub if sub in known else _known(base, known))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(me)
    return found


def _known(name: str, known: set[str]) -> str:
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: imports(p, set(mods)) for m, p in mods.items()}


def layer(module: str) -> int:
    first = module.split(".")[1] if "." in module else "__init__"
    for i, (_, names) in enumerate(LAYERS):
        if first in names:
            return i
    raise AssertionError(f"{module}: in no layer of tests/test_layers.py LAYERS: place it")


def circles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            strong(v)
    return out


def test_no_import_circle():
    assert circles(graph()) == []


def test_every_module_has_a_layer():
    for m in modules():
        layer(m)


def test_imports_run_down_the_layers():
    g = graph()
    upward = sorted((a, b) for a, deps in g.items() for b in deps if layer(b) > layer(a))
    assert [u for u in upward if u not in UPWARD] == [], "imports from a lower layer to a higher one"
    assert len(UPWARD) <= 3
    assert set(UPWARD) <= set(upward), "an allowed upward import that no longer exists: remove it from UPWARD"


def test_no_file_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}


def test_no_module_imports_another_modules_private_names():
    found = []
    for m, p in modules().items():
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("s3ft"):
                found += [f"{m}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []
