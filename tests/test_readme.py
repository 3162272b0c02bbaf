"""The README's Python snippets run as written, from a folder outside the repository."""
import os
from pathlib import Path

from tests.helpers import readme_python_snippets, run_python_snippets

ROOT = Path(__file__).resolve().parents[1]


def test_readme_snippets_run_from_any_folder(tmp_path):
    snippets = readme_python_snippets(ROOT / "README.md")
    assert len(snippets) >= 2 and any('Landmarker("demo")' in s for s in snippets)
    env = {k: v for k, v in os.environ.items() if k != "NNLITE_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)  # this checkout, imported from elsewhere (the cwd is not the repository)
    failed = run_python_snippets(snippets, tmp_path, env)
    assert not failed, "\n\n".join(f"{code}\n-> {proc.stderr[-2000:]}" for code, proc in failed)
    assert list(tmp_path.iterdir()) == []  # the snippets write nothing
