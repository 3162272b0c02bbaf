"""nnlite's seams: no import cycle, no private names imported across modules.

Both read the sources (`tests.import_graph`: every import statement, those inside
functions too, which is where a cycle hides), so they need no import of the modules.
"""
from tests.import_graph import PACKAGES, ROOT, find_cycles, imports, module_name, package_graph, sources


def test_nnlite_has_no_import_cycle():
    cycles = find_cycles(package_graph("nnlite"))
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_no_private_names_cross_module_boundaries():
    """No nnlite module takes a `_name` from another module, and no module anywhere takes one
    from nnlite (nor imports a private nnlite module)."""
    offenders = []
    for path in sources(*PACKAGES):
        own = module_name(path)
        for target, names in imports(path):
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
