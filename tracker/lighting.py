"""The light on a face, estimated from the face itself, so that makeup is lit like the photo.

A product is a layer of its colour over the skin, lit by the scene (`tracker.blend`). Two
things about the light are needed, and both come from the face:

- the light's colour and overall level, from the skin: `face_light` divides the skin's mean
  colour (linear RGB, under the foundation mask) by a reference skin's, `SKIN_REFERENCE_LAB`
  (the median skin of 300-W's faces with skin L 60-75: a normally exposed face). Light (1,
  1, 1) is a neutral, normally exposed scene: there a product looks like its swatch. Darker
  photos give a dimmer light, a warm white balance a warmer one; the estimate scales with
  the photo in linear light, so makeup rendered on a darkened photo equals the made-up
  photo darkened (exposure and casts commute with the makeup).
- the local shading under each product, from that surface (lips, skin, lids...):
  `smooth_lightness`, the mask-weighted Gaussian mean of L. Relative to its mean over the
  product it says where the surface is lit more or less (the lower lip catching light);
  L minus it is the fine texture (lip lines, pores), kept on top of the product.

Layout: uint8 BGR frames (H, W, 3); Lab planes float32 (3, H, W) as in `tracker.blend`.
"""
from __future__ import annotations

import cv2
import numpy as np

from tracker.colors import SRGB_TO_LINEAR_LUT, XYZ_FROM_LINEAR_RGB, lab_f, lab_f_inv

SKIN_REFERENCE_LAB = (67.0, 13.0, 15.5)
SAMPLES = 4096  # about this many skin pixels are averaged (a regular subsample of the mask)


def lab_to_linear_bgr(lab) -> np.ndarray:
    """CIELAB (3,) -> linear-light B, G, R float64 (3,), not clipped."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[0] + 16.0) / 116.0
    xyz = lab_f_inv(np.array([fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0]))
    return np.linalg.solve(XYZ_FROM_LINEAR_RGB, xyz)[::-1]


SKIN_REFERENCE_LINEAR = lab_to_linear_bgr(SKIN_REFERENCE_LAB)


def face_light(frame: np.ndarray, skin) -> np.ndarray:
    """The light on a face: linear B, G, R gains float64 (3,), (1, 1, 1) for a neutral,
    normally exposed one.

    frame : uint8 BGR (H, W, 3); skin : `tracker.masks.Mask` of the face's skin (foundation's
    mask). The skin's mask-weighted mean linear colour over about `SAMPLES` pixels (a regular
    subsample), divided by the reference skin's. (1, 1, 1) when the mask is empty.
    """
    h, w = skin.data.shape
    step = max(int(np.sqrt(h * w / SAMPLES)), 1)
    wt = skin.data[::step, ::step].astype(np.float64)
    total = wt.sum()
    if total <= 0.0:
        return np.ones(3)
    pix = frame[skin.y0:skin.y0 + h:step, skin.x0:skin.x0 + w:step]
    mean = np.tensordot(wt, SRGB_TO_LINEAR_LUT[pix], axes=([0, 1], [0, 1])) / total
    return np.maximum(mean, 1e-5) / SKIN_REFERENCE_LINEAR


def smooth_lightness(lab: np.ndarray, mask: np.ndarray, y0: int, x0: int, sigma: float) -> np.ndarray:
    """The surface's local mean lightness under a mask: float32 (h, w).

    lab : float32 (3, H, W) planes; mask : float32 (h, w) weights placed at (y0, x0) in lab;
    sigma : Gaussian width in pixels. Mask-weighted (normalised convolution), so the skin
    around the lips does not lighten the lips' edge; about 0 where the mask's whole
    neighbourhood has no weight (nothing is blended there). A sigma of 4 pixels or more is blurred on a grid 2-4x
    coarser and brought back bilinearly (shading is smooth at that scale).
    """
    h, w = mask.shape
    lum = lab[0, y0:y0 + h, x0:x0 + w]
    if sigma < 0.3 or mask.size == 0:
        return np.ascontiguousarray(lum)
    num, den = lum * mask, mask
    step = min(int(sigma / 2.0), 4)  # wide shading: blurred on a coarser grid (cheaper, alike)
    if step >= 2 and min(h, w) >= 4 * step:
        # padded to whole cells, so that the area resize takes its fast integer-ratio path
        pad = dict(top=0, bottom=(-h) % step, left=0, right=(-w) % step,
                   borderType=cv2.BORDER_REPLICATE)
        small = (-(-w // step), -(-h // step))
        num = cv2.resize(cv2.copyMakeBorder(num, **pad), small, interpolation=cv2.INTER_AREA)
        den = cv2.resize(cv2.copyMakeBorder(den, **pad), small, interpolation=cv2.INTER_AREA)
        sigma = np.sqrt(max(sigma * sigma - 0.25 * step * step, 0.09)) / step
    num = cv2.GaussianBlur(num, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    den = cv2.GaussianBlur(den, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    if num.shape != (h, w):
        full = (num.shape[1] * step, num.shape[0] * step)
        num = cv2.resize(num, full, interpolation=cv2.INTER_LINEAR)[:h, :w]
        den = cv2.resize(den, full, interpolation=cv2.INTER_LINEAR)[:h, :w]
    # Both blurs are the same linear filter of L * mask and mask, so num <= 100 * den: the
    # ratio stays in L's range even where den is tiny (and the mask, hence the weight, too).
    return np.ascontiguousarray(num / np.maximum(den, np.float32(1e-6)), dtype=np.float32)


def linear_bgr_to_lab(bgr) -> np.ndarray:
    """Linear-light B, G, R float (3,) -> CIELAB float64 (3,) (inverse of `lab_to_linear_bgr`)."""
    xyz = XYZ_FROM_LINEAR_RGB @ np.asarray(bgr, dtype=np.float64)[::-1]
    f = lab_f(np.maximum(xyz, 0.0))
    return np.array([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])])
