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

Two ways to use the same formulas:

- per product on a BGR image: `lab_stats`, `tint_lab` (float64; each call converts
  BGR -> Lab -> BGR);
- per face on planar Lab, what `tracker.makeup.render` does: `bgr_to_lab_planes` once for
  the union of a face's masks, then per product `lab_planes_stats` and `tint_lab_planes`
  (in place on the float32 buffer, marking the pixels they touch), and
  `lab_planes_to_bgr` once for the touched pixels. float32 SIMD loops; one conversion
  each way per face instead of one per product.

Every Numba kernel has a NumPy reference beside it (`*_reference`), used without Numba.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlite.config import FASTMATH
from nnlite.jit import HAVE_NUMBA, njit, warn_numba_missing
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
    srgb_to_linear,
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


@njit(cache=True, fastmath=FASTMATH)
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


# ------------------------------------------------------- planar Lab: one face, all products
#
# `render` converts a face's region to Lab once, applies every product to that float32
# buffer (stats and tint per product, no uint8 round trip in between) and converts back
# once, writing only the pixels some product touched. Layout: `lab` is float32 (3, H, W),
# contiguous planes L, a, b; masks are float32 (h, w) placed at (y0, x0) in it; `touched`
# is uint8 (H, W), set to 1 wherever a product's weight was > 0. The kernels work in
# float32 on contiguous rows so that LLVM vectorises them (8 lanes with AVX2); the only
# table look-ups (sRGB -> linear, and the exact rounding back to sRGB codes) are per
# channel loads. References are float64 NumPy; tolerances are in tests/test_blend.py.

# Cube root on [LAB_EPSILON, 1] without a table: a quadratic in s = t ** 0.25 (within 1.1%)
# and one Halley step (within 8e-7 relative, 1e-4 in L).
_CBRT_S = np.linspace(LAB_EPSILON ** 0.25, 1.0, 2001)
_CBRT_C = tuple(float(v) for v in np.polyfit(_CBRT_S, _CBRT_S ** (4.0 / 3.0), 2))
# sRGB code thresholds: code v (1..255) starts at linear value _THR[v]; _THR[0] = -inf,
# _THR[256] = +inf. _START[k] is the code at u = sqrt(linear) = k / _CODE_STEPS; within one
# step the code rises by at most one (d code / du <= 370), so one comparison finds it. The
# result is round(255 * srgb(c)) exactly, with no interpolation error.
_CODE_STEPS = 1024
_THR = np.empty(257, dtype=np.float32)
_THR[0], _THR[256] = -np.inf, np.inf
_THR[1:256] = srgb_to_linear((np.arange(1, 256) - 0.5) / 255.0)
_START = (np.searchsorted(_THR[1:256], (np.arange(_CODE_STEPS + 2) / _CODE_STEPS) ** 2,
                          side="right")).astype(np.int32)
_LUT32 = SRGB_TO_LINEAR_LUT.astype(np.float32)
_M_FWD32 = XYZ_FROM_LINEAR_RGB.astype(np.float32)
_M_INV32 = LINEAR_RGB_FROM_XYZ.astype(np.float32)
_PLANAR_TABLES = (_LUT32, _M_FWD32, _M_INV32, _THR, _START)


def _check_planes(lab: np.ndarray) -> None:
    if lab.dtype != np.float32 or lab.ndim != 3 or lab.shape[0] != 3 or not lab.flags.c_contiguous:
        raise ValueError(f"lab must be contiguous float32 (3, H, W), got {lab.dtype} {lab.shape}")


def _check_placed(lab: np.ndarray, mask: np.ndarray, y0: int, x0: int) -> None:
    _check_planes(lab)
    if mask.dtype != np.float32 or mask.ndim != 2:
        raise ValueError(f"mask must be float32 (h, w), got {mask.dtype} {mask.shape}")
    h, w = mask.shape
    if y0 < 0 or x0 < 0 or y0 + h > lab.shape[1] or x0 + w > lab.shape[2]:
        raise ValueError(f"mask {mask.shape} at ({y0}, {x0}) exceeds the buffer {lab.shape[1:]}")


