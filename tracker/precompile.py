"""Fill an empty Numba cache on the second core while the first frame compiles on the first.

A first run compiles every kernel its first frame needs, one after another in one
process (Numba compiles under a process-wide lock): the detector's and the landmark
model's (~7.5 s on a 2-core EPYC; the detector uses a subset of the landmark model's
kernels), then the makeup's (~4 s). `Tracker.from_weights` starts this module in a
helper process when the cache lacks the landmark model's kernels
(`nnlite.backend.numba_kernels_cached`, a first run): it renders the default look on a
synthetic face, so the makeup kernels are in the cache when the parent's first frame
reaches them (Numba looks in the cache before compiling). Whatever the helper has not
finished by then, the parent compiles too; the kernels are the same either way (Numba
writes each cache file whole, then renames it), so the timing decides only how long
start-up takes. Looks with other products compile their own kernels on first use.

    python -m tracker.precompile
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


def start_helper() -> subprocess.Popen | None:
    """Start `python -m tracker.precompile` in the background; -> the process (None when it
    cannot start).

    It imports this very `tracker` package (its folder first on PYTHONPATH) and inherits
    the environment, so it compiles the same sources into the same cache folder
    (NUMBA_CACHE_DIR, which `nnlite.jit` sets). Its output is discarded.
    """
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        return subprocess.Popen([sys.executable, "-m", "tracker.precompile"], env=env, cwd=root,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m tracker.precompile", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    compile_makeup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
