"""Makeup blending kernels (Numba), each with its vectorised NumPy reference right below.

Blending happens in CIELAB so that makeup behaves like pigment on skin, not paint:

- chroma (a, b) moves toward the product's colour, scaled per pixel with the shading
  ((L + 16) relative to the region's, as Lab chroma scales under dimmer light);
- lightness moves only partly toward the product's, as a *uniform shift* relative to the
  region's mean lightness, so the local lightness detail (shading, lip lines, skin
  texture, hair strands) survives; `detail_dark` / `detail_light` scale that detail
  below / above the mean (a matte finish damps the bright side, i.e. the shine);
- a gloss finish adds a specular highlight where the surface is already brighter than
  its surroundings (smoothstep of the lightness detail), lightening and desaturating.

Per pixel the blend weight is `mask * intensity`; where it is 0 the pixel is not touched
at all (bit-identical), so intensity 0 or a zero mask changes nothing. Layout: images
are uint8 BGR (H, W, 3) (any strides, e.g. a view of a frame's ROI), masks float32
(H, W) in [0, 1]. Colour constants come from `tracker.colors`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlite._jit import HAVE_NUMBA, njit, warn_numba_missing
from tracker.colors import (
    LAB_EPSILON,
    LAB_KAPPA,
    LINEAR_RGB_FROM_XYZ,
    SRGB_TO_LINEAR_LUT,
    XYZ_FROM_LINEAR_RGB,
    bgr_to_lab,
    lab_f,
    lab_to_bgr_float,
    linear_to_srgb,
)

# Layout of the float64 parameter vector of `tint_lab` (see `TintParams`).
_P_L, _P_A, _P_B, _P_REF_L, _P_CHROMA, _P_LIGHTNESS = 0, 1, 2, 3, 4, 5
_P_DETAIL_DARK, _P_DETAIL_LIGHT, _P_GLOSS, _P_GLOSS_AT, _P_GLOSS_WIDTH, _P_INTENSITY = (
    6, 7, 8, 9, 10, 11)
_N_PARAMS = 12

_LUT = np.ascontiguousarray(SRGB_TO_LINEAR_LUT, dtype=np.float64)
_M_FWD = np.ascontiguousarray(XYZ_FROM_LINEAR_RGB, dtype=np.float64)
_M_INV = np.ascontiguousarray(LINEAR_RGB_FROM_XYZ, dtype=np.float64)
# Linear light -> sRGB code value, tabulated over u = sqrt(linear) (smooth in u, so linear
# interpolation over 1024 steps is within 1e-3 code values); avoids a pow per channel.
_GAMMA_STEPS = 1024
_GAMMA = 255.0 * linear_to_srgb((np.arange(_GAMMA_STEPS + 2) / _GAMMA_STEPS) ** 2)
# Lab's f(t) (cube root above LAB_EPSILON) over t in [0, 1], tabulated the same way over
# u = sqrt(t): within 2e-6 of the exact value (2e-4 in L), several times faster than cbrt.
_LAB_F = lab_f((np.arange(_GAMMA_STEPS + 2) / _GAMMA_STEPS) ** 2)
# Everything the kernels look up: (sRGB -> linear, linear RGB -> XYZ/white, XYZ/white ->
# linear RGB, linear -> sRGB over sqrt, Lab f over sqrt).
_TABLES = (_LUT, _M_FWD, _M_INV, _GAMMA, _LAB_F)

if not HAVE_NUMBA:  # the kernels below stay plain Python; tint_lab / lab_stats use the references
    warn_numba_missing()


@dataclass(frozen=True)
class TintParams:
    """How one product is blended (see the module docstring).

    color_lab : product colour (L, a, b). ref_lightness : the mean L of the skin under the
    mask (from `lab_stats`). chroma : 0..1, how far a, b move to the product's.
    lightness : 0..1, how far the region's mean L moves to the product's L. detail_dark /
    detail_light : gain on lightness detail below / above the mean (1 keeps it).
    gloss : 0..1 strength of the specular highlight; gloss_at / gloss_width : the
    highlight ramps in where the detail goes from gloss_at to gloss_at + gloss_width
    (L units). intensity : 0..1 product intensity, multiplies the mask.
    """
    color_lab: tuple
    ref_lightness: float
    chroma: float = 0.9
    lightness: float = 0.5
    detail_dark: float = 1.0
    detail_light: float = 1.0
    gloss: float = 0.0
    gloss_at: float = 4.0
    gloss_width: float = 8.0
    intensity: float = 1.0

    def as_array(self) -> np.ndarray:
        """The float64 (12,) vector the kernels take."""
        p = np.empty(_N_PARAMS, dtype=np.float64)
        p[_P_L:_P_B + 1] = self.color_lab
        p[_P_REF_L] = self.ref_lightness
        p[_P_CHROMA] = self.chroma
        p[_P_LIGHTNESS] = self.lightness
        p[_P_DETAIL_DARK] = self.detail_dark
        p[_P_DETAIL_LIGHT] = self.detail_light
        p[_P_GLOSS] = self.gloss
        p[_P_GLOSS_AT] = self.gloss_at
        p[_P_GLOSS_WIDTH] = max(self.gloss_width, 1e-6)
        p[_P_INTENSITY] = self.intensity
        return p


def _check(image: np.ndarray, mask: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) BGR, got {image.dtype} {image.shape}")
    if mask.dtype != np.float32 or mask.shape != image.shape[:2]:
        raise ValueError(f"mask must be float32 {image.shape[:2]}, got {mask.dtype} {mask.shape}")


# ----------------------------------------------------------------------------- helpers

@njit(cache=True, inline="always")
def _lab_f(t, table):
    if t > 1.0:  # not reached from sRGB (white is t = 1), kept for safety
        return np.cbrt(t)
    u = np.sqrt(max(t, 0.0)) * _GAMMA_STEPS
    k = int(u)
    return table[k] + (u - k) * (table[k + 1] - table[k])


@njit(cache=True, inline="always")
def _lab_f_inv(f):
    f3 = f * f * f
    if f3 > LAB_EPSILON:
        return f3
    return (116.0 * f - 16.0) / LAB_KAPPA


@njit(cache=True, inline="always")
def _to_srgb255(c, gamma):
    if c <= 0.0:
        return 0.0
    if c >= 1.0:
        return 255.0
    u = np.sqrt(c) * _GAMMA_STEPS
    k = int(u)
    return gamma[k] + (u - k) * (gamma[k + 1] - gamma[k])


@njit(cache=True)
def _pixel_lab(b8, g8, r8, tables):
    lut, m, ftab = tables[0], tables[1], tables[4]
    r, g, b = lut[r8], lut[g8], lut[b8]
    fx = _lab_f(m[0, 0] * r + m[0, 1] * g + m[0, 2] * b, ftab)
    fy = _lab_f(m[1, 0] * r + m[1, 1] * g + m[1, 2] * b, ftab)
    fz = _lab_f(m[2, 0] * r + m[2, 1] * g + m[2, 2] * b, ftab)
    return 116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)


# ----------------------------------------------------------------------------- lab_stats

def lab_stats(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mask-weighted CIELAB statistics of an image region.

    Parameters
    ----------
    image : uint8 ndarray (H, W, 3), BGR, any strides
    mask : float32 ndarray (H, W), weights in [0, 1]

    Returns float64 (4,): mean L, standard deviation of L, mean a, mean b;
    (50, 0, 0, 0) when the mask is all zero.
    """
    _check(image, mask)
    if not HAVE_NUMBA:
        return lab_stats_reference(image, mask)
    return _lab_stats_nb(image, mask, _TABLES)


