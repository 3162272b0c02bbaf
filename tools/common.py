"""What several tools share: the landmark error measures, the benchmarks' machine line, and the
training scripts' learning-rate schedule and per-epoch log.

Errors follow the 300-W convention on 68 points: a face's error is the mean point-to-point
distance divided by the true inter-ocular distance |p36 - p45| (outer eye corners) or the
inter-pupil distance (between the means of points 36-41 and 42-47). Arrays are (..., 68, 2),
any float dtype; the results keep the leading axes and the dtype.
"""
from __future__ import annotations

import csv
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np

#: ../shared/data beside the repository (300w/, detect/), wherever a tool is run from.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: The HELEN training faces (crops with .pts), the tests' and examples' source of real faces.
HELEN_TRAIN = SHARED_DATA / "300w" / "helen" / "trainset"


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """|p36 - p45| of (..., 68, 2) points -> (...)."""
    return np.linalg.norm(points[..., 36, :] - points[..., 45, :], axis=-1)


def inter_pupil(points: np.ndarray) -> np.ndarray:
    """Distance between the eye centres (means of points 36-41 and 42-47), (..., 68, 2) -> (...)."""
    return np.linalg.norm(points[..., 36:42, :].mean(-2) - points[..., 42:48, :].mean(-2), axis=-1)


def point_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Point-to-point distances, (..., L, 2) pairs -> (..., L), in the points' units."""
    return np.linalg.norm(pred - truth, axis=-1)


def nme(pred: np.ndarray, truth: np.ndarray, norm: str = "io") -> np.ndarray:
    """Per-face normalised mean error (a fraction), (..., 68, 2) pairs -> (...).

    norm: "io" divides by the true inter-ocular distance, "ip" by the inter-pupil one.
    NaN where pred is NaN (a frame without a face).
    """
    scale = {"io": inter_ocular, "ip": inter_pupil}[norm](truth)
    return point_errors(pred, truth).mean(-1) / scale


def cpu_name() -> str:
    """The CPU model as the OS names it (platform.processor() is often empty on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line for a benchmark's report: CPU, cores, OS, load, library versions, thread settings.

    Shared machines are noisy, so the load average at the time of the run goes with every figure.
    """
    import cv2
    import numba

    load = "%.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else "n/a"
    return (f"{cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
            f"load average {load}; Python {platform.python_version()}, NumPy {np.__version__}, "
            f"Numba {numba.__version__}, OpenCV {cv2.__version__}; "
            f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, "
            f"OpenCV threads {cv2.getNumThreads()}")


def split_passthrough(argv) -> tuple[list[str], list[str]]:
    """(this tool's arguments, the ones after "--") of argv (default: sys.argv[1:]): the flags a
    tool hands on to the tools.landmarks.train runs it starts."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        return argv, []
    i = argv.index("--")
    return argv[:i], argv[i + 1:]


def cosine_lr(base: float, epoch: int, epochs: int, warmup: int) -> float:
    """Learning rate of `epoch` (0-based): linear warm-up over `warmup` epochs, then one cosine cycle."""
    return base * (min(1.0, (epoch + 1) / max(warmup, 1)) *
                   0.5 * (1 + math.cos(math.pi * epoch / epochs)))


class EpochLog:
    """A run's log.csv, one row per scored epoch, each row echoed to stdout as `key=value` pairs.

    The header is written when the file does not exist yet, so a resumed run appends to its log.
    Floats are written to 6 significant digits and printed to 4.
    """

    def __init__(self, path: Path, fields: list[str]):
        self.path, self.fields = Path(path), list(fields)
        if not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)

    def write(self, row: dict) -> None:
        """Append `row` (a value for every field) and print the fields it has."""
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]
                                    for k in self.fields])
        print(" ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                       for k in self.fields if k in row), flush=True)
