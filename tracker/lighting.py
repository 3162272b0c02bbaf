"""The light on a face, estimated from the face itself, so that makeup is lit like the photo.

A product is a layer of its colour over the skin, lit by the scene (`tracker.blend`). Two
things about the light are needed, and both come from the face:

- the light's colour and overall level, from the skin: `face_light` divides the skin's mean
  colour (linear RGB, under the foundation mask) by a reference skin's, `SKIN_REFERENCE_LAB`
  (the median skin of 300-W's faces with skin L 60-75: a normally exposed face), and keeps
  of that ratio only its level and its warm-cool part (`on_light_locus`). Light (1, 1, 1) is
  a neutral, normally exposed scene: there a product looks like its swatch. Darker photos
  give a dimmer light, a warm white balance a warmer one; the estimate scales with the
  photo in linear light, so makeup rendered on a darkened photo equals the made-up photo
  darkened (exposure and casts commute with the makeup).
- the local shading under each product, from that surface (lips, skin, lids...):
  `smooth_lightness`, the mask-weighted Gaussian mean of L. Relative to its mean where the
  product is opaque (`opaque_shading`) it says where the surface is lit more or less (the
  lower lip catching light, the eyeshadow's fringe leaving the lid); L minus it is the
  fine texture (lip lines, pores, lashes), kept on top of the product.

Layout: uint8 BGR frames (H, W, 3); Lab planes float32 (3, H, W) as in `tracker.blend`.
"""
from __future__ import annotations

import cv2
import numpy as np

from nnlite.config import FASTMATH
from nnlite.jit import HAVE_NUMBA, njit
from tracker.colors import (
    LAB_EPSILON,
    LAB_KAPPA,
    SRGB_TO_LINEAR_LUT,
    XYZ_FROM_LINEAR_RGB,
    lab_f_inv,
)

SKIN_REFERENCE_LAB = (67.0, 13.0, 15.5)
SAMPLES = 4096  # about this many skin pixels are averaged (a regular subsample of the mask)


