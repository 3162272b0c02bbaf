"""Our single-shot face detector (BlazeFace-like), run by nnlite.

frame -> letterbox (scaled so the longer side fills the model input, placed at
the top-left, padded) -> normalise -> nnlite.detector.SingleShotDetector ->
score threshold + NMS -> boxes mapped back to frame pixels. The model predicts
68-landmark boxes directly (it is trained on them), so no box calibration is
needed. Everything (input size, normalisation, letterbox, anchors, threshold,
NMS) comes from the weights file's config; training: tools/detector/train.py,
export: tools/detector/export.py.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nnlite.detector import SingleShotDetector
from nnlite.weights import WeightsError
from tracker.resources import resource
from tracker.errors import InputError
from tracker.types import Box

DEFAULT_WEIGHTS = resource("weights", "detector.h5")


def letterbox(image: np.ndarray, size: int, pad_value: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Fit an image into a size x size square: scaled to fill it along its longer side,
    placed at the top-left, the rest filled with pad_value.

    Returns (uint8 (size, size, C) canvas, (sx, sy)): a frame point (x, y) (0-based
    pixel centres) lands at ((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5), where sx, sy
    are the resized width / height over the original ones (equal up to rounding).
    Downscaling uses area averaging, upscaling bilinear interpolation.
    """
    h, w = image.shape[:2]
    if h < 1 or w < 1:
        raise ValueError(f"cannot letterbox an empty image of shape {image.shape}")
    scale = size / max(h, w)
    nw, nh = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = image if (nw, nh) == (w, h) else cv2.resize(image, (nw, nh), interpolation=interp)
    canvas = np.full((size, size) + image.shape[2:], pad_value, np.uint8)
    canvas[:nh, :nw] = resized
    return canvas, (nw / w, nh / h)


def boxes_to_frame(boxes: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Undo `letterbox` on boxes (K, 4) x0, y0, x1, y1 -> float64 frame pixels."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    sx, sy = scale
    return (b + 0.5) / np.array([sx, sy, sx, sy]) - 0.5


def boxes_to_input(boxes: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Apply `letterbox` to boxes (K, 4) in frame pixels -> float64 model-input pixels."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    sx, sy = scale
    return (b + 0.5) * np.array([sx, sy, sx, sy]) - 0.5


class BlazeDetector:
    """Single-shot face detector returning 68-landmark boxes with scores in [0, 1].

    Parameters
    ----------
    weights : the nnlite HDF5 file (default weights/detector.h5), config type
        "single_shot_detector".
    backend : "numba", "numpy" or None (nnlite's default).
    threads : most Numba threads per call (None: nnlite's default).
    min_score : boxes scoring below this are dropped before NMS (default: the
        file's score_threshold).
    input_size : side of the square the frame is letterboxed into (default: the
        file's run size, `nnlite.detector.run_size`); larger finds smaller faces.

    Raises tracker.errors.InputError naming the file when it is missing or is not
    a detector nnlite can run.
    """

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, backend: str | None = None,
                 threads: int | None = None, min_score: float | None = None,
                 input_size: int | None = None):
        path = Path(weights)
        if not path.is_file():
            raise InputError(f"face detector weights not found: {path} (train with "
                             "tools/detector/train.py, export with tools/detector/export.py, "
                             "or use --detector cascade)")
        try:
            self.model = SingleShotDetector.load(path, backend=backend, threads=threads,
                                                 input_size=input_size)
            cfg = self.model.config
            inp = cfg["input"]
            self.size = self.model.input_size
            self._mean = np.float32(inp["mean"])
            self._inv_std = np.float32(1.0 / float(inp["std"]))
            self._rgb = inp.get("channels", "bgr") == "rgb"
            lb = cfg["letterbox"]
            if lb.get("align", "top_left") != "top_left":
                raise WeightsError(f"{path}: letterbox align {lb.get('align')!r} is not supported")
            self.pad_value = int(round(float(lb["pad_value"])))
        except (WeightsError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"cannot use {path} as a face detector: {exc}") from None
        self.min_score = self.model.score_threshold if min_score is None else float(min_score)

    def prepare(self, image_bgr: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """uint8 (H, W, 3) BGR frame -> (float32 (1, S, S, 3) model input, letterbox scale)."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) BGR image, got {image_bgr.dtype} {image_bgr.shape}")
        canvas, scale = letterbox(image_bgr, self.size, self.pad_value)
        if self._rgb:
            canvas = canvas[..., ::-1]
        x = np.empty((1, self.size, self.size, 3), np.float32)
        np.multiply(np.subtract(canvas, self._mean, dtype=np.float32), self._inv_std, out=x[0])
        return x, scale

    def detect_arrays(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Faces as arrays: (float64 (K, 4) x0, y0, x1, y1 frame pixels, float32 (K,) scores)."""
        x, scale = self.prepare(image_bgr)
        boxes, scores = self.model.detect(x, self.min_score)[0]
        return boxes_to_frame(boxes, scale), scores

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        """Faces in a uint8 (H, W, 3) BGR frame as landmark boxes, best score first."""
        boxes, scores = self.detect_arrays(image_bgr)
        return [Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(s))
                for b, s in zip(boxes, scores)]

    def warmup(self) -> float:
        """Compile (or load from Numba's cache) the kernels now; -> seconds taken."""
        return self.model.warmup()
