"""Crop geometry shared by training and run time: frame <-> aligned square crop.

A crop is described by a centre, a side length and a roll angle in frame pixels.
`crop_matrix` turns that into a 2x3 affine M (frame -> crop); the crop and the
matrix travel together, so mapping model output back is one call: `to_frame`.

Coordinates are 0-based pixel centres everywhere: pixel (row i, col j) is at
(x=j, y=i); the square [c - side/2, c + side/2] (pixel edges) fills the crop
edges [-0.5, size - 0.5].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# Eye contours in the 68-point markup (0-based); their centroids define roll.
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)


@dataclass(frozen=True)
class CropBox:
    """A square, possibly rotated crop region in frame pixels.

    cx, cy : centre (pixel-centre coordinates); side : edge length in pixels;
    angle : roll in radians (positive = the face's x axis points down-right,
    i.e. the clockwise rotation seen on screen, y axis pointing down).
    """
    cx: float
    cy: float
    side: float
    angle: float = 0.0


def crop_matrix(box: CropBox, size: int) -> np.ndarray:
    """Affine M, float64 (2, 3), mapping frame points to crop pixels (size x size)."""
    s = size / box.side
    c, si = math.cos(box.angle), math.sin(box.angle)
    # q = s * R(-angle) (p - centre) + (size - 1) / 2
    a = np.array([[c, si], [-si, c]]) * s
    t = np.array([(size - 1) / 2.0, (size - 1) / 2.0]) - a @ np.array([box.cx, box.cy])
    return np.hstack([a, t[:, None]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix, float64 (2, 3).

    The 2x2 part by its adjugate over the determinant: a tenth of np.linalg.inv's
    time on one matrix per face per frame (the tracker maps every result back).
    """
    (a, b, tx), (c, d, ty) = m.tolist()
    det = a * d - b * c
    if det == 0.0:
        raise np.linalg.LinAlgError("singular affine matrix")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]])


def apply_affine(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points (..., 2); returns float32 of the same shape."""
    p = np.asarray(points, dtype=np.float64)
    return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)


def to_frame(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Map crop-pixel points (..., 2) back to frame pixels through crop matrix m."""
    return apply_affine(points, invert_affine(m))


def warp_crop(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Sample the crop: uint8 (H, W, 3) frame -> uint8 (size, size, 3).

    Bilinear; outside the frame the border is replicated, the same at training
    and at run time, so the model never sees a hard black edge it did not learn.
    """
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def landmark_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """Axis-aligned bounding box (x0, y0, x1, y1) of points (N, 2)."""
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def box_to_crop(box, scale: float, angle: float = 0.0) -> CropBox:
    """Square crop around an (x0, y0, x1, y1) landmark box, side = scale * longer edge."""
    x0, y0, x1, y1 = box
    side = scale * max(x1 - x0, y1 - y0, 1.0)
    return CropBox((x0 + x1) / 2.0, (y0 + y1) / 2.0, side, angle)


def roll_angle(points: np.ndarray) -> float:
    """Head roll in radians from the eye centroids of 68 landmarks (0 = level eyes)."""
    d = points[_RIGHT_EYE].mean(axis=0) - points[_LEFT_EYE].mean(axis=0)
    return float(math.atan2(d[1], d[0]))


def landmarks_to_crop(points: np.ndarray, scale: float) -> CropBox:
    """Upright crop for 68 landmarks (N, 2) in frame pixels: roll removed.

    The box is the landmark box measured in the face's own (de-rolled) axes,
    so a rolled face gets the same crop as the upright one, rotated.
    """
    angle = roll_angle(points)
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, s], [-s, c]])  # frame -> face axes
    centre = points.mean(axis=0)
    local = (points - centre) @ rot.T
    x0, y0, x1, y1 = landmark_box(local)
    mid_local = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    mid = centre + mid_local @ rot  # face axes -> frame
    side = scale * max(x1 - x0, y1 - y0, 1.0)
    return CropBox(float(mid[0]), float(mid[1]), float(side), angle)
