"""Start-up: on an empty Numba cache `Tracker.from_weights` starts `tracker.precompile`, a
helper process that compiles the landmark model's heads and the makeup kernels into the
same cache, and only then; on every start it loads the kernels on a background thread
(`tracker.startup`) without changing a result; one specialisation per kernel in a run;
nnlite's Numba set-up leaves scipy's linear algebra unimported.

The cache tests run in a subprocess with a fresh NUMBA_CACHE_DIR (so the cache is really
empty); the helper needs two cores (it is only started where there is a second one).
"""
import importlib.util
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from nnlite.jit import HAVE_NUMBA, JIT_DISABLED, available_cores
from tracker.startup import Preparation, after_process, holding_compiler_lock, wait_all

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "tests" / "fixtures" / "model_small.h5"

_COLD_START = """
import json, os, sys
from nnlite.backend import numba_kernels_cached
from tracker.tracking import Tracker
cache = os.environ["NUMBA_CACHE_DIR"]
def index_files(module):
    return sorted(name for _, _, names in os.walk(cache) for name in names
                  if name.startswith(module + ".") and name.endswith(".nbi"))
cold = numba_kernels_cached()
tracker = Tracker.from_weights(sys.argv[1], detector="blaze")
helper = tracker.precompile_helper
rc = helper.wait(600) if helper is not None else None
makeup = index_files("blend") + index_files("masks")
heads = index_files("roi_conv") + index_files("soft_argmax")
tracker.warmup()                       # the models' kernels, into the cache
warm = numba_kernels_cached()
again = Tracker.from_weights(sys.argv[1], detector="blaze").precompile_helper
print(json.dumps({"cold": cold, "helper": helper is not None, "rc": rc, "makeup": len(makeup), "heads": len(heads),
                  "warm": warm, "again": again is not None}))
"""


