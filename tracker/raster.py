"""Rasterising soft masks: the `Mask` type (a float32 rectangle placed in the frame) and the
`Canvas` that anti-aliased polygons are filled, feathered and floored on, at full or half
resolution (`tracker.masks` builds every makeup mask with them).

Polygons are in frame pixels and rasterised with 1/16-pixel precision (`cv2.fillPoly(...,
shift=4)`, anti-aliased). Values below `MASK_FLOOR` are set to exactly 0 (`floor_mask`), so
"outside the mask" is a crisp set.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

MASK_FLOOR = 1.0 / 512.0
_SHIFT = 4  # fillPoly fractional bits: 1/16 pixel
_SCALE = float(1 << _SHIFT)


@dataclass(frozen=True)
class Mask:
    """A soft mask over the frame rectangle [y0, y0 + h) x [x0, x0 + w).

    data : float32 (h, w) in [0, 1]; x0, y0 : its top-left corner in frame pixels.
    """
    data: np.ndarray
    x0: int
    y0: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the frame this mask covers."""
        h, w = self.data.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)

    @property
    def empty(self) -> bool:
        """True when the mask covers no pixel or is zero everywhere."""
        d = self.data
        if d.size == 0:
            return True
        if d.ndim == 2 and d.dtype == np.float32:
            return not cv2.hasNonZero(d)  # stops at the first non-zero: ~6x faster than any()
        return not bool(d.any())

    def to_frame(self, shape) -> np.ndarray:
        """The mask pasted into a zero float32 (H, W) frame of the given shape."""
        full = np.zeros(tuple(shape[:2]), dtype=np.float32)
        full[self.slices] = self.data
        return full