def bgr_to_lab_planes(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 BGR (H, W, 3), any strides -> CIELAB float32 (3, H, W) planes L, a, b.

    Within 2e-4 of `tracker.colors.bgr_to_lab` for every colour (float32 maths, a fitted
    cube root instead of a table).
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 (H, W, 3) BGR, got {image.dtype} {image.shape}")
    if out is None:
        out = np.empty((3,) + image.shape[:2], dtype=np.float32)
    _check_planes(out)
    if out.shape[1:] != image.shape[:2]:
        raise ValueError(f"out must be (3, {image.shape[0]}, {image.shape[1]}), got {out.shape}")
    if HAVE_NUMBA:
        _bgr_to_lab_planes_nb(image, out, _PLANAR_TABLES)
    else:
        out[...] = bgr_to_lab_planes_reference(image)
    return out


@njit(cache=True, inline="always", fastmath=FASTMATH, error_model="numpy")
def _lab_f32(t, c2, c1, c0):
    """Lab's f in float32: fitted cube root above LAB_EPSILON (one Halley step), linear below."""
    s = np.sqrt(np.sqrt(max(t, np.float32(LAB_EPSILON))))
    y = (c2 * s + c1) * s + c0
    y3 = y * y * y
    y = y * (y3 + np.float32(2.0) * t) / (np.float32(2.0) * y3 + t)
    lin = (np.float32(LAB_KAPPA) * t + np.float32(16.0)) / np.float32(116.0)
    return y if t > np.float32(LAB_EPSILON) else lin


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _bgr_to_lab_planes_nb(image, out, tables):
    lut, m = tables[0], tables[1]
    c2, c1, c0 = np.float32(_CBRT_C[0]), np.float32(_CBRT_C[1]), np.float32(_CBRT_C[2])
    m00, m01, m02 = m[0, 0], m[0, 1], m[0, 2]  # locals: loads in the loop would block SIMD
    m10, m11, m12 = m[1, 0], m[1, 1], m[1, 2]
    m20, m21, m22 = m[2, 0], m[2, 1], m[2, 2]
    h, w = image.shape[0], image.shape[1]
    rr = np.empty(w, dtype=np.float32)
    gg = np.empty(w, dtype=np.float32)
    bb = np.empty(w, dtype=np.float32)
    for i in range(h):
        for j in range(w):  # the table look-ups (not vectorised)
            bb[j] = lut[image[i, j, 0]]
            gg[j] = lut[image[i, j, 1]]
            rr[j] = lut[image[i, j, 2]]
        ol, oa, ob = out[0, i], out[1, i], out[2, i]
        for j in range(w):  # the arithmetic (vectorised)
            r, g, b = rr[j], gg[j], bb[j]
            fx = _lab_f32(m00 * r + m01 * g + m02 * b, c2, c1, c0)
            fy = _lab_f32(m10 * r + m11 * g + m12 * b, c2, c1, c0)
            fz = _lab_f32(m20 * r + m21 * g + m22 * b, c2, c1, c0)
            ol[j] = np.float32(116.0) * fy - np.float32(16.0)
            oa[j] = np.float32(500.0) * (fx - fy)
            ob[j] = np.float32(200.0) * (fy - fz)


def bgr_to_lab_planes_reference(image: np.ndarray) -> np.ndarray:
    """NumPy reference of `bgr_to_lab_planes` (float64 maths, float32 result)."""
    return np.moveaxis(bgr_to_lab(image), -1, 0).astype(np.float32)


def lab_planes_stats(lab: np.ndarray, mask: np.ndarray, y0: int = 0, x0: int = 0) -> np.ndarray:
    """`lab_stats` on planar Lab: the mask (h, w) lies at (y0, x0) in lab (3, H, W).

    Returns float64 (4,): mean L, std of L, mean a, mean b; (50, 0, 0, 0) for a zero mask.
    """
    _check_placed(lab, mask, y0, x0)
    if not HAVE_NUMBA:
        return lab_planes_stats_reference(lab, mask, y0, x0)
    return _lab_planes_stats_nb(lab, np.ascontiguousarray(mask), y0, x0)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _lab_planes_stats_nb(lab, mask, y0, x0):
    h, w = mask.shape
    sw = 0.0
    s1 = 0.0
    s2 = 0.0
    sa = 0.0
    sb = 0.0
    for i in range(h):
        rl, ra, rb = lab[0, y0 + i, x0:x0 + w], lab[1, y0 + i, x0:x0 + w], lab[2, y0 + i, x0:x0 + w]
        rm = mask[i]
        # float32 sums per row (at most a few hundred terms), float64 across rows
        r0 = np.float32(0.0)
        r1 = np.float32(0.0)
        r2 = np.float32(0.0)
        r3 = np.float32(0.0)
        r4 = np.float32(0.0)
        for j in range(w):
            wt = rm[j]
            lum = rl[j]
            r0 += wt
            r1 += wt * lum
            r2 += wt * lum * lum
            r3 += wt * ra[j]
            r4 += wt * rb[j]
        sw += r0
        s1 += r1
        s2 += r2
        sa += r3
        sb += r4
    res = np.array([50.0, 0.0, 0.0, 0.0])
    if sw > 0.0:
        mean = s1 / sw
        res[0] = mean
        res[1] = np.sqrt(max(s2 / sw - mean * mean, 0.0))
        res[2] = sa / sw
        res[3] = sb / sw
    return res


def lab_planes_stats_reference(lab: np.ndarray, mask: np.ndarray, y0: int = 0,
                               x0: int = 0) -> np.ndarray:
    """NumPy reference of `lab_planes_stats`."""
    h, w = mask.shape
    wt = mask.astype(np.float64)
    sw = wt.sum()
    if sw <= 0.0:
        return np.array([50.0, 0.0, 0.0, 0.0])
    reg = lab[:, y0:y0 + h, x0:x0 + w].astype(np.float64)
    mean = (wt * reg).sum(axis=(1, 2)) / sw
    var = (wt * (reg[0] - mean[0]) ** 2).sum() / sw
    return np.array([mean[0], np.sqrt(var), mean[1], mean[2]])


def tint_lab_planes(lab: np.ndarray, mask: np.ndarray, params: TintParams, touched: np.ndarray,
                    y0: int = 0, x0: int = 0) -> None:
    """`tint_lab` on planar Lab, in place: the mask (h, w) lies at (y0, x0) in lab (3, H, W).

    touched : uint8 (H, W); set to 1 where the weight mask * intensity > 0. Lab values are
    left exactly as they were wherever the weight is 0.
    """
    _check_placed(lab, mask, y0, x0)
    if touched.dtype != np.uint8 or touched.shape != lab.shape[1:]:
        raise ValueError(f"touched must be uint8 {lab.shape[1:]}, got {touched.dtype} "
                         f"{touched.shape}")
    if params.intensity <= 0.0 or mask.size == 0:
        return
    if HAVE_NUMBA:
        _tint_lab_planes_nb(lab, np.ascontiguousarray(mask), y0, x0, params.as_array(), touched)
    else:
        tint_lab_planes_reference(lab, mask, params, touched, y0, x0)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _tint_lab_planes_nb(lab, mask, y0, x0, p, touched):
    h, w = mask.shape
    f32 = np.float32
    lp, ap, bp, ref = f32(p[0]), f32(p[1]), f32(p[2]), f32(p[3])
    chroma, light = f32(p[4]), f32(p[5])
    detail_dark, detail_light = f32(p[6]), f32(p[7])
    gloss, gloss_at, intensity = f32(p[8]), f32(p[9]), f32(p[11])
    inv_width = f32(1.0 / p[10])
    base = ref + light * (lp - ref)
    inv_base16 = f32(1.0) / (base + f32(16.0))
    for i in range(h):
        # row slices indexed from 0: an index like x0 + j would block SIMD
        rl, ra, rb = lab[0, y0 + i, x0:x0 + w], lab[1, y0 + i, x0:x0 + w], lab[2, y0 + i, x0:x0 + w]
        rm, rt = mask[i], touched[y0 + i, x0:x0 + w]
        for j in range(w):
            alpha = min(rm[j] * intensity, f32(1.0))
            lum, a, b = rl[j], ra[j], rb[j]
            d = lum - ref
            lt = base + (detail_dark if d < f32(0.0) else detail_light) * d
            shade = min(max((lt + f32(16.0)) * inv_base16, f32(0.0)), f32(1.2))
            at = a + chroma * (ap * shade - a)
            bt = b + chroma * (bp * shade - b)
            x = min(max((d - gloss_at) * inv_width, f32(0.0)), f32(1.0))
            spec = gloss * x * x * (f32(3.0) - f32(2.0) * x)  # 0 without gloss
            lt = lt + spec * (f32(100.0) - lt)
            keep = f32(1.0) - f32(0.7) * spec
            lt = min(max(lt, f32(0.0)), f32(100.0))
            # alpha == 0 leaves the values exactly as they were (x + 0 * y == x)
            rl[j] = lum + alpha * (lt - lum)
            ra[j] = a + alpha * (at * keep - a)
            rb[j] = b + alpha * (bt * keep - b)
            rt[j] = rt[j] | np.uint8(alpha > f32(0.0))


def tint_lab_planes_reference(lab: np.ndarray, mask: np.ndarray, params: TintParams,
                              touched: np.ndarray, y0: int = 0, x0: int = 0) -> None:
    """NumPy reference of `tint_lab_planes` (float64 maths, the formulas of `tint_lab`)."""
    p = params
    h, w = mask.shape
    if p.intensity <= 0.0 or mask.size == 0:
        return
    reg = lab[:, y0:y0 + h, x0:x0 + w]
    lum, a, b = (reg[k].astype(np.float64) for k in range(3))
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
    on = alpha > 0.0
    for k, (old, new) in enumerate(((lum, lt), (a, at), (b, bt))):
        reg[k][on] = (old + alpha * (new - old))[on]
    touched[y0:y0 + h, x0:x0 + w][on] = 1


def lab_planes_to_bgr(lab: np.ndarray, touched: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write the touched pixels of planar Lab (3, H, W) back to uint8 BGR `out` (H, W, 3).

    Rounded to the nearest code value; pixels where touched == 0 are not written. out may be
    any strides (a view of a frame's region). Returns out.
    """
    _check_planes(lab)
    if out.dtype != np.uint8 or out.shape != lab.shape[1:] + (3,):
        raise ValueError(f"out must be uint8 {lab.shape[1:] + (3,)}, got {out.dtype} {out.shape}")
    if touched.dtype != np.uint8 or touched.shape != lab.shape[1:]:
        raise ValueError(f"touched must be uint8 {lab.shape[1:]}, got {touched.dtype} "
                         f"{touched.shape}")
    if HAVE_NUMBA:
        _lab_planes_to_bgr_nb(lab, touched, out, _PLANAR_TABLES)
    else:
        on = touched.astype(bool)
        out[on] = lab_planes_to_bgr_reference(lab)[on]
    return out


@njit(cache=True, inline="always", fastmath=FASTMATH, error_model="numpy")
def _lab_f_inv32(f):
    f3 = f * f * f
    lin = (np.float32(116.0) * f - np.float32(16.0)) * np.float32(1.0 / LAB_KAPPA)
    return f3 if f3 > np.float32(LAB_EPSILON) else lin


@njit(cache=True, inline="always", fastmath=FASTMATH, error_model="numpy")
def _code_u(c):
    """Linear light c -> (clipped c, scaled sqrt for the code table)."""
    c = min(max(c, np.float32(0.0)), np.float32(1.0))
    return c, np.sqrt(c) * np.float32(_CODE_STEPS)


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _lab_planes_to_bgr_nb(lab, touched, out, tables):
    m, thr, start = tables[2], tables[3], tables[4]
    m00, m01, m02 = m[0, 0], m[0, 1], m[0, 2]  # locals: loads in the loop would block SIMD
    m10, m11, m12 = m[1, 0], m[1, 1], m[1, 2]
    m20, m21, m22 = m[2, 0], m[2, 1], m[2, 2]
    h, w = touched.shape
    cr = np.empty(w, dtype=np.float32)
    cg = np.empty(w, dtype=np.float32)
    cb = np.empty(w, dtype=np.float32)
    ur = np.empty(w, dtype=np.float32)
    ug = np.empty(w, dtype=np.float32)
    ub = np.empty(w, dtype=np.float32)
    for i in range(h):
        rt = touched[i]
        j0 = 0
        while j0 < w and rt[j0] == 0:
            j0 += 1
        if j0 == w:
            continue
        j1 = w
        while rt[j1 - 1] == 0:
            j1 -= 1
        rl, ra, rb = lab[0, i, j0:j1], lab[1, i, j0:j1], lab[2, i, j0:j1]
        for j in range(j1 - j0):  # the arithmetic (vectorised)
            fy = (rl[j] + np.float32(16.0)) * np.float32(1.0 / 116.0)
            x3 = _lab_f_inv32(fy + ra[j] * np.float32(1.0 / 500.0))
            y3 = _lab_f_inv32(fy)
            z3 = _lab_f_inv32(fy - rb[j] * np.float32(1.0 / 200.0))
            cr[j], ur[j] = _code_u(m00 * x3 + m01 * y3 + m02 * z3)
            cg[j], ug[j] = _code_u(m10 * x3 + m11 * y3 + m12 * z3)
            cb[j], ub[j] = _code_u(m20 * x3 + m21 * y3 + m22 * z3)
        for jj in range(j1 - j0):  # exact rounding to code values (table look-ups)
            j = j0 + jj
            if rt[j]:
                k = start[int(ub[jj])]
                out[i, j, 0] = k + (cb[jj] >= thr[k + 1])
                k = start[int(ug[jj])]
                out[i, j, 1] = k + (cg[jj] >= thr[k + 1])
                k = start[int(ur[jj])]
                out[i, j, 2] = k + (cr[jj] >= thr[k + 1])


def lab_planes_to_bgr_reference(lab: np.ndarray) -> np.ndarray:
    """NumPy reference of `lab_planes_to_bgr`: every pixel, a new uint8 (H, W, 3)."""
    return np.floor(lab_to_bgr_float(np.moveaxis(lab.astype(np.float64), 0, -1)) + 0.5
                    ).astype(np.uint8)
