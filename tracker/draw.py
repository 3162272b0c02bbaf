"""Landmark overlay: points, landmark box and track id. Drawing only, no inference."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracker.types import Face

_SHIFT = 4  # fractional bits: points are drawn at sub-pixel positions


@dataclass(frozen=True)
class DrawSpec:
    """How to draw faces. Colours are BGR; a colour of None skips that element."""
    point_color: tuple[int, int, int] | None = (0, 255, 0)
    point_radius: float = 2.0
    box_color: tuple[int, int, int] | None = (255, 160, 0)
    box_thickness: int = 1
    label_color: tuple[int, int, int] | None = (255, 160, 0)
    label_scale: float = 0.5


def draw_landmarks(image: np.ndarray, faces: list[Face], spec: DrawSpec = DrawSpec()) -> None:
    """Draw faces on image (uint8 (H, W, 3) BGR) in place; copy it first to keep the original."""
    one = 1 << _SHIFT
    for face in faces:
        if spec.box_color is not None:
            b = face.box
            cv2.rectangle(image, (round(b.x0 * one), round(b.y0 * one)), (round(b.x1 * one), round(b.y1 * one)),
                          spec.box_color, spec.box_thickness, cv2.LINE_AA, _SHIFT)
        if spec.point_color is not None:
            radius = max(1, round(spec.point_radius * one))
            for x, y in np.asarray(face.landmarks, dtype=np.float64):
                cv2.circle(image, (round(x * one), round(y * one)), radius, spec.point_color,
                           -1, cv2.LINE_AA, _SHIFT)
        if spec.label_color is not None:
            org = (int(face.box.x0), max(int(face.box.y0) - 4, 12))
            cv2.putText(image, f"#{face.track_id} {face.score:.2f}", org, cv2.FONT_HERSHEY_SIMPLEX,
                        spec.label_scale, spec.label_color, 1, cv2.LINE_AA)