def lab_to_linear_bgr(lab) -> np.ndarray:
    """CIELAB (3,) -> linear-light B, G, R float64 (3,), not clipped."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[0] + 16.0) / 116.0
    xyz = lab_f_inv(np.array([fy + lab[1] / 500.0, fy, fy - lab[2] / 200.0]))
    return np.linalg.solve(XYZ_FROM_LINEAR_RGB, xyz)[::-1]


SKIN_REFERENCE_LINEAR = lab_to_linear_bgr(SKIN_REFERENCE_LAB)

# Unit directions in log-gain space (B, G, R): the light's level, and its warm-cool axis.
LEVEL_AXIS = np.ones(3) / np.sqrt(3.0)
WARM_AXIS = np.array([-1.0, 0.0, 1.0]) / np.sqrt(2.0)


def on_light_locus(gains) -> np.ndarray:
    """Linear B, G, R gains (3,) reduced to their level and warm-cool part: float64 (3,).

    From the skin alone a redder (or greener) skin and a magenta (or green) light look the
    same. Daylight, lamps and camera white balance vary along the warm-cool axis (the
    Planckian locus: blue against red at about constant green), while skins differ most in
    redness (blood) across that axis, so the green-magenta part of the skin's ratio is read as
    the skin's own tint, not the light's. Measured by `tools.makeup_realism` on neutrally lit
    faces when this came in (before the chroma cap of `tracker.blend`): foundation's hue error
    11.9 -> 3.3 degrees, brows' 7.6 -> 1.3; warm and cool casts within 0.11 error / change.
    Current figures: the README's makeup section.
    """
    g = np.log(np.asarray(gains, dtype=np.float64))
    return np.exp(LEVEL_AXIS * (g @ LEVEL_AXIS) + WARM_AXIS * (g @ WARM_AXIS))


def face_light(frame: np.ndarray, skin) -> np.ndarray:
    """The light on a face: linear B, G, R gains float64 (3,), (1, 1, 1) for a neutral,
    normally exposed one.

    frame : uint8 BGR (H, W, 3); skin : `tracker.masks.Mask` of the face's skin (foundation's
    mask). The skin's mask-weighted mean linear colour over about `SAMPLES` pixels (a regular
    subsample), divided by the reference skin's, on the light locus (`on_light_locus`).
    (1, 1, 1) when the mask is empty.
    """
    h, w = skin.data.shape
    step = max(int(np.sqrt(h * w / SAMPLES)), 1)
    pix = frame[skin.y0:skin.y0 + h, skin.x0:skin.x0 + w]
    if HAVE_NUMBA:
        sums = _skin_sums_nb(pix, np.ascontiguousarray(skin.data), step, SRGB_TO_LINEAR_LUT)
    else:
        sums = skin_sums_reference(pix, skin.data, step)
    if sums[3] <= 0.0:
        return np.ones(3)
    return on_light_locus(np.maximum(sums[:3] / sums[3], 1e-5) / SKIN_REFERENCE_LINEAR)


@njit(cache=True, error_model="numpy")
def _skin_sums_nb(pix, mask, step, lut):
    out = np.zeros(4)
    for i in range(0, mask.shape[0], step):
        for j in range(0, mask.shape[1], step):
            wt = np.float64(mask[i, j])
            if wt > 0.0:
                out[0] += wt * lut[pix[i, j, 0]]
                out[1] += wt * lut[pix[i, j, 1]]
                out[2] += wt * lut[pix[i, j, 2]]
                out[3] += wt
    return out


def skin_sums_reference(pix: np.ndarray, mask: np.ndarray, step: int) -> np.ndarray:
    """NumPy reference of `_skin_sums_nb`: float64 (4,), the mask-weighted sums of linear B,
    G, R and the sum of the weights, over every step-th row and column of the mask.
    pix : uint8 BGR (h, w, 3) under the mask (h, w)."""
    wt = mask[::step, ::step].astype(np.float64)
    lin = np.tensordot(wt, SRGB_TO_LINEAR_LUT[pix[::step, ::step]], axes=([0, 1], [0, 1]))
    return np.append(lin, wt.sum())


def shading_grid(sigma: float) -> tuple[int, float]:
    """(step, sigma on that grid) for a shading blur of `sigma` pixels: shading is smooth at
    that scale, so a sigma of 2 pixels or more is blurred on a grid 2-4x coarser (cells of
    step x step pixels, step <= sigma / 2 from 4 pixels on; the width lost to the cells and
    to the bilinear return is taken off)."""
    step = min(max(int(sigma / 2.0), 2), 4) if sigma >= 2.0 else 1
    if step == 1:
        return 1, float(sigma)
    return step, float(np.sqrt(max(sigma * sigma - 0.25 * step * step, 0.09)) / step)


def smooth_lightness(lab: np.ndarray, mask: np.ndarray, y0: int, x0: int, sigma: float) -> np.ndarray:
    """The surface's local mean lightness under a mask: float32 (h, w).

    lab : float32 (3, H, W) planes; mask : float32 (h, w) weights placed at (y0, x0) in lab;
    sigma : Gaussian width in pixels. Mask-weighted (normalised convolution: the blur of
    L * mask over the blur of mask), so the skin around the lips does not lighten the lips'
    edge; about 0 where the mask's whole neighbourhood has no weight (nothing is blended
    there). Both sums are taken per cell of `shading_grid(sigma)` in one pass, blurred
    together (one two-channel blur), divided per cell and brought back bilinearly
    (`_cell_sums_nb`, `_ratio_up`; NumPy references `cell_sums_reference`,
    `ratio_up_reference`).
    """
    h, w = mask.shape
    lum = lab[0, y0:y0 + h, x0:x0 + w]
    if sigma < 0.3 or mask.size == 0:
        return np.ascontiguousarray(lum)
    step, small_sigma = shading_grid(sigma)
    if min(h, w) < 4 * step:
        step, small_sigma = 1, float(sigma)
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    if HAVE_NUMBA:
        sums = _cell_sums_nb(lab[0], mask, y0, x0, step)
    else:
        sums = cell_sums_reference(lab[0], mask, y0, x0, step)
    sums = cv2.GaussianBlur(sums, (0, 0), small_sigma, borderType=cv2.BORDER_REPLICATE)
    if HAVE_NUMBA:
        return _ratio_up(sums, h, w, step)
    return ratio_up_reference(sums, h, w, step)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _cell_sums_nb(lum, mask, y0, x0, step):
    h, w = mask.shape
    hc, wc = -(-h // step), -(-w // step)
    out = np.zeros((hc, wc, 2), dtype=np.float32)
    acc0 = np.zeros(w, dtype=np.float32)
    acc1 = np.zeros(w, dtype=np.float32)
    for i in range(h):
        row, rm = lum[y0 + i, x0:x0 + w], mask[i]
        for j in range(w):  # the rows of one band of cells, per column (vectorised)
            acc0[j] += rm[j] * row[j]
            acc1[j] += rm[j]
        if (i + 1) % step == 0 or i == h - 1:
            o = out[i // step]
            for c in range(wc):  # the band's columns into its cells
                for j in range(c * step, min(c * step + step, w)):
                    o[c, 0] += acc0[j]
                    o[c, 1] += acc1[j]
            acc0[:] = np.float32(0.0)
            acc1[:] = np.float32(0.0)
    return out


def cell_sums_reference(lum: np.ndarray, mask: np.ndarray, y0: int, x0: int,
                        step: int) -> np.ndarray:
    """NumPy reference of `_cell_sums_nb`: float32 (ceil(h / step), ceil(w / step), 2), the
    sums of L * mask and of mask over each step x step cell of the mask's rectangle (the
    last row / column of cells may be partial: only the pixels there are summed)."""
    h, w = mask.shape
    hc, wc = -(-h // step), -(-w // step)
    pad = np.zeros((2, hc * step, wc * step))
    pad[0, :h, :w] = mask * lum[y0:y0 + h, x0:x0 + w].astype(np.float64)
    pad[1, :h, :w] = mask
    return pad.reshape(2, hc, step, wc, step).sum(axis=(2, 4)).transpose(1, 2, 0).astype(np.float32)


def _ratio_up(sums: np.ndarray, h: int, w: int, step: int) -> np.ndarray:
    """`ratio_up_reference` with a Numba division on the cell grid and OpenCV's bilinear
    resize of the ratio."""
    ratio = _ratio_nb(sums)
    if step > 1:
        hc, wc = ratio.shape
        ratio = cv2.resize(ratio, (wc * step, hc * step), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(ratio[:h, :w])


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _ratio_nb(sums):
    h, w = sums.shape[0], sums.shape[1]
    out = np.empty((h, w), dtype=np.float32)
    tiny = np.float32(1e-6)
    for i in range(h):
        s, o = sums[i], out[i]
        for j in range(w):
            # Both are the same linear filter of L * mask and mask, so num <= 100 * den: the
            # ratio stays in L's range even where den is tiny (and the mask, hence the weight).
            o[j] = s[j, 0] / max(s[j, 1], tiny)
    return out


def ratio_up_reference(sums: np.ndarray, h: int, w: int, step: int) -> np.ndarray:
    """NumPy reference of `_ratio_up`: the blurred cell sums (hc, wc, 2), channel 0 over
    channel 1 (at least 1e-6) per cell, brought back to (h, w) pixels bilinearly (cv2.resize's
    INTER_LINEAR sampling: cell k's centre at pixel step * k + (step - 1) / 2). float32 (h, w).

    The ratio is taken on the cells (not per pixel after the resize): where the blurred
    mask is tiny the mask itself is 0, and the mask's blur reaches a cell or more past it.
    """
    ratio = sums[..., 0].astype(np.float64) / np.maximum(sums[..., 1], 1e-6)
    def coords(n, n_small):
        u = np.maximum((np.arange(n) + 0.5) / step - 0.5, 0.0)
        k = np.minimum(u.astype(np.int64), n_small - 1)
        return k, np.minimum(k + 1, n_small - 1), np.where(k < n_small - 1, u - k, 0.0)
    r0, r1, rt = coords(h, ratio.shape[0])
    c0, c1, ct = coords(w, ratio.shape[1])
    rows = ratio[r0] * (1.0 - rt)[:, None] + ratio[r1] * rt[:, None]
    return (rows[:, c0] * (1.0 - ct)[None, :] + rows[:, c1] * ct[None, :]).astype(np.float32)


OPAQUE = 0.95  # the opaque part of a product: where its mask is at least this x its peak


def opaque_shading(smooth: np.ndarray, mask: np.ndarray) -> float:
    """The surface's mean shading where a product is opaque: the mean of `smooth` (float32
    (h, w), `smooth_lightness`) where mask (float32 (h, w)) >= OPAQUE x its peak; 50 for an
    empty mask.

    A product's colour is placed at this shading (`tracker.blend.TintParams.ref_lightness`),
    so at full intensity its opaque part looks like the lit swatch on average, and the
    product is darker or lighter from there with the surface's own shading: darker on the
    soft edge of eyeshadow as it leaves the lid, lighter on the cheek's apex under blush.
    (The mask-weighted mean over the whole soft mask would put the swatch's shading at the
    fringe's, e.g. the brow bone's instead of the lid's.)
    """
    if HAVE_NUMBA and mask.size:
        return float(_opaque_mean_nb(np.ascontiguousarray(smooth, dtype=np.float32),
                                     np.ascontiguousarray(mask, dtype=np.float32), OPAQUE))
    return opaque_shading_reference(smooth, mask)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _opaque_mean_nb(smooth, mask, frac):
    peak = np.float32(0.0)
    for i in range(mask.shape[0]):
        rm = mask[i]
        for j in range(mask.shape[1]):
            peak = max(peak, rm[j])
    if peak <= 0.0:
        return 50.0
    thr = np.float32(frac * peak)
    total = 0.0
    n = 0.0
    for i in range(mask.shape[0]):
        rm, rs = mask[i], smooth[i]
        row_total = np.float32(0.0)  # float32 per row (vectorised), float64 across rows
        row_n = np.float32(0.0)
        for j in range(mask.shape[1]):
            on = np.float32(rm[j] >= thr)
            row_total += on * rs[j]
            row_n += on
        total += row_total
        n += row_n
    return total / n


def opaque_shading_reference(smooth: np.ndarray, mask: np.ndarray) -> float:
    """NumPy reference of `opaque_shading` (and of its kernel `_opaque_mean_nb`)."""
    peak = float(mask.max()) if mask.size else 0.0
    if peak <= 0.0:
        return 50.0
    return float(np.mean(smooth, where=mask >= np.float32(OPAQUE * peak), dtype=np.float64))


_XYZ_ROWS = tuple(tuple(float(v) for v in row) for row in XYZ_FROM_LINEAR_RGB)


def _lab_f1(t: float) -> float:
    return t ** (1.0 / 3.0) if t > LAB_EPSILON else (LAB_KAPPA * t + 16.0) / 116.0


def linear_bgr_to_lab(bgr) -> np.ndarray:
    """Linear-light B, G, R float (3,) -> CIELAB float64 (3,) (inverse of `lab_to_linear_bgr`).

    Plain float arithmetic: it runs per product and frame on one colour, where NumPy's
    per-call overhead would be most of the time.
    """
    b, g, r = (float(v) for v in bgr)
    fx, fy, fz = (_lab_f1(max(m0 * r + m1 * g + m2 * b, 0.0)) for m0, m1, m2 in _XYZ_ROWS)
    return np.array([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)])
