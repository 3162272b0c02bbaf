"""The layout of tools/: every tool runs with `python -m`, the tests import no benchmark, and the
docs name tools that exist."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"
# Docs and code that name tools by module (tools.GROUP.NAME) or by path (tools/GROUP/NAME.py).
DOCS = [ROOT / "README.md", TOOLS / "EXPERIMENTS.md", *sorted((ROOT / "weights").glob("*.md")),
        *sorted(TOOLS.rglob("*.py")), *sorted(TOOLS.rglob("*.sh")), *sorted((ROOT / "tests").glob("*.py"))]
MODULE = re.compile(r"(?<![\w.])tools((?:\.[a-z_]\w*)+)")  # upper case: a placeholder
PATH = re.compile(r"(?<![\w./])tools/([a-z_][\w/]*\.(?:py|sh))")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def _resolves(parts: list[str]) -> bool:
    """tools.<parts...>: a module, or a name in one (tools.landmarks.data.split_pairs)."""
    here = TOOLS
    for part in parts:
        if (here / part / "__init__.py").is_file():
            here = here / part
            continue
        return (here / f"{part}.py").is_file()
    return here != TOOLS


def test_every_tools_folder_is_a_package():
    for folder in [p for p in TOOLS.rglob("*") if p.is_dir() and any(p.glob("*.py"))]:
        assert (folder / "__init__.py").is_file(), f"{folder} holds modules but no __init__.py"


def test_no_tool_edits_sys_path():
    for path in TOOLS.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        hacks = [n.lineno for n in ast.walk(tree)
                 if isinstance(n, ast.Attribute) and n.attr == "path"
                 and isinstance(n.value, ast.Name) and n.value.id == "sys"]
        assert not hacks, f"{path.relative_to(ROOT)}:{hacks[0]} uses sys.path (run it with python -m)"


def test_tests_import_no_benchmark():
    for path in (ROOT / "tests").rglob("*.py"):
        bench = [n for n in _imports(path) if n == "tools.bench" or n.startswith("tools.bench.")]
        assert not bench, f"{path.relative_to(ROOT)} imports {bench[0]}: move what it needs out of tools.bench"


def test_docs_name_tools_that_exist():
    stale = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in MODULE.finditer(text):
            if not _resolves(m.group(1).strip(".").split(".")):
                stale.append(f"{path.relative_to(ROOT)}: tools{m.group(1)}")
        for m in PATH.finditer(text):
            if not (TOOLS / m.group(1)).is_file():
                stale.append(f"{path.relative_to(ROOT)}: tools/{m.group(1)}")
    assert not stale, "stale tool names:\n" + "\n".join(stale)
