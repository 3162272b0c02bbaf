"""tracker's seams: no import cycle, no private names across modules, the core below the CLIs,
modules of a readable size, a lazy package namespace.

The graph is read from the sources (`tests.import_graph`), so the modules need not be imported.
"""
import subprocess
import sys

from tests.import_graph import (PACKAGES, ROOT, find_cycles, imports, module_name, package_graph,
                                private_imports, sources)

# The command-line front ends: they may import the core, never the other way round.
CLI_MODULES = {"tracker.cli", "tracker.video", "tracker.image", "tracker.camera", "tracker.batch",
               "tracker.web.__main__"}
MAX_LINES = 600
# Modules allowed past MAX_LINES because they are one idea (path -> why).
LONG_MODULES = {
    "nnlite/kernels/inverted_residual.py": "one fused kernel (expand, depthwise, project), run a "
                                           "block or a chain of blocks at a time, with its "
                                           "packing, scratch sizing and NumPy references",
}


def test_tracker_has_no_import_cycle():
    cycles = find_cycles(package_graph("tracker"))
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_the_checks_can_fail(tmp_path):
    """A package of two modules importing each other (one inside a function, where cycles hide)
    and taking private names: both checks report it."""
    pkg = tmp_path / "tracker"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from tracker import b\nimport tracker._hidden\n")
    (pkg / "b.py").write_text("def f():\n    from tracker.a import _helper\n")
    assert find_cycles(package_graph("tracker", tmp_path)) == [["tracker.a", "tracker.b", "tracker.a"]]
    found = private_imports(sources("tracker", root=tmp_path), tmp_path)
    assert found == ["tracker/a.py: imports tracker._hidden", "tracker/b.py: tracker.a ['_helper']"]


def test_no_private_names_cross_module_boundaries():
    assert private_imports(sources(*PACKAGES)) == []


def test_the_core_never_imports_a_cli_module():
    """`Tracker.from_weights`, the pipeline, the live loop, batch workers and the web engine work
    without argparse front ends: only CLI modules import CLI modules."""
    graph = package_graph("tracker")
    offenders = sorted(f"{name} -> {dep}" for name, deps in graph.items() if name not in CLI_MODULES
                       for dep in deps if dep in CLI_MODULES)
    assert offenders == []


def test_only_cli_modules_parse_arguments():
    """argparse lives in the front ends (tracker.precompile: the entry point of its own helper
    process, started by `Tracker.from_weights`, which parses only --help)."""
    allowed = CLI_MODULES | {"tracker.precompile"}
    users = sorted(module_name(p) for p in sources("tracker")
                   if any(target == "argparse" for target, _ in imports(p)))
    assert [u for u in users if u not in allowed] == []


def test_modules_stay_readable():
    long = {str(p.relative_to(ROOT)): n for p in sources("tracker", "nnlite")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= set(LONG_MODULES), f"over {MAX_LINES} lines: {long}"


def test_import_tracker_is_lazy_and_its_names_resolve():
    code = ("import sys, tracker; loaded = sorted(m for m in sys.modules if m.startswith('tracker.') "
            "or m in ('cv2', 'numba')); assert loaded == [], loaded; "
            "missing = [n for n in tracker.__all__ if getattr(tracker, n, None) is None]; "
            "assert missing == [], missing; print(len(tracker.__all__))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 10