@pytest.mark.skipif(available_cores() < 2, reason="the helper needs a second core")
def test_empty_cache_starts_one_helper_that_fills_the_makeup_kernels(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NNLITE_BACKEND"}
    env.update(PYTHONPATH=str(ROOT), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-c", _COLD_START, str(MODEL)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["cold"] is False and res["helper"] is True and res["rc"] == 0
    assert res["makeup"] >= 2, res          # blend and masks kernels compiled by the helper
    assert res["heads"] >= 2, res           # and the landmark model's RoI conv and soft-argmax
    assert res["warm"] is True and res["again"] is False


def test_precompile_rejects_unknown_arguments(capsys):
    from tracker import precompile

    with pytest.raises(SystemExit) as exc:
        precompile.main(["extra"])
    assert exc.value.code == 2 and "usage" in capsys.readouterr().err


def _run_python(code: str, *args: str, env_extra=None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NNLITE_BACKEND"}
    env.update(PYTHONPATH=str(ROOT), **(env_extra or {}))
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_preparation_runs_steps_then_later_steps_and_reports_errors():
    order, gate = [], threading.Event()
    prep = Preparation([lambda: order.append("a")], [gate.wait, lambda: order.append("b")])
    assert prep.wait(10) and order == ["a"] and prep.seconds is not None
    assert not prep.finish(0.01)            # the later part waits on the gate
    gate.set()
    assert prep.finish(10) and order == ["a", "b"] and prep.error is None

    def boom():
        raise RuntimeError("no kernels")
    bad = Preparation([boom, lambda: order.append("never")], [lambda: order.append("never")])
    assert bad.wait(10) and bad.finish(10)
    assert isinstance(bad.error, RuntimeError) and "never" not in order
    wait_all()                               # nothing left running: returns at once


def test_preparation_does_not_wait_for_itself_and_after_process_waits():
    seen = []
    holder = {}
    prep = holder["p"] = Preparation([lambda: seen.append(holder["p"].wait(5) if "p" in holder else None)])
    assert prep.finish(10)
    assert seen in ([False], [None])         # its own thread never blocks on itself
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    after_process(proc)()
    assert proc.returncode == 0
    after_process(None)()                     # no helper: nothing to wait for


@pytest.mark.skipif(not HAVE_NUMBA, reason="Numba's compiler lock")
def test_holding_compiler_lock_holds_it_for_the_whole_step():
    from numba.core.compiler_lock import global_compiler_lock

    seen = []
    holding_compiler_lock(lambda: seen.append(global_compiler_lock.is_locked()))()
    assert seen == [True] and not global_compiler_lock.is_locked()


@pytest.mark.skipif(not HAVE_NUMBA or JIT_DISABLED, reason="prepares Numba kernels only")
def test_background_preparation_gives_the_same_landmarks():
    import cv2

    from tracker.tracking import Tracker

    cap = cv2.VideoCapture(str(ROOT / "tracker" / "data" / "sample.mp4"))
    frames = [cap.read()[1] for _ in range(4)]
    cap.release()
    prepared = Tracker.from_weights(MODEL, detector="blaze", threads=1)
    plain = Tracker.from_weights(MODEL, detector="blaze", threads=1, prepare=None)
    assert prepared.preparation is not None and plain.preparation is None
    for frame in frames:                      # process() waits for the models' part by itself
        a, b = prepared.process(frame), plain.process(frame)
        assert len(a) == len(b) == 1          # the sample's face, tracked from the first frame
        for fa, fb in zip(a, b):
            np.testing.assert_array_equal(fa.landmarks, fb.landmarks)   # the same compiled kernels
    assert prepared.wait_ready(0) and prepared.preparation.finish(600)
    assert prepared.preparation.error is None
    with pytest.raises(ValueError, match="prepare"):
        Tracker.from_weights(MODEL, prepare="everything")


_ONE_SPECIALISATION = """
import gc, json, sys
from numba.core.registry import CPUDispatcher
from tracker.landmarks import load_landmarker
from tracker.makeup import load_look, render
from tracker.precompile import compile_makeup_tail
from tracker.sources import open_file
from tracker.tracking import Tracker
# The helper's way first (heads only) and the first run's makeup tail (the parent's part of
# the makeup on an empty cache), then a whole run: all must use the same types.
load_landmarker(sys.argv[1], backend="numba", threads=1).model.warmup_heads()
compile_makeup_tail()
tracker = Tracker.from_weights(sys.argv[1], detector="blaze", threads=1)
tracker.preparation.finish()
look = load_look("natural")
with open_file(sys.argv[2]) as reader:
    for _, frame in zip(range(5), reader):
        render(frame, tracker.process(frame), look)
used = {}
for o in gc.get_objects():
    if isinstance(o, CPUDispatcher) and o.py_func.__module__.partition(".")[0] in ("nnlite", "tracker"):
        if o.signatures:
            used[o.py_func.__module__ + "." + o.py_func.__qualname__] = len(o.signatures)
print(json.dumps(used))
"""


@pytest.mark.skipif(not HAVE_NUMBA or JIT_DISABLED, reason="counts Numba specialisations")
def test_a_run_compiles_one_specialisation_per_kernel():
    used = _run_python(_ONE_SPECIALISATION, str(MODEL), str(ROOT / "tracker" / "data" / "sample.mp4"))
    assert any("roi_conv" in name for name in used) and any("blend" in name for name in used), used
    assert {"tracker.lighting._skin_sums_nb", "tracker.blend._lab_planes_to_bgr_nb"} <= set(used)
    assert {name: n for name, n in used.items() if n != 1} == {}


_NO_SCIPY = """
import json, sys, threading
import numpy as np
from nnlite.jit import njit, start_compiler_init, wait_compiler_init
start_compiler_init(); wait_compiler_init()
after_init = "scipy.linalg" in sys.modules
other = {}
t = threading.Thread(target=lambda: other.update(ok=bool(__import__("scipy.linalg").linalg)))
t.start(); t.join()                         # other threads import scipy as usual
@njit(cache=False)
def mm(a, b):
    return np.dot(a, b)
a = np.arange(6.0).reshape(2, 3)
print(json.dumps({"after_init": after_init, "other": other.get("ok", False),
                  "dot": bool(np.array_equal(mm(a, a.T), a @ a.T))}))
"""


@pytest.mark.skipif(not HAVE_NUMBA or JIT_DISABLED or importlib.util.find_spec("scipy") is None,
                    reason="needs numba and scipy")
def test_numba_set_up_skips_scipy_linalg_and_linear_algebra_still_compiles():
    res = _run_python(_NO_SCIPY)
    assert res == {"after_init": False, "other": True, "dot": True}


def test_cli_engine_starts_the_helper_on_a_first_run_only(monkeypatch):
    import argparse

    from tracker import cli, precompile

    parser = argparse.ArgumentParser()
    cli.add_look_arguments(parser)
    cli.add_engine_arguments(parser)
    args = parser.parse_args(["--weights", str(MODEL), "--backend", "numpy"])
    started = []
    monkeypatch.setattr(precompile, "start_helper", lambda w, t: started.append((w, t)) or "helper")
    assert cli.build_engine(args).precompile_helper is None and started == []  # NumPy: nothing compiles
    monkeypatch.setattr(precompile, "first_run", lambda landmarker: True)
    engine = cli.build_engine(args)
    assert engine.precompile_helper == "helper" and started == [(MODEL, engine.landmarker.model.threads)]
