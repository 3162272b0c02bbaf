"""Colour parsing and colour-space conversions (sRGB, linear light, CIELAB), in NumPy.

Colours on the command line and in look presets are hex strings; images are uint8 BGR
as OpenCV gives them. CIELAB here is the standard one: sRGB primaries, D65 white,
L in [0, 100], a and b roughly in [-128, 127]. The Numba blending kernels in
`tracker.blend` use the same constants (`XYZ_FROM_LINEAR_RGB`, `LINEAR_RGB_FROM_XYZ`,
`SRGB_TO_LINEAR_LUT`) so kernel and reference agree.
"""
from __future__ import annotations

import re

import numpy as np

HEX_FORMATS = "'#rrggbb', 'rrggbb', '#rgb' or 'rgb' (hex digits 0-9, a-f)"

_HEX_RE = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")

# D65 white point, and sRGB linear -> XYZ already divided by it (rows: X/Xn, Y/Yn, Z/Zn;
# columns: linear R, G, B).
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
XYZ_FROM_LINEAR_RGB = np.array([
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
]) / WHITE_D65[:, None]
LINEAR_RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_LINEAR_RGB)

LAB_EPSILON = 216.0 / 24389.0
LAB_KAPPA = 24389.0 / 27.0


def parse_hex(color: str) -> tuple[int, int, int]:
    """Parse a hex colour string into (r, g, b) ints in [0, 255].

    Accepts '#rrggbb', 'rrggbb', '#rgb' and 'rgb' (case-insensitive, surrounding
    whitespace ignored). Anything else raises ValueError naming the input and the
    accepted formats.
    """
    if not isinstance(color, str):
        raise ValueError(f"invalid colour {color!r}: expected a string, one of {HEX_FORMATS}")
    m = _HEX_RE.fullmatch(color.strip())
    if m is None:
        raise ValueError(f"invalid colour {color!r}: expected {HEX_FORMATS}, e.g. '#b3001b'")
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def hex_to_bgr(color: str) -> tuple[int, int, int]:
    """Hex colour string -> (b, g, r) ints in [0, 255], OpenCV channel order."""
    r, g, b = parse_hex(color)
    return b, g, r


def bgr_to_hex(bgr) -> str:
    """(b, g, r) ints in [0, 255] -> '#rrggbb'."""
    b, g, r = (int(v) for v in bgr)
    return f"#{r:02x}{g:02x}{b:02x}"


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] -> linear light in [0, 1] (float64, same shape)."""
    c = np.asarray(c, dtype=np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB in [0, 1] (float64, same shape; input clipped to [0, 1])."""
    c = np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1.0 / 2.4) - 0.055)


# sRGB code value (0..255) -> linear light; the kernels index it by uint8 value.
SRGB_TO_LINEAR_LUT = srgb_to_linear(np.arange(256) / 255.0)


def hex_to_linear(color: str) -> np.ndarray:
    """Hex colour -> linear-light BGR, float32 (3,) in [0, 1]."""
    return SRGB_TO_LINEAR_LUT[list(hex_to_bgr(color))].astype(np.float32)


def lab_f(t: np.ndarray) -> np.ndarray:
    """CIELAB's f: cube root above LAB_EPSILON, linear below (float64, same shape)."""
    return np.where(t > LAB_EPSILON, np.cbrt(t), (LAB_KAPPA * t + 16.0) / 116.0)


def lab_f_inv(f: np.ndarray) -> np.ndarray:
    """Inverse of `lab_f`."""
    f3 = f * f * f
    return np.where(f3 > LAB_EPSILON, f3, (116.0 * f - 16.0) / LAB_KAPPA)


def bgr_to_lab(bgr: np.ndarray) -> np.ndarray:
    """uint8 BGR (..., 3) -> CIELAB float64 (..., 3) as (L, a, b)."""
    bgr = np.asarray(bgr)
    if bgr.dtype != np.uint8:
        raise ValueError(f"bgr_to_lab expects uint8 BGR, got {bgr.dtype}")
    lin = SRGB_TO_LINEAR_LUT[bgr[..., ::-1]]  # (..., 3) linear R, G, B
    f = lab_f(lin @ XYZ_FROM_LINEAR_RGB.T)
    lab = np.empty(f.shape, dtype=np.float64)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_bgr_float(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> BGR float64 (..., 3) in [0, 255], not rounded (out-of-gamut clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    rgb = lab_f_inv(f) @ LINEAR_RGB_FROM_XYZ.T
    return 255.0 * linear_to_srgb(rgb)[..., ::-1]


def lab_to_bgr(lab: np.ndarray) -> np.ndarray:
    """CIELAB (..., 3) -> uint8 BGR (..., 3), rounded to nearest."""
    return np.floor(lab_to_bgr_float(lab) + 0.5).astype(np.uint8)


def hex_to_lab(color: str) -> np.ndarray:
    """Hex colour -> CIELAB float32 (3,) as (L, a, b)."""
    return bgr_to_lab(np.array(hex_to_bgr(color), dtype=np.uint8)).astype(np.float32)
