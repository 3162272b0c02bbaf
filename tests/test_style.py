"""House rules that keep the runtime packages embeddable."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI_MODULES = {"video.py", "image.py", "camera.py", "cli.py", "batch.py", "__main__.py"}  # only the CLIs talk to the terminal


def _sources(package):
    return sorted((ROOT / package).rglob("*.py"))


def test_runtime_never_imports_a_dl_framework():
    pattern = re.compile(r"^\s*(import|from)\s+(torch|onnxruntime|tensorflow|jax)\b", re.M)
    offenders = [str(p.relative_to(ROOT)) for pkg in ("nnlite", "tracker")
                 for p in _sources(pkg) if pattern.search(p.read_text())]
    assert offenders == []


def test_library_code_does_not_print():
    pattern = re.compile(r"^\s*print\(", re.M)
    offenders = [str(p.relative_to(ROOT)) for pkg in ("nnlite", "tracker")
                 for p in _sources(pkg)
                 if p.name not in CLI_MODULES and pattern.search(p.read_text())]
    assert offenders == []
