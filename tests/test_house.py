"""The house rules a reader relies on: no import circles among our modules, and only Optuna's
public surface (a private name can change in any Optuna release)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "space", "trainers")


def modules() -> dict[str, ast.Module]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            out[name] = ast.parse(path.read_text())
    return out


def imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Our modules `tree` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found & known


def test_no_module_imports_itself_through_others():
    mods = modules()
    graph = {m: imports(tree, set(mods)) - {m} for m, tree in mods.items()}
    circles = []

    def visit(m, path):
        for n in sorted(graph[m]):
            if n == path[0]:
                circles.append(" -> ".join(path + [n]))
            elif n not in path and n > path[0]:  # each circle once, from its smallest module
                visit(n, path + [n])

    for m in sorted(graph):
        visit(m, [m])
    assert circles == []


def test_only_optunas_public_surface():
    private = []
    for name, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                private += [f"{name}: import {n}" for n in names
                            if n and n.split(".")[0] == "optuna" and any(p.startswith("_") for p in n.split("."))]
            # a private attribute of anything but our own objects (self, cls)
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    private.append(f"{name}: .{node.attr}")
    assert private == []
