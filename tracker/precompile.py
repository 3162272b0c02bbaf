"""Fill an empty Numba cache on the second core while the first frame compiles on the first.

A first run compiles every kernel its first frame needs, one after another in one
process (Numba compiles under a process-wide lock). Measured on a 2-core EPYC with two
other busy processes (seconds of one core): the kernels the detector and the landmark
model share (the GEMM convolution 13, the inverted residual 11), the landmark model's
heads (RoI align + group conv 7.6, soft-argmax 3.5, heatmap peak 0.4), then the
makeup's. `Tracker.from_weights` starts this module in a helper process when the cache
lacks the landmark model's kernels (`nnlite.backend.numba_kernels_cached`, a first
run): it compiles the heads (`TwoStageModel.warmup_heads`, with the parent's weights and
thread cap, so the same specialisations) and then renders the default look on a
synthetic face, while the parent compiles the shared kernels; both are in the cache
when the parent reaches them (Numba looks in the cache before compiling). Whatever the
helper has not finished by then, the parent compiles too; the kernels are the same
either way (Numba writes each cache file whole, then renames it), so the timing
decides only how long start-up takes. Looks with other products compile their own
kernels on first use.

    python -m tracker.precompile [--weights W.h5 --threads N]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def compile_makeup(size: tuple[int, int] = (640, 480)) -> None:
    """Render the default look on a synthetic face (the mean shape) on a grey frame.

    size : (width, height) of the frame; any size gives the same kernels.
    """
    from tracker.geometry import landmark_box
    from tracker.makeup import DEFAULT_LOOK, load_look, render
    from tracker.regions import MEAN_SHAPE
    from tracker.types import Box, Face

    w, h = size
    frame = np.full((h, w, 3), 128, np.uint8)
    points = (np.asarray(MEAN_SHAPE, np.float32) * (0.25 * min(w, h)) + [w / 2.0, h / 2.0]).astype(np.float32)
    render(frame, [Face(Box(*landmark_box(points), 1.0), points, 1.0, 0)], load_look(DEFAULT_LOOK))


def compile_heads(weights, threads: int) -> None:
    """Compile the landmark model's head kernels for `weights` at `threads` (Numba backend)."""
    from tracker.landmarks import load_landmarker

    load_landmarker(weights, backend="numba", threads=threads).model.warmup_heads()


def runs_numba(landmarker) -> bool:
    """The landmark model runs nnlite's Numba kernels, compiled (the JIT is on)."""
    from nnlite.jit import JIT_DISABLED

    ops = getattr(getattr(landmarker, "model", None), "ops", None)
    return getattr(ops, "name", None) == "numba" and not JIT_DISABLED


def first_run(landmarker) -> bool:
    """Numba backend, no cached landmark-model kernels (a first run) and a second core."""
    from nnlite.backend import numba_kernels_cached
    from nnlite.jit import available_cores

    return runs_numba(landmarker) and available_cores() >= 2 and not numba_kernels_cached()


def start_if_first_run(landmarker, weights) -> subprocess.Popen | None:
    """`start_helper(weights, the landmarker's threads)` on a first run (`first_run`), else None."""
    if not first_run(landmarker):
        return None
    return start_helper(weights, landmarker.model.threads)


def start_helper(weights=None, threads: int | None = None) -> subprocess.Popen | None:
    """Start `python -m tracker.precompile` in the background; -> the process (None when it
    cannot start).

    weights, threads : the parent's landmark model file and its resolved thread cap (the
    heads are compiled for them); None for the makeup kernels only.

    It imports this very `tracker` package (its folder first on PYTHONPATH) and inherits
    the environment, so it compiles the same sources into the same cache folder
    (NUMBA_CACHE_DIR, which `nnlite.jit` sets). Its output is discarded.
    """
    root = str(Path(__file__).resolve().parents[1])
    args = [] if weights is None or threads is None else \
        ["--weights", os.path.abspath(os.fspath(weights)), "--threads", str(int(threads))]
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        return subprocess.Popen([sys.executable, "-m", "tracker.precompile", *args], env=env, cwd=root,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tracker.precompile", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="landmark model whose head kernels to compile first")
    ap.add_argument("--threads", type=int, default=None, help="the thread cap they run at (default: nnlite's)")
    args = ap.parse_args(argv)
    if args.weights is not None:
        compile_heads(args.weights, args.threads)
    compile_makeup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
