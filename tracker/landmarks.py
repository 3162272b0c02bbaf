"""The landmark model wrapper: frame + crop boxes -> 68 landmarks in frame pixels.

frame -> aligned crop (tracker.geometry, matrix kept) -> normalise -> nnlite
two-stage model -> points in crop pixels -> back to the frame through the
crop's own matrix.

`load_landmarker(weights, ...)` builds a `Landmarker` with errors that name the
file and the setting (`tracker.errors.InputError`): what the CLIs, the batch
workers, the web engine and `Tracker.from_weights` use.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from nnlite.model import TwoStageModel
from tracker.errors import InputError
from tracker.geometry import CropBox, apply_affine, crop_matrix, invert_affine, warp_crop
from tracker.resources import resource, shipped_model_names, shipped_weights

DEFAULT_WEIGHTS = resource("weights", "demo.h5")


@dataclass(frozen=True)
class LandmarkResult:
    """One face: points, coarse (stage-1) points, float32 (68, 2) frame pixels; score in [0, 1]."""
    points: np.ndarray
    coarse: np.ndarray
    score: float


class Landmarker:
    """Runs the landmark model on crops of a frame.

    The crop geometry (box_scale) and the input normalisation come from the
    weights file's config, the same values training used.

    Args:
        weights: the HDF5 weights file, or a shipped model's name ("demo", the
            default, "lite" or "full"), found wherever the package is installed.
        flip_average: also run each crop mirrored and average the two results
            (the mirrored points mapped back through the file's "flip"
            permutation): 2-3% lower error on our validation faces for twice
            the model time; for still images, where latency matters less.
        backend: "numba", "numpy" or None for the default (Numba when it can be
            imported; see `nnlite.backend`).
        threads: most threads per call: caps Numba's parallel kernels and, when
            given, sets OpenCV's thread count (`cv2.setNumThreads`, process-wide).
            None: Numba threads capped at one core fewer than available
            (1 to 4), OpenCV unchanged.
    """

    def __init__(self, weights=DEFAULT_WEIGHTS, backend: str | None = None, threads: int | None = None,
                 flip_average: bool = False):
        weights = shipped_weights(weights)
        self.model = TwoStageModel.load(weights, backend=backend, threads=threads)
        self.threads = self.model.threads
        if threads is not None:
            cv2.setNumThreads(threads)
        cfg = self.model.config
        self.size = self.model.input_size
        self.crop_scale = float(cfg["crop"]["box_scale"])
        inp = cfg["input"]
        self._mean = np.float32(inp["mean"])
        self._inv_std = np.float32(1.0 / inp["std"])
        self._rgb = inp.get("channels", "bgr") == "rgb"
        self.flip_average = bool(flip_average)
        self._flip = None
        if self.flip_average:
            flip = cfg.get("flip")
            if flip is None or sorted(flip) != list(range(int(cfg["num_landmarks"]))):
                raise ValueError(f"{weights}: no landmark flip permutation in the weights config "
                                 "(re-export it with tools.landmarks.export), so flip_average is not available")
            self._flip = np.asarray(flip, np.intp)

    def crops(self, frame_bgr: np.ndarray, boxes: list[CropBox]):
        """-> (float32 (N, S, S, 3) model input, list of 2x3 crop matrices)."""
        mats = [crop_matrix(b, self.size) for b in boxes]
        x = np.empty((len(boxes), self.size, self.size, 3), np.float32)
        for i, m in enumerate(mats):
            patch = warp_crop(frame_bgr, m, self.size)
            if self._rgb:
                patch = patch[..., ::-1]
            # In place: the same two float32 roundings as (patch - mean) * inv_std, no temporary.
            np.subtract(patch, self._mean, out=x[i], dtype=np.float32)
            np.multiply(x[i], self._inv_std, out=x[i])
        return x, mats

    def run(self, frame_bgr: np.ndarray, boxes: list[CropBox]) -> list[LandmarkResult]:
        """Landmarks for each crop box of one uint8 BGR frame (H, W, 3), in the boxes' order
        (the interface `tracker.tracking.Tracker` uses)."""
        if not boxes:
            return []
        x, mats = self.crops(frame_bgr, boxes)
        if self.flip_average:
            return self._results(mats, *self._forward_pair(x)[1])
        out = self.model.forward(x)
        return self._results(mats, out.refined, out.coarse, out.peaks.mean(axis=1))

    def run_pair(self, frame_bgr: np.ndarray, boxes: list[CropBox]
                 ) -> tuple[list[LandmarkResult], list[LandmarkResult]]:
        """(plain, flip-averaged) landmarks for each crop box, from one batch of the crops and
        their mirror images; needs ``flip_average=True``. `run` returns the second list."""
        if self._flip is None:
            raise ValueError("run_pair needs a Landmarker made with flip_average=True")
        if not boxes:
            return [], []
        x, mats = self.crops(frame_bgr, boxes)
        plain, averaged = self._forward_pair(x)
        return self._results(mats, *plain), self._results(mats, *averaged)

    def _forward_pair(self, x):
        """float32 (N, S, S, 3) crops -> ((refined, coarse, score) plain, the same
        flip-averaged): points (N, L, 2) in crop pixels, scores (N,); one batch of 2N."""
        n = len(x)
        out = self.model.forward(np.concatenate([x, x[:, :, ::-1]]))
        plain = (out.refined[:n], out.coarse[:n], out.peaks[:n].mean(axis=1))
        refined = (out.refined[:n] + self._unmirror(out.refined[n:])) / 2
        coarse = (out.coarse[:n] + self._unmirror(out.coarse[n:])) / 2
        score = (plain[2] + out.peaks[n:].mean(axis=1)) / 2
        return plain, (refined, coarse, score)

    @staticmethod
    def _results(mats, refined, coarse, score) -> list[LandmarkResult]:
        """Crop-pixel points (N, L, 2) and scores (N,) -> results in frame pixels."""
        back = [invert_affine(m) for m in mats]  # one inverse per crop for both point sets
        return [LandmarkResult(apply_affine(refined[i], b), apply_affine(coarse[i], b),
                               float(score[i])) for i, b in enumerate(back)]

    def _unmirror(self, points: np.ndarray) -> np.ndarray:
        """float32 (N, L, 2) points of mirrored crops -> the same landmarks in the crops."""
        out = points[:, self._flip].copy()
        out[..., 0] = self.size - 1 - out[..., 0]
        return out

    def warmup(self) -> float:
        """Run the model once on a dummy crop, so the first real frame does not pay for
        compiling (or loading from Numba's cache) the kernels; -> seconds taken. Call it
        at start-up in servers."""
        return self.model.warmup()


def check_backend(backend: str | None) -> str:
    """The kernel backend `backend` (or $NNLITE_BACKEND, or the default) resolves to;
    InputError naming the setting when it is unknown or unavailable."""
    from nnlite.backend import resolve_backend

    try:
        return resolve_backend(backend)
    except (ValueError, RuntimeError) as exc:
        raise InputError(str(exc)) from None


def load_landmarker(weights: str | os.PathLike = DEFAULT_WEIGHTS, backend: str | None = None,
                    threads: int | None = None, flip_average: bool = False) -> Landmarker:
    """`Landmarker(weights, backend, threads, flip_average)`, errors naming the file.

    weights : a weights file or a shipped model's name ("demo", "lite", "full");
    backend : "numba", "numpy" or None (Numba when it can be imported);
    threads : thread cap for the model and OpenCV (None: see `Landmarker`);
    flip_average : average each face with its mirrored crop (see `Landmarker`).
    Raises InputError for a missing, unreadable or invalid weights file or a bad backend.
    """
    path = shipped_weights(weights)
    if path.is_dir():
        raise InputError(f"landmark weights {path} is a folder, not a weights file")
    if not path.is_file():
        names = ", ".join(shipped_model_names())
        raise InputError(f"landmark weights not found: {path} (pass a weights file or a shipped "
                         f"model name: {names})")
    backend = check_backend(backend)
    try:
        return Landmarker(path, backend=backend, threads=threads, flip_average=flip_average)
    except (OSError, ValueError, KeyError) as exc:  # nnlite's WeightsError is a ValueError
        where = "" if str(path) in str(exc) else f" {path}"
        raise InputError(f"cannot load landmark weights{where}: {exc}") from exc
