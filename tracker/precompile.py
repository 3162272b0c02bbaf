"""Fill an empty Numba cache on the second core while the first frame compiles on the first.

A first run compiles every kernel its first frame needs, one after another in one
process (Numba compiles under a process-wide lock). Measured on a 2-core EPYC with two
other busy processes (seconds of one core): the kernels the detector and the landmark
model share (the GEMM convolution 13, the inverted residual 11), the landmark model's
heads (RoI align + group conv 7.6, soft-argmax 3.5, the score 0.4-0.7), then the
makeup's. `Tracker.from_weights` starts this module in a helper process when the cache
lacks the landmark model's kernels (`nnlite.backend.numba_kernels_cached`, a first
run): it compiles the heads (`TwoStageModel.warmup_heads`, with the parent's weights and
thread cap, so the same specialisations) and then renders the default look on a
synthetic face, while the parent compiles the shared kernels and then the render's last
kernels, last first (`compile_makeup_tail`), so the two meet in the middle of the render
(measured on the quiet 2-core EPYC, build to first rendered frame: 10.5-11.1 s with the
parent waiting for the helper's whole render, 8.3-9.2 s meeting in the middle). What one
process has cached, the other loads when it reaches it (Numba looks in the cache before
compiling); what both reach at once, both compile; the kernels are the same
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


def compile_makeup_tail(size: tuple[int, int] = (640, 480)) -> None:
    """The makeup kernels a render calls last, called directly, last first, on a synthetic
    region: Lab back to BGR, the blend, the opaque shading, the smoothed lightness, the
    statistics and the light (a render calls the masks' curves, Lab and the mouth first).

    On a first run the parent compiles these once its models are ready, while the helper
    renders the default look from its start: each process loads what the other has
    already cached, so they meet in the middle instead of the parent waiting for the
    helper's whole render. The calls go through the same public functions a render uses,
    with the same dtypes and layouts (a view of the frame where a render passes one), so
    they compile the same specialisations (tested: a render afterwards compiles nothing
    these did). size : (width, height) of the frame.
    """
    from tracker.blend import lab_planes_stats, lab_planes_to_bgr, tint_lab_planes
    from tracker.lighting import face_light, opaque_shading, smooth_lightness
    from tracker.makeup import DEFAULT_LOOK, load_look, tint_params
    from tracker.raster import Mask

    w, h = size
    frame = np.full((h, w, 3), 128, np.uint8)
    x0, y0, side = w // 4, h // 4, min(w, h) // 2  # the face's rectangle, as a view
    lab = np.empty((3, side, side), np.float32)
    lab[0], lab[1], lab[2] = 60.0, 12.0, 16.0
    yy, xx = np.mgrid[0:side - 8, 0:side - 8].astype(np.float32)
    weights = np.clip(1.0 - np.hypot(xx / (side / 2) - 1, yy / (side / 2) - 1), 0.0, 1.0)
    mask = Mask(weights.astype(np.float32), x0 + 4, y0 + 4)
    dy, dx = mask.y0 - y0, mask.x0 - x0
    touched = np.zeros((side, side), np.uint8)
    kind, product = next(iter(load_look(DEFAULT_LOOK).products()))
    stats = np.array([60.0, 5.0, 12.0, 16.0], np.float32)
    smooth = np.full(mask.data.shape, 60.0, np.float32)
    lab_planes_to_bgr(lab, touched, frame[y0:y0 + side, x0:x0 + side])
    tint_lab_planes(lab, mask.data, tint_params(kind, product, stats, 0.5), touched, dy, dx,
                    smooth)
    opaque_shading(smooth, mask.data)
    smooth_lightness(lab, mask.data, dy, dx, 6.0)
    lab_planes_stats(lab, mask.data, dy, dx)
    face_light(frame, mask)


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
