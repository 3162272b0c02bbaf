"""What every face detector provides, and the box calibration they share.

A detector finds faces in a whole frame and returns them as `Box`es in the
68-landmark box convention (the bounding box of the landmarks, jaw to brows),
so `tracker.geometry.box_to_crop(box.as_tuple(), landmarker.crop_scale)` gives
the same crop for every detector. A detector whose native boxes follow another
convention maps them with a `BoxCalibration` fitted on labelled photos.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from tracker.types import Box


@runtime_checkable
class Detector(Protocol):
    """A face detector: whole BGR frame -> landmark boxes."""

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        """Faces in a uint8 (H, W, 3) BGR frame, best score first; [] when none."""
        ...


def warmup(detector: Detector) -> float:
    """Compile (or load from Numba's cache) a detector's kernels now: its own `warmup()`
    when it has one, else one detection on a blank frame; -> seconds taken."""
    start = time.perf_counter()
    if callable(getattr(detector, "warmup", None)):
        detector.warmup()
    else:
        detector.detect(np.zeros((240, 320, 3), np.uint8))
    return time.perf_counter() - start


@dataclass(frozen=True)
class BoxCalibration:
    """Linear map from a detector's native box to the landmark box.

    With native centre (cx, cy) and size (w, h):
    landmark centre = (cx + dx * w, cy + dy * h), size = (sx * w, sy * h).
    """
    dx: float = 0.0
    dy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def apply(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """Native (x0, y0, x1, y1) -> landmark (x0, y0, x1, y1)."""
        w, h = x1 - x0, y1 - y0
        cx = (x0 + x1) / 2.0 + self.dx * w
        cy = (y0 + y1) / 2.0 + self.dy * h
        hw, hh = self.sx * w / 2.0, self.sy * h / 2.0
        return (cx - hw, cy - hh, cx + hw, cy + hh)

    @classmethod
    def fit(cls, native: np.ndarray, target: np.ndarray) -> "BoxCalibration":
        """Fit on matched pairs: native, target float (N, 4) boxes (x0, y0, x1, y1).

        Medians of the per-pair offsets and ratios, so a few bad matches do not
        pull the fit.
        """
        native = np.asarray(native, dtype=np.float64)
        target = np.asarray(target, dtype=np.float64)
        if native.shape != target.shape or native.ndim != 2 or native.shape[1] != 4 or len(native) == 0:
            raise ValueError(f"need matched (N, 4) boxes, got {native.shape} and {target.shape}")
        w = native[:, 2] - native[:, 0]
        h = native[:, 3] - native[:, 1]
        dx = ((target[:, 0] + target[:, 2]) - (native[:, 0] + native[:, 2])) / 2.0 / w
        dy = ((target[:, 1] + target[:, 3]) - (native[:, 1] + native[:, 3])) / 2.0 / h
        sx = (target[:, 2] - target[:, 0]) / w
        sy = (target[:, 3] - target[:, 1]) / h
        return cls(float(np.median(dx)), float(np.median(dy)),
                   float(np.median(sx)), float(np.median(sy)))
