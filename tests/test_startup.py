"""Start-up on an empty Numba cache: `Tracker.from_weights` starts `tracker.precompile`, a
helper process that compiles the makeup kernels into the same cache, and only then.

Runs in a subprocess with a fresh NUMBA_CACHE_DIR (so the cache is really empty), and
needs two cores (the helper is only started where there is a second one).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnlite.jit import available_cores

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
tracker.warmup()                       # the models' kernels, into the cache
warm = numba_kernels_cached()
again = Tracker.from_weights(sys.argv[1], detector="blaze").precompile_helper
print(json.dumps({"cold": cold, "helper": helper is not None, "rc": rc, "makeup": len(makeup),
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
    assert res["warm"] is True and res["again"] is False


def test_precompile_takes_no_arguments(capsys):
    from tracker import precompile

    with pytest.raises(SystemExit) as exc:
        precompile.main(["extra"])
    assert exc.value.code == 2 and "usage" in capsys.readouterr().err
