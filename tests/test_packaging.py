"""Installs: the wheel ships code and data; an installed copy finds its files, runs read-only
and offline, and keeps Numba's cache in a per-user folder (or none), never next to the package.

The wheel is built once per session from a copy of the sources (about 3 s); "installed" means
the wheel unpacked into a folder on PYTHONPATH, which is what pip does with its files.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"

pytestmark = pytest.mark.packaging


def _can_build_offline() -> bool:
    try:
        import setuptools.command.bdist_wheel  # noqa: F401  (setuptools >= 70.1)
    except ImportError:
        try:
            import wheel  # noqa: F401
        except ImportError:
            return False
    return True


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """facelite-*.whl built with the installed setuptools (no network), from a clean copy."""
    if not _can_build_offline():  # setup.py's test extra installs setuptools >= 70.1, so only without it
        pytest.skip("setuptools cannot build wheels offline here (needs setuptools >= 70.1 or wheel: "
                    "pip install -e '.[test]' installs it)")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    shutil.copy2(ROOT / "setup.py", src)
    for folder in ("nnlite", "tracker", "weights"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (path,) = (tmp / "dist").glob("facelite-*.whl")
    return path


@pytest.fixture(scope="session")
def installed(wheel, tmp_path_factory):
    """The wheel unpacked into a read-only site folder; -> (site, snapshot of its files)."""
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    for path in sorted(site.rglob("*"), reverse=True) + [site]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield site, _snapshot(site)
    for path in [site] + sorted(site.rglob("*")):
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _source_files(package: str) -> set:
    return {str(p.relative_to(ROOT)) for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts}


def test_wheel_ships_code_weights_looks_and_clip(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(meta_name).decode()
    missing_code = (_source_files("nnlite") | _source_files("tracker")) - names
    assert not missing_code
    data = {f"tracker/weights/{p.name}" for p in (ROOT / "weights").glob("*.h5")}  # demo.h5 once trained
    data |= {"tracker/weights/lbpcascade_frontalface.xml", "tracker/weights/cascade_calibration.json",
             "tracker/data/sample.mp4"}
    data |= {f"tracker/looks/{p.name}" for p in (ROOT / "tracker" / "looks").glob("*.json")}
    data |= {f"tracker/web/static/{p.name}" for p in (ROOT / "tracker" / "web" / "static").iterdir()}  # the page
    assert len(data) >= 6 and not data - names
    assert not [n for n in names if n.split("/")[0] in ("tests", "tools", "runs", "weights")]
    requires = sorted(line.split(":", 1)[1].strip() for line in metadata.splitlines()
                      if line.startswith("Requires-Dist:") and "extra ==" not in line)
    assert requires == ["h5py", "numba", "numpy", "opencv-python"]


_INSTALLED = r"""
import json, os, socket, sys, tempfile
def _no_network(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket.connect = socket.create_connection = _no_network
import numpy as np
import tracker
from tracker.resources import resource, weights_dir
from tracker.detection.cascade import CascadeDetector, DEFAULT_CONFIG
from tracker.landmarks import DEFAULT_WEIGHTS, Landmarker
from tracker.makeup import available_looks
from tracker.video import SAMPLE
from nnlite.jit import CACHE_DIR
from nnlite.model import TwoStageModel
from nnlite.kernels.soft_argmax import heatmap_peak
CascadeDetector()  # reads the packaged cascade XML and calibration
demo = Landmarker("demo", backend="numpy")  # a shipped model by name, as the README's snippet asks for it
fix = sys.argv[1]
model = TwoStageModel.load(fix + "/model_small.h5", backend="numpy")
stored = np.load(fix + "/model_small.npz")
err = float(np.abs(model.forward(stored["x"]).refined - stored["refined"]).max())
heatmap_peak(np.zeros((1, 4, 4, 2), np.float32))  # compiles one Numba kernel (cached when possible)
print(json.dumps({"package": os.path.dirname(tracker.__file__), "weights_dir": str(weights_dir()),
                  "defaults": [str(DEFAULT_WEIGHTS), str(DEFAULT_CONFIG), str(SAMPLE)],
                  "sample_exists": SAMPLE.is_file(), "demo_size": demo.size, "looks": list(available_looks()),
                  "err": err,
                  "cache_dir": CACHE_DIR, "env_cache_dir": os.environ.get("NUMBA_CACHE_DIR")}))
"""


def _run_installed(site: Path, tmp_path: Path, **env_overrides):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "NNLITE_BACKEND")}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1",
               HOME=str(tmp_path / "home"))
    env.update(env_overrides)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", _INSTALLED, str(FIX)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_installed_copy_runs_read_only_and_offline(installed, tmp_path):
    site, before = installed
    xdg = tmp_path / "xdg"
    res = _run_installed(site, tmp_path, XDG_CACHE_HOME=str(xdg))
    assert Path(res["package"]) == site / "tracker"
    assert Path(res["weights_dir"]) == site / "tracker" / "weights"
    assert all(Path(p).is_relative_to(site / "tracker") for p in res["defaults"]), res["defaults"]
    assert res["sample_exists"] and {"natural", "bold", "evening"} <= set(res["looks"])
    assert res["demo_size"] > 0  # Landmarker("demo") loaded the packaged weights from outside the repository
    assert res["err"] <= 1e-4
    cache = xdg / "nnlite" / "numba"
    assert res["cache_dir"] == res["env_cache_dir"] == str(cache)
    assert list(cache.rglob("*heatmap_peak*.nbi")), "the compiled kernel was not cached in the user folder"
    assert _snapshot(site) == before, "something was written into the installed package"


def test_unwritable_cache_folder_means_no_cache_and_no_error(installed, tmp_path):
    site, before = installed
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    res = _run_installed(site, tmp_path, XDG_CACHE_HOME=str(blocker / "cache"))
    assert res["cache_dir"] is None and res["env_cache_dir"] is None
    assert res["err"] <= 1e-4
    assert _snapshot(site) == before


def test_cache_folder_choice(tmp_path):
    """$NUMBA_CACHE_DIR wins; else $XDG_CACHE_HOME/nnlite/numba, even when numba was imported first."""
    code = ("import os, numba, nnlite.jit as j; "
            "print(j.CACHE_DIR, numba.config.CACHE_DIR, os.environ['NUMBA_CACHE_DIR'], sep='|')")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    ours = str(tmp_path / "xdg" / "nnlite" / "numba")
    assert out.stdout.strip().split("|") == [ours, ours, ours]
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split("|") == [str(tmp_path / "mine")] * 3


def test_checkout_resolves_the_top_level_weights():
    from tracker.resources import resource, weights_dir

    assert weights_dir() == ROOT / "weights"
    assert resource("weights", "cascade_calibration.json").is_file()
    assert resource("looks") == ROOT / "tracker" / "looks"
    assert resource("data", "sample.mp4").is_file()
    with pytest.raises(ValueError):
        resource()
