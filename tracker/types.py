"""Result types shared by detection, tracking, drawing and rendering.

Every API returns ``list[Face]`` (or ``list[Box]`` for detectors), empty when
there is no face; never ``None``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in frame pixels (0-based pixel centres) with a score in [0, 1].

    Detectors return boxes in the 68-landmark box convention: the bounding box
    of the face's landmarks, jaw to brows (no forehead).
    """
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def as_tuple(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1), the form tracker.geometry takes."""
        return (self.x0, self.y0, self.x1, self.y1)

    def iou(self, other: "Box") -> float:
        """Intersection over union with another box (0 when either is empty)."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        union = self.width * self.height + other.width * other.height - inter
        return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True, slots=True, eq=False)
class Face:
    """One tracked face in one frame.

    box : Box of the landmarks (score = the landmark score);
    landmarks : float32 (68, 2), frame pixels, 0-based, 68-point markup;
    score : landmark model confidence in [0, 1];
    track_id : stable id of the track, increasing over the tracker's life.

    Compared by identity (an ndarray field has no single truth value).
    """
    box: Box
    landmarks: np.ndarray
    score: float
    track_id: int


Render = Callable[[np.ndarray, "list[Face]"], np.ndarray]
"""A renderer: (uint8 BGR frame (H, W, 3), faces) -> a new frame of the same shape; the input is not drawn on."""
