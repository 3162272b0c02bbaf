"""The project's import graph read from its sources (every import statement, those inside
functions too, which is where a cycle hides), for the structure tests; nothing is imported."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nnlite", "tracker", "tools", "tests")


def module_name(path, root=ROOT):
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path, root=ROOT):
    """(imported module, [names taken from it]) for every import statement in `path`."""
    tree = ast.parse(path.read_text(), str(path))
    own = module_name(path, root)
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


def sources(*packages, root=ROOT):
    return sorted(p for pkg in packages for p in (root / pkg).rglob("*.py"))


def package_graph(package="tracker", root=ROOT):
    """{module: set of `package`'s modules it imports}. `from P import m` of a submodule counts as
    importing P.m (not P: every submodule import runs its package's __init__ first anyway, which
    would make each package that re-exports its parts a cycle of its own)."""
    modules = {module_name(p, root): p for p in sources(package, root=root)}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for target, names in imports(path, root):
            subs = {f"{target}.{n}" for n in names if f"{target}.{n}" in modules}
            deps |= subs
            if target in modules and (len(subs) < len(names) or not names):
                deps.add(target)
        graph[name] = deps - {name}
    return graph


def find_cycles(graph):
    """Every import cycle of `graph` found by a depth-first walk, as [a, b, ..., a] lists."""
    done, cycles = set(), []

    def visit(node, stack):
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, stack + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return cycles


def private_imports(paths, root=ROOT):
    """'path: what' for each import of a private module (a `_name` part) of tracker or nnlite,
    and each `_name` taken from another module of the project."""
    offenders = []
    for path in paths:
        own = module_name(path, root)
        for target, names in imports(path, root):
            top = target.split(".")[0]
            if top in ("tracker", "nnlite") and any(p.startswith("_") and not p.startswith("__")
                                                   for p in target.split(".")):
                offenders.append(f"{path.relative_to(root)}: imports {target}")
            if top in PACKAGES and target != own:
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private:
                    offenders.append(f"{path.relative_to(root)}: {target} {private}")
    return offenders