@njit(cache=True)
def _lab_stats_nb(image, mask, tables):
    """Core of `lab_stats`: one pass over (H, W, 3) uint8 BGR, skipping zero weights."""
    sw = 0.0
    s1 = 0.0
    s2 = 0.0
    sa = 0.0
    sb = 0.0
    h, w = mask.shape
    for i in range(h):
        for j in range(w):
            wt = float(mask[i, j])
            if wt > 0.0:
                lum, a, b = _pixel_lab(image[i, j, 0], image[i, j, 1], image[i, j, 2], tables)
                sw += wt
                s1 += wt * lum
                s2 += wt * lum * lum
                sa += wt * a
                sb += wt * b
    res = np.array([50.0, 0.0, 0.0, 0.0])
    if sw > 0.0:
        mean = s1 / sw
        res[0] = mean
        res[1] = np.sqrt(max(s2 / sw - mean * mean, 0.0))
        res[2] = sa / sw
        res[3] = sb / sw
    return res


def lab_stats_reference(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """NumPy reference of `lab_stats`."""
    wt = mask.astype(np.float64)
    sw = wt.sum()
    if sw <= 0.0:
        return np.array([50.0, 0.0, 0.0, 0.0])
    lab = bgr_to_lab(image)
    mean = (wt[..., None] * lab).sum(axis=(0, 1)) / sw
    var = (wt * (lab[..., 0] - mean[0]) ** 2).sum() / sw
    return np.array([mean[0], np.sqrt(var), mean[1], mean[2]])


# ----------------------------------------------------------------------------- tint_lab

def tint_lab(image: np.ndarray, mask: np.ndarray, params: TintParams,
             out: np.ndarray | None = None) -> np.ndarray:
    """Blend a product colour into an image region in CIELAB (see the module docstring).

    Parameters
    ----------
    image : uint8 ndarray (H, W, 3), BGR, any strides (an ROI view of a frame is fine)
    mask : float32 ndarray (H, W), coverage in [0, 1]
    params : TintParams, the product's colour and blend settings
    out : uint8 ndarray (H, W, 3) or None. Written only where mask * intensity > 0;
        may be `image` itself (in place). None: a copy of `image` is made.

    Returns `out`.
    """
    _check(image, mask)
    if out is None:
        out = image.copy()
    elif out.shape != image.shape or out.dtype != np.uint8:
        raise ValueError(f"out must be uint8 {image.shape}, got {out.dtype} {out.shape}")
    if params.intensity > 0.0:
        if HAVE_NUMBA:
            _tint_lab_nb(image, mask, params.as_array(), _TABLES, out)
        else:  # same formulas, exact pow/cbrt instead of tables: within 1 code value
            touched = mask.astype(np.float64) * params.intensity > 0.0
            out[touched] = tint_lab_reference(image, mask, params)[touched]
    return out


@njit(cache=True, fastmath=True)
def _tint_lab_nb(image, mask, p, tables, out):
    """Core of `tint_lab`: p is `TintParams.as_array()`; writes out only where the weight > 0."""
    m_inv, gamma = tables[2], tables[3]
    h, w = mask.shape
    lp, ap, bp, ref = p[0], p[1], p[2], p[3]
    chroma, light = p[4], p[5]
    detail_dark, detail_light = p[6], p[7]
    gloss, gloss_at, gloss_width, intensity = p[8], p[9], p[10], p[11]
    base = ref + light * (lp - ref)
    for i in range(h):
        for j in range(w):
            alpha = float(mask[i, j]) * intensity
            if alpha <= 0.0:
                continue
            if alpha > 1.0:
                alpha = 1.0
            lum, a, b = _pixel_lab(image[i, j, 0], image[i, j, 1], image[i, j, 2], tables)
            d = lum - ref
            if d < 0.0:
                lt = base + detail_dark * d
            else:
                lt = base + detail_light * d
            # Shading scales chroma with (L + 16), as for a fixed reflectance under
            # brighter or dimmer light (Lab's cube roots); capped so highlights stay natural.
            shade = min(max((lt + 16.0) / (base + 16.0), 0.0), 1.2)
            at = a + chroma * (ap * shade - a)
            bt = b + chroma * (bp * shade - b)
            if gloss > 0.0:
                x = (d - gloss_at) / gloss_width
                x = min(max(x, 0.0), 1.0)
                spec = gloss * x * x * (3.0 - 2.0 * x)
                lt = lt + spec * (100.0 - lt)
                at = at * (1.0 - 0.7 * spec)
                bt = bt * (1.0 - 0.7 * spec)
            lt = min(max(lt, 0.0), 100.0)
            lum = lum + alpha * (lt - lum)
            a = a + alpha * (at - a)
            b = b + alpha * (bt - b)
            fy = (lum + 16.0) / 116.0
            x3 = _lab_f_inv(fy + a / 500.0)
            y3 = _lab_f_inv(fy)
            z3 = _lab_f_inv(fy - b / 200.0)
            rr = _to_srgb255(m_inv[0, 0] * x3 + m_inv[0, 1] * y3 + m_inv[0, 2] * z3, gamma)
            gg = _to_srgb255(m_inv[1, 0] * x3 + m_inv[1, 1] * y3 + m_inv[1, 2] * z3, gamma)
            bb = _to_srgb255(m_inv[2, 0] * x3 + m_inv[2, 1] * y3 + m_inv[2, 2] * z3, gamma)
            out[i, j, 0] = np.uint8(np.floor(bb + 0.5))
            out[i, j, 1] = np.uint8(np.floor(gg + 0.5))
            out[i, j, 2] = np.uint8(np.floor(rr + 0.5))


def tint_lab_reference(image: np.ndarray, mask: np.ndarray, params: TintParams) -> np.ndarray:
    """NumPy reference of `tint_lab`; returns a new array."""
    p = params
    lab = bgr_to_lab(image)
    lum, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    lp, ap, bp = (float(v) for v in p.color_lab)
    ref = p.ref_lightness
    base = ref + p.lightness * (lp - ref)
    d = lum - ref
    lt = base + np.where(d < 0.0, p.detail_dark, p.detail_light) * d
    shade = np.clip((lt + 16.0) / (base + 16.0), 0.0, 1.2)
    at = a + p.chroma * (ap * shade - a)
    bt = b + p.chroma * (bp * shade - b)
    if p.gloss > 0.0:
        x = np.clip((d - p.gloss_at) / max(p.gloss_width, 1e-6), 0.0, 1.0)
        spec = p.gloss * x * x * (3.0 - 2.0 * x)
        lt = lt + spec * (100.0 - lt)
        at = at * (1.0 - 0.7 * spec)
        bt = bt * (1.0 - 0.7 * spec)
    lt = np.clip(lt, 0.0, 100.0)
    alpha = np.minimum(mask.astype(np.float64) * p.intensity, 1.0)
    new = np.stack([lum + alpha * (lt - lum), a + alpha * (at - a), b + alpha * (bt - b)], -1)
    res = np.floor(lab_to_bgr_float(new) + 0.5).astype(np.uint8)
    touched = alpha > 0.0
    out = image.copy()
    out[touched] = res[touched]
    return out