class Canvas:
    """A rectangle of the frame to rasterise into (frame coords -> local pixels).

    down : 1 or 2, the working grid's step in frame pixels. Working pixel k has its centre
    at frame x0 + down * k + (down - 1) / 2, so the grid is anchored to the rectangle (it
    moves with the face by whole pixels, and the mask with it). `mask()` brings the result
    back to full resolution with bilinear interpolation.
    """

    def __init__(self, rect, down: int = 1):
        x0, y0, x1, y1 = rect
        self.x0, self.y0 = x0, y0
        self.shape = (max(y1 - y0, 0), max(x1 - x0, 0))
        self.down = int(down)
        h, w = self.shape
        self.work_shape = (-(-h // self.down), -(-w // self.down)) if h and w else (0, 0)

    def fill_u8(self, polygons, value: int = 255, img: np.ndarray | None = None) -> np.ndarray:
        """Anti-aliased filled polygons (frame coords) -> uint8 image at full resolution.

        Drawn into `img` (a new zero image when None), which has the working grid's extent
        in frame pixels (the rectangle, rounded up to whole working pixels).
        """
        if img is None:
            h, w = self.work_shape
            img = np.zeros((h * self.down, w * self.down), dtype=np.uint8)
        if img.size and len(polygons):
            off = np.array([self.x0, self.y0], dtype=np.float64)
            if isinstance(polygons, np.ndarray):  # (k, n, 2): k polygons of n points
                pts = list(np.round((polygons - off) * _SCALE).astype(np.int32))
            else:
                pts = [np.round((np.asarray(q) - off) * _SCALE).astype(np.int32) for q in polygons]
            cv2.fillPoly(img, pts, int(value), cv2.LINE_AA, _SHIFT)
        return img

    def fill_sum(self, layers: np.ndarray) -> np.ndarray:
        """The sum of `fill_u8` of each layer, uint16 (value 255 each): layers is (k, p, n, 2),
        k layers of p polygons of n points (frame coords). Rounded to fillPoly's fixed
        point in one go, drawn into one reused image."""
        layer = self.fill_u8([])
        total = np.zeros(layer.shape, np.uint16)
        if layer.size:
            off = np.array([self.x0, self.y0], dtype=np.float64)
            for q in np.round((layers - off) * _SCALE).astype(np.int32):
                layer[...] = 0
                cv2.fillPoly(layer, list(q), 255, cv2.LINE_AA, _SHIFT)
                total += layer
        return total

    def to_work(self, img: np.ndarray, scale: float) -> np.ndarray:
        """A full-resolution `fill_u8` image (or a sum of them) -> float32 working grid,
        times `scale`: averaged over down x down blocks (as rasterising at the coarse
        resolution would, but with OpenCV's full-resolution edges)."""
        if self.down > 1 and img.size:
            h, w = self.work_shape
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return to_float(img, scale)

    def fill(self, polygons, value: float = 1.0) -> np.ndarray:
        """Anti-aliased filled polygons (frame coords) -> float32 working grid in [0, value]."""
        return self.to_work(self.fill_u8(polygons), value / 255.0)

    def blur(self, m: np.ndarray, sigma: float) -> np.ndarray:
        """Gaussian blur of a working-grid image by `sigma` frame pixels.

        On the half-resolution grid the coverage box (variance d^2 / 12) and the bilinear
        upsampling (d^2 / 6) already spread by d^2 / 4: the Gaussian supplies the rest.
        """
        return blur(m, self.work_sigma(sigma))

    def work_sigma(self, sigma: float) -> float:
        """The Gaussian sigma, in working pixels, that `blur` applies for `sigma` frame pixels."""
        d = self.down
        return float(np.sqrt(max(sigma * sigma - 0.25 * d * d, 0.0)) / d) if d > 1 else sigma

    def sub(self, points: np.ndarray, margin: int) -> tuple[Canvas, slice, slice]:
        """The canvas over the working pixels within `margin` of the points' bounding box
        (frame coords (n, 2)), clipped to this one, on the same grid -> (canvas, rows,
        cols), the slices of this canvas's working grid it covers."""
        d = self.down
        h, w = self.work_shape
        (lx, ly), (hx, hy) = points.min(axis=0), points.max(axis=0)
        j0 = min(max(int(np.floor((lx - self.x0) / d)) - margin, 0), w)
        i0 = min(max(int(np.floor((ly - self.y0) / d)) - margin, 0), h)
        j1 = max(min(int(np.ceil((hx - self.x0) / d)) + 1 + margin, w), j0)
        i1 = max(min(int(np.ceil((hy - self.y0) / d)) + 1 + margin, h), i0)
        rect = (self.x0 + d * j0, self.y0 + d * i0, self.x0 + d * j1, self.y0 + d * i1)
        return Canvas(rect, d), slice(i0, i1), slice(j0, j1)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame x, y coordinates of the working pixel centres, float32 (1, w) and (h, 1)."""
        h, w = self.work_shape
        d = self.down
        return (np.arange(w, dtype=np.float32)[None, :] * d + np.float32(self.x0 + 0.5 * (d - 1)),
                np.arange(h, dtype=np.float32)[:, None] * d + np.float32(self.y0 + 0.5 * (d - 1)))

    def upsample(self, data: np.ndarray) -> np.ndarray:
        """A working-grid image at full resolution (bilinear): a new contiguous float32
        array of self.shape."""
        if self.down == 1 or data.size == 0:
            return data
        h, w = self.shape
        h2, w2 = data.shape
        up = cv2.resize(data, (w2 * self.down, h2 * self.down), interpolation=cv2.INTER_LINEAR)
        if up.shape != (h, w):  # contiguous rows keep the blending kernels vectorised
            up = np.ascontiguousarray(up[:h, :w])
        return up

    def mask(self, data: np.ndarray) -> Mask:
        """The finished Mask from a working-grid image: upsampled, clipped, floored."""
        data = np.asarray(data, dtype=np.float32)
        if self.down > 1 and data.size:
            data = self.upsample(data)  # a new array
            np.minimum(data, np.float32(1.0), out=data)
        else:
            data = np.minimum(data, np.float32(1.0))  # a new array (data may be shared)
        floor_mask(data)  # also every negative value
        return Mask(data, self.x0, self.y0)


def to_float(img: np.ndarray, scale: float) -> np.ndarray:
    """img (any real dtype) as float32 times float32(scale), a new array, in one pass (the
    same values as img.astype(np.float32) * np.float32(scale))."""
    return np.multiply(img, np.float32(scale), dtype=np.float32)


def blur(m: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float32 (h, w) image by sigma pixels (replicated border); the image
    itself when sigma < 0.3 or it is empty."""
    if m.size == 0 or sigma < 0.3:
        return m
    return cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


_FLOOR_BELOW = float(np.nextafter(np.float32(MASK_FLOOR), np.float32(0.0)))  # > this: kept


def floor_mask(data: np.ndarray) -> np.ndarray:
    """Set every value of a float32 (h, w) array below `MASK_FLOOR` (negatives too) to 0, in
    place; returns it. Same as `data[data < MASK_FLOOR] = 0` in one SIMD pass (OpenCV's
    threshold to zero) instead of a boolean mask and a masked store."""
    if data.size:
        cv2.threshold(data, _FLOOR_BELOW, 0.0, cv2.THRESH_TOZERO, dst=data)
    return data
