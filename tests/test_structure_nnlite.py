"""nnlite's seams: no import cycle, no private names imported across modules.

Both read the sources (every import statement, those inside functions too, which is
where a cycle hides), so they need no import of the modules themselves.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nnlite", "tracker", "tools", "tests")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """(imported module, [names taken from it]) for every import statement in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            yield base, [alias.name for alias in node.names]


def _sources(*packages):
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def _nnlite_graph():
    modules = {_module_name(p): p for p in _sources("nnlite")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target, names in _imports(path):
            # `from nnlite.kernels import conv` imports the module nnlite.kernels.conv.
            deps.update(f"{target}.{n}" for n in names if f"{target}.{n}" in modules)
            if target in modules:
                deps.add(target)
        graph[name] = deps - {name}
    return graph


def test_nnlite_has_no_import_cycle():
    graph = _nnlite_graph()
    done, cycles = set(), []

    def visit(node, stack):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        for dep in sorted(graph[node]):
            visit(dep, stack + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_no_private_names_cross_module_boundaries():
    """No nnlite module takes a `_name` from another module, and no module anywhere takes one
    from nnlite (nor imports a private nnlite module)."""
    offenders = []
    for path in _sources(*PACKAGES):
        own = _module_name(path)
        for target, names in _imports(path):
            if not (own.startswith("nnlite") or target.startswith("nnlite")):
                continue
            if target.startswith("nnlite") and any(part.startswith("_") and part != "__init__"
                                                   for part in target.split(".")):
                offenders.append(f"{path.relative_to(ROOT)}: imports {target}")
            if target.split(".")[0] in PACKAGES and target != own:
                private = [n for n in names if n.startswith("_")]
                if private:
                    offenders.append(f"{path.relative_to(ROOT)}: {target} {private}")
    assert offenders == []
