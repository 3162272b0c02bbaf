"""The test oracle of `tracker.blend`: one product on a uint8 BGR image, all in float64 NumPy.

Exact colour conversions (`tracker.colors`: pow and cbrt, no tables, no float32), the
blend formula of `tracker.blend.tint_reference`, rounding to the nearest code value. The
renderer's planar float32 kernels are checked against it (within 1 code value).
"""
import numpy as np

from tracker.blend import TintParams, tint_reference
from tracker.colors import bgr_to_lab, lab_to_bgr_float


def lab_stats(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mask-weighted CIELAB statistics of uint8 BGR (H, W, 3) under float32 mask (H, W).

    Returns float64 (4,): mean L, standard deviation of L, mean a, mean b;
    (50, 0, 0, 0) when the mask is all zero.
    """
    wt = mask.astype(np.float64)
    sw = wt.sum()
    if sw <= 0.0:
        return np.array([50.0, 0.0, 0.0, 0.0])
    lab = bgr_to_lab(image)
    mean = (wt[..., None] * lab).sum(axis=(0, 1)) / sw
    var = (wt * (lab[..., 0] - mean[0]) ** 2).sum() / sw
    return np.array([mean[0], np.sqrt(var), mean[1], mean[2]])


def tint_bgr(image: np.ndarray, mask: np.ndarray, params: TintParams,
             smooth: np.ndarray | None = None) -> np.ndarray:
    """One product blended into uint8 BGR (H, W, 3) through float32 mask (H, W): a new
    image, equal to `image` wherever mask * intensity is 0. smooth : float (H, W), the
    surface's smoothed lightness (None: params.ref_lightness everywhere)."""
    lab = bgr_to_lab(image)
    alpha = np.minimum(mask.astype(np.float64) * params.intensity, 1.0)
    new = np.stack(tint_reference(lab[..., 0], lab[..., 1], lab[..., 2], alpha, params, smooth), -1)
    res = np.floor(lab_to_bgr_float(new) + 0.5).astype(np.uint8)
    out = image.copy()
    touched = alpha > 0.0
    out[touched] = res[touched]
    return out
