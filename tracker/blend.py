"""Makeup blending kernels (Numba), each with its vectorised NumPy reference beside it.

A product is a layer of its colour over the skin, lit by the scene (`tracker.lighting`
estimates the light from the face). Blending happens in CIELAB, per pixel:

- the layer's colour: the product's colour under the face's light (`color_lab`, at the
  surface's mean shading where the product is opaque, `ref_lightness`), times the local
  shading: (L + 16) scales by (Ls + 16) / (ref + 16), where Ls is the surface's smoothed
  lightness at that pixel
  (`tracker.lighting.smooth_lightness`). Scaling linear light by k scales L + 16, a and b
  by k^(1/3), so the layer darkens with the scene exactly as a lit pigment does;
- the fine texture on top: L - Ls (lip lines, pores, hair strands) is added back with gain
  `texture_dark` / `texture_light` below / above the local mean (a matte finish damps the
  bright side, i.e. the shine), and the chroma follows the lightness reached below the
  layer's own and stays at the layer's above it: a brighter spot of a saturated pigment
  would leave sRGB's gamut and be clipped, which crushed the bright side of the lips' texture
  (`tools.makeup_realism`, texture kept on 101 validation faces: worst 0.46 -> 0.63);
- a gloss finish adds a specular highlight where the surface is brighter than its local
  mean (smoothstep of L - Ls), up to 1.5 x the pixel's own (L + 16): relative to the light
  there, so it dims with the scene too;
- intensity is the layer's opacity: the result is mixed with the pixel by mask * intensity
  (1: the layer alone, as a swatch would look under this light).

The formula is written twice: `_tint_pixel` (one pixel, float32, inlined into the kernel)
and `tint_reference` (NumPy, float64, whole arrays), its reference. Where the weight
mask * intensity is 0 the pixel is not touched at all (bit-identical), so intensity 0 or a
zero mask changes nothing.

`tracker.makeup.render` works per face on planar Lab: `bgr_to_lab_planes` once for the
union of a face's masks, then per product `lab_planes_stats` and `tint_lab_planes` (in
place on the float32 buffer, marking the pixels they touch), and `lab_planes_to_bgr` once
for the touched pixels: one conversion each way per face instead of one per product.
Layout: images are uint8 BGR (H, W, 3) (any strides, e.g. a view of a frame's ROI), masks
and smoothed lightness float32 (h, w), masks in [0, 1]. Colour constants come from
`tracker.colors`.

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
    lab_to_bgr_float,
    srgb_to_linear,
)

# Layout of the float64 parameter vector the kernels take (`TintParams.as_array`).
_P_L, _P_A, _P_B, _P_REF_L, _P_TEX_DARK, _P_TEX_LIGHT = 0, 1, 2, 3, 4, 5
_P_GLOSS, _P_GLOSS_AT, _P_GLOSS_WIDTH, _P_INTENSITY = 6, 7, 8, 9
_N_PARAMS = 10
_HIGHLIGHT = 1.5  # a gloss highlight reaches this x the pixel's own L + 16

if not HAVE_NUMBA:  # the kernels below stay plain Python; the public functions use the references
    warn_numba_missing()


@dataclass(frozen=True)
class TintParams:
    """How one product is blended (see the module docstring).

    color_lab : the layer's colour (L, a, b): the product's under the face's light, where the
    surface's smoothed lightness is `ref_lightness` (its mean where the product is opaque:
    `tracker.lighting.opaque_shading`).
    texture_dark / texture_light : gain on the fine texture L - Ls below / above the local
    mean (1 keeps it as it is in L). gloss : 0..1 strength of the specular highlight;
    gloss_at / gloss_width : the highlight ramps in where L - Ls goes from gloss_at to
    gloss_at + gloss_width (L units). intensity : 0..1 the layer's opacity, multiplies the
    mask.
    """
    color_lab: tuple
    ref_lightness: float
    texture_dark: float = 1.0
    texture_light: float = 1.0
    gloss: float = 0.0
    gloss_at: float = 4.0
    gloss_width: float = 8.0
    intensity: float = 1.0

    def as_array(self) -> np.ndarray:
        """The float64 (10,) vector the kernels take (indices `_P_*`)."""
        p = np.empty(_N_PARAMS, dtype=np.float64)
        p[_P_L:_P_B + 1] = self.color_lab
        p[_P_REF_L] = self.ref_lightness
        p[_P_TEX_DARK] = self.texture_dark
        p[_P_TEX_LIGHT] = self.texture_light
        p[_P_GLOSS] = self.gloss
        p[_P_GLOSS_AT] = self.gloss_at
        p[_P_GLOSS_WIDTH] = max(self.gloss_width, 1e-6)
        p[_P_INTENSITY] = self.intensity
        return p


def tint_reference(lum: np.ndarray, a: np.ndarray, b: np.ndarray, alpha: np.ndarray,
                   params: TintParams, smooth: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The blend formula in NumPy (float64): the reference of the kernels' `_tint_pixel`.

    lum, a, b : float arrays of one shape, the Lab values under the mask; alpha : the
    blend weight mask * intensity, clipped to [0, 1], same shape; smooth : the surface's
    smoothed lightness Ls, same shape (None: ref_lightness everywhere). Returns the new
    (L, a, b), float64; equal to the input wherever alpha is 0.
    """
    p = params
    lum, a, b = (np.asarray(v, dtype=np.float64) for v in (lum, a, b))
    ls = np.full(lum.shape, p.ref_lightness) if smooth is None else np.asarray(smooth, np.float64)
    lp, ap, bp = (float(v) for v in p.color_lab)
    d = lum - ls
    r = np.clip((ls + 16.0) / (p.ref_lightness + 16.0), 0.0, 2.0)
    lt = (lp + 16.0) * r - 16.0 + np.where(d < 0.0, p.texture_dark, p.texture_light) * d
    q = np.clip((lt + 16.0) / (lp + 16.0), 0.0, 1.0)
    at, bt = ap * q, bp * q
    if p.gloss > 0.0:
        x = np.clip((d - p.gloss_at) / max(p.gloss_width, 1e-6), 0.0, 1.0)
        spec = p.gloss * x * x * (3.0 - 2.0 * x)
        high = np.minimum(_HIGHLIGHT * (lum + 16.0) - 16.0, 100.0)
        lt = lt + spec * np.maximum(high - lt, 0.0)
        at = at * (1.0 - 0.7 * spec)
        bt = bt * (1.0 - 0.7 * spec)
    lt = np.clip(lt, 0.0, 100.0)
    return lum + alpha * (lt - lum), a + alpha * (at - a), b + alpha * (bt - b)


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
    """Mask-weighted statistics of planar Lab: the mask (h, w) lies at (y0, x0) in lab (3, H, W).

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
                    y0: int = 0, x0: int = 0, smooth: np.ndarray | None = None) -> None:
    """Blend a product into planar Lab in place (see the module docstring): the mask (h, w)
    lies at (y0, x0) in lab (3, H, W).

    touched : uint8 (H, W); set to 1 where the weight mask * intensity > 0. smooth : float32
    (h, w), the surface's smoothed lightness under the mask (None: ref_lightness
    everywhere). Lab values are left exactly as they were wherever the weight is 0.
    """
    _check_placed(lab, mask, y0, x0)
    if touched.dtype != np.uint8 or touched.shape != lab.shape[1:]:
        raise ValueError(f"touched must be uint8 {lab.shape[1:]}, got {touched.dtype} "
                         f"{touched.shape}")
    if smooth is None:
        smooth = np.full(mask.shape, params.ref_lightness, np.float32)
    if smooth.shape != mask.shape:
        raise ValueError(f"smooth must be {mask.shape} like the mask, got {smooth.shape}")
    if params.intensity <= 0.0 or mask.size == 0:
        return
    if HAVE_NUMBA:
        _tint_lab_planes_nb(lab, np.ascontiguousarray(mask), y0, x0, params.as_array(), touched,
                            np.ascontiguousarray(smooth, dtype=np.float32))
    else:
        tint_lab_planes_reference(lab, mask, params, touched, y0, x0, smooth)


@njit(cache=True, inline="always", fastmath=FASTMATH, error_model="numpy")
def _tint_pixel(lum, a, b, alpha, ls, c):
    """The blend formula for one pixel in float32 (NumPy reference: `tint_reference`).

    lum, a, b : its Lab values; alpha : mask * intensity clipped to [0, 1]; ls : the
    surface's smoothed lightness there; c : the per-product constants from
    `_tint_constants`. Returns the new (L, a, b); exactly the input where alpha is 0
    (x + 0 * y == x). Without gloss, spec is 0 and the highlight terms change nothing, so
    there is no branch (the loop stays vectorised).
    """
    lp16, ap, bp, inv_ref16, inv_lp16, tex_dark, tex_light, gloss, gloss_at, inv_width = c
    f0, f1, f2 = np.float32(0.0), np.float32(1.0), np.float32(2.0)
    f16 = np.float32(16.0)
    d = lum - ls
    r = min(max((ls + f16) * inv_ref16, f0), f2)
    lt = lp16 * r - f16 + (tex_dark if d < f0 else tex_light) * d
    q = min(max((lt + f16) * inv_lp16, f0), f1)
    x = min(max((d - gloss_at) * inv_width, f0), f1)
    spec = gloss * x * x * (np.float32(3.0) - f2 * x)
    high = min(np.float32(_HIGHLIGHT) * (lum + f16) - f16, np.float32(100.0))
    lt = lt + spec * max(high - lt, f0)
    keep = (f1 - np.float32(0.7) * spec) * q
    lt = min(max(lt, f0), np.float32(100.0))
    return lum + alpha * (lt - lum), a + alpha * (ap * keep - a), b + alpha * (bp * keep - b)


@njit(cache=True, inline="always", fastmath=FASTMATH, error_model="numpy")
def _tint_constants(p):
    """`TintParams.as_array()` p -> the float32 constants `_tint_pixel` takes (a tuple)."""
    f32 = np.float32
    return (f32(p[_P_L] + 16.0), f32(p[_P_A]), f32(p[_P_B]), f32(1.0 / (p[_P_REF_L] + 16.0)),
            f32(1.0 / (p[_P_L] + 16.0)), f32(p[_P_TEX_DARK]), f32(p[_P_TEX_LIGHT]),
            f32(p[_P_GLOSS]), f32(p[_P_GLOSS_AT]), f32(1.0 / p[_P_GLOSS_WIDTH]))


@njit(cache=True, fastmath=FASTMATH, error_model="numpy")
def _tint_lab_planes_nb(lab, mask, y0, x0, p, touched, smooth):
    h, w = mask.shape
    c = _tint_constants(p)
    intensity = np.float32(p[_P_INTENSITY])
    for i in range(h):
        # row slices indexed from 0: an index like x0 + j would block SIMD
        rl, ra, rb = lab[0, y0 + i, x0:x0 + w], lab[1, y0 + i, x0:x0 + w], lab[2, y0 + i, x0:x0 + w]
        rm, rt, rs = mask[i], touched[y0 + i, x0:x0 + w], smooth[i]
        for j in range(w):
            alpha = min(rm[j] * intensity, np.float32(1.0))
            rl[j], ra[j], rb[j] = _tint_pixel(rl[j], ra[j], rb[j], alpha, rs[j], c)
            rt[j] = rt[j] | np.uint8(alpha > np.float32(0.0))


def tint_lab_planes_reference(lab: np.ndarray, mask: np.ndarray, params: TintParams,
                              touched: np.ndarray, y0: int = 0, x0: int = 0,
                              smooth: np.ndarray | None = None) -> None:
    """NumPy reference of `tint_lab_planes` (float64 maths, `tint_reference`)."""
    h, w = mask.shape
    if params.intensity <= 0.0 or mask.size == 0:
        return
    reg = lab[:, y0:y0 + h, x0:x0 + w]
    alpha = np.minimum(mask.astype(np.float64) * params.intensity, 1.0)
    new = tint_reference(reg[0], reg[1], reg[2], alpha, params, smooth)
    on = alpha > 0.0
    for k in range(3):
        reg[k][on] = new[k][on]
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
