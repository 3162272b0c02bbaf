"""The mouth guard: keeps the inside of an open mouth (teeth, tongue, the dark cavity) free of
every makeup product.

The inner-lip contour marks the opening, but landmarks are a pixel or two off (tracked and
annotated ones alike) and a narrow opening is only a few pixels tall: a geometric cut alone
either paints teeth or leaves lips bare. The guard combines the geometry with a colour test:

- geometry: `s`, the signed distance in pixels from the inner-lip curve (negative inside the
  opening). Deeper than `band` inside, a pixel is the mouth's inside whatever its colour;
  within `band` of the curve on either side its colour decides, and that reach fades out
  over `FADE_PX` beyond `band` outside (so a pixel well on the lips is never held back).
  `band` is `BAND_PX` pixels, or `BAND_IOD` x the inter-ocular distance on large faces.
- colour (CIELAB of the frame before any product): a pixel is the mouth's inside when it is
  far less red for its lightness than this face's lips (teeth, a grey cavity; redness
  a / (L + 16), as Lab chroma scales with L + 16 under dimmer light), or far darker than
  them (the cavity in shadow), or paler and brighter (teeth in tinted light). The lips'
  colour is their local mean (Gaussian-weighted over this face's clear lip pixels nearby,
  lips are often lit unevenly), so the test follows skin tone and light. The redness tests
  are off when the lips themselves are not red (a grey image), leaving the darkness test.

Colour-tested pixels on the lip side of the curve count only where they connect to such
pixels inside it (a highlight on the lip can look like teeth, but it is an island).

The result is a `Mask` of weights products keep: 0 on the mouth's inside, 1 on the lips and
everywhere else, feathered (smooth ramps in `s` and in colour, and the colour test spread
0.7 px outward from teeth so their anti-aliased edge is spared too). `guard_mask` multiplies
a product's mask by it. A tongue inside `band` of the lip line, lip-coloured, is not told
apart from the lips; deeper inside, the geometry spares it.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from nnlite.jit import HAVE_NUMBA, njit
from tracker.masks import FaceShape, Mask, smoothstep

BAND_PX = 2.5  # landmark error covered by the colour test, pixels (at least)
BAND_IOD = 0.025  # ... or this fraction of the inter-ocular distance, if larger
# Redness (a / (L + 16)) relative to the lips' nearby: below LOW the pixel is the mouth's
# inside (teeth, a grey cavity), above HIGH it is lip; smooth in between (teeth in pink
# light reach 0.6). A pixel also brighter than the lips by BRIGHT_LOW .. BRIGHT_HIGH (L
# units) counts as teeth up to PALE_LOW .. PALE_HIGH.
REDNESS_LOW, REDNESS_HIGH = 0.5, 0.8
PALE_LOW, PALE_HIGH = 0.8, 0.9
BRIGHT_LOW, BRIGHT_HIGH = 5.0, 12.0
# The redness test needs red lips: it fades in as the lips' redness goes from 0.06 to 0.12.
LIP_REDNESS_MIN, LIP_REDNESS_FULL = 0.06, 0.12
# Lightness below DARK_HIGH x the lips' nearby is cavity, fully so below DARK_LOW x; the
# lips' own shading (the crease of a closed mouth's corners) mostly stays above that.
DARK_LOW, DARK_HIGH = 0.45, 0.65
FADE_PX = 1.5  # the colour test's reach fades out over this many pixels past the band
LOCAL_SIGMA_PX = 3.0  # lip colour is compared with the lips' within about this distance
SPREAD_PX = 0.7  # the colour test spreads this far (Gaussian sigma) onto its neighbours
MIN_LIP_PIXELS = 12


@dataclass(frozen=True)
class MouthGeometry:
    """What the guard needs from the landmarks alone (`mouth_geometry`, once per FaceShape).

    rect : (x0, y0, x1, y1) frame pixels, end exclusive; s : float32 (h, w), the signed
    distance from the inner-lip curve in pixels (negative inside the opening); lips : bool
    (h, w), the clear lip pixels the colour statistics come from; band : pixels.
    """
    rect: tuple
    s: np.ndarray
    lips: np.ndarray
    band: float

    def crop(self, rect) -> MouthGeometry:
        """The same geometry over a sub-rectangle (x0, y0, x1, y1) of `self.rect`."""
        gx0, gy0 = self.rect[:2]
        rows, cols = slice(rect[1] - gy0, rect[3] - gy0), slice(rect[0] - gx0, rect[2] - gx0)
        return MouthGeometry(tuple(rect), self.s[rows, cols], self.lips[rows, cols], self.band)


def _geometry(face: FaceShape) -> MouthGeometry:
    band = max(BAND_PX, BAND_IOD * face.iod)
    inner = face.lips_inner
    pad = 2.0 * band + 2.0
    h_frame, w_frame = face.frame_shape
    x0 = max(int(np.floor(inner[:, 0].min() - pad)), 0)
    y0 = max(int(np.floor(inner[:, 1].min() - pad)), 0)
    x1 = max(min(int(np.ceil(inner[:, 0].max() + pad)) + 1, w_frame), x0)
    y1 = max(min(int(np.ceil(inner[:, 1].max() + pad)) + 1, h_frame), y0)
    h, w = y1 - y0, x1 - x0
    if h == 0 or w == 0:
        return MouthGeometry((x0, y0, x1, y1), np.zeros((h, w), np.float32),
                             np.zeros((h, w), bool), band)
    off = np.array([x0, y0], np.float64)
    contour = np.round((inner - off) * 16).astype(np.int32)
    opening = np.zeros((h, w), np.uint8)
    cv2.fillPoly(opening, [contour], 1, cv2.LINE_8, 4)
    on_line = np.zeros((h, w), np.uint8)  # a closed mouth's contour has no inside, only this
    cv2.polylines(on_line, [contour], True, 1, 1, cv2.LINE_8, 4)
    inside = opening & (1 - on_line)
    d_out = cv2.distanceTransform(1 - (opening | on_line), cv2.DIST_L2, cv2.DIST_MASK_5)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_5)
    s = (d_out - d_in).astype(np.float32)
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round((face.lips_outer - off) * 16).astype(np.int32)], 1,
                 cv2.LINE_8, 4)
    lips = cv2.erode(lips, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=1)  # off the lips' outer edge (skin)
    return MouthGeometry((x0, y0, x1, y1), s, lips.astype(bool) & (s > band + 1.0), band)


def mouth_geometry(face: FaceShape) -> MouthGeometry:
    """The face's `MouthGeometry`, computed once per FaceShape (rect clipped to the frame)."""
    return face.memo("mouth_geometry", lambda: _geometry(face))


def _connected_to_opening(candidates: np.ndarray, opening: np.ndarray) -> np.ndarray:
    """float32 (h, w): 1 on the 8-connected regions of bool `candidates` that reach into
    bool `opening` (and one pixel around them, their soft edge), else 0.

    Teeth seen past a misplaced lip line continue the teeth inside it; a highlight on the
    lip, as pale and bright as teeth, is an island of its own and stays lip.
    """
    n, labels = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(candidates.shape, np.float32)
    reached = np.zeros(n, np.uint8)
    reached[labels[candidates & opening]] = 1
    reached[0] = 0
    keep = reached[labels]
    return cv2.dilate(keep, np.ones((3, 3), np.uint8)).astype(np.float32)


def mouth_inside(lum: np.ndarray, a: np.ndarray, geom: MouthGeometry) -> np.ndarray:
    """How much each pixel of the guard's rectangle is the mouth's inside, float32 (h, w) in
    [0, 1], from its Lab lightness `lum` and a (float32 (h, w), before any product)."""
    s = geom.s
    band = geom.band
    ref = geom.lips
    if ref.sum() >= MIN_LIP_PIXELS:
        redness = a / (lum + np.float32(16.0))
        # The lips' colour near each pixel (an upper lip in shadow, a bright lower lip),
        # and their overall redness: normalised convolution over the clear lip pixels.
        w = ref.astype(np.float32)
        sigma = max(LOCAL_SIGMA_PX, band)
        den, num_l, num_red = (cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
                               for x in (w, lum * w, redness * w))
        overall_red = float(redness[ref].mean())
        fills = (float(lum[ref].mean()), overall_red,
                 float(smoothstep((overall_red - LIP_REDNESS_MIN)
                                  / (LIP_REDNESS_FULL - LIP_REDNESS_MIN))))
        terms = _mouth_terms_nb if HAVE_NUMBA else mouth_terms_reference
        # Contiguous arguments: one specialisation of the kernel (a crop of the geometry is a view).
        core, reach, colour = terms(np.ascontiguousarray(lum), redness, np.ascontiguousarray(s),
                                    float(band), den, num_l, num_red, *fills)
        colour *= _connected_to_opening(colour * reach > 0.5, (s <= 0.0) | (core > 0.5))
        colour = np.maximum(colour, cv2.GaussianBlur(colour, (0, 0), SPREAD_PX))
    else:
        core, reach = _geometry_terms(s, band)
        colour = np.zeros(s.shape, np.float32)
    inside = np.maximum(core, colour * reach).astype(np.float32)
    inside[inside > 0.98] = 1.0  # crisp: such pixels stay bit-identical
    return inside


def _geometry_terms(s: np.ndarray, band: float) -> tuple[np.ndarray, np.ndarray]:
    """(core, reach), float32 like s: 1 deeper than `band` inside the opening; 1 within
    `band` of the curve, fading to 0 FADE_PX further out."""
    return (1.0 - smoothstep((s + band) / (0.5 * band)),
            1.0 - smoothstep((s - band) / FADE_PX))


def mouth_terms_reference(lum, redness, s, band, den, num_l, num_red, fill_l, fill_red,
                          confident):
    """NumPy reference of `_mouth_terms_nb`: the guard's per-pixel terms (core, reach,
    colour), float32 (h, w) each.

    lum, redness (a / (L + 16)), s : float32 (h, w); den, num_l, num_red : float32 (h, w),
    the Gaussian blurs of the clear-lip weights and of L and redness times them (the lips'
    local means are num / den, or fill_l / fill_red where den < 1e-3: no lip pixel near);
    confident : 0..1, how red the lips are overall (the redness tests fade in with it).
    """
    core, reach = _geometry_terms(s, band)
    far = den < 1e-3
    safe = np.where(far, np.float32(1.0), den)
    lip_l = np.where(far, np.float32(fill_l), num_l / safe)
    lip_red = np.where(far, np.float32(fill_red), num_red / safe)
    darkness = lum / np.maximum(lip_l, 1.0)
    dark = 1.0 - smoothstep((darkness - DARK_LOW) / (DARK_HIGH - DARK_LOW))
    rel = redness / np.maximum(lip_red, LIP_REDNESS_MIN)
    white = 1.0 - smoothstep((rel - REDNESS_LOW) / (REDNESS_HIGH - REDNESS_LOW))
    pale = (1.0 - smoothstep((rel - PALE_LOW) / (PALE_HIGH - PALE_LOW))) * smoothstep(
        (lum - lip_l - BRIGHT_LOW) / (BRIGHT_HIGH - BRIGHT_LOW))
    colour = np.maximum(dark, np.float64(confident) * np.maximum(white, pale))
    return core, reach, colour.astype(np.float32)


@njit(cache=True, inline="always")
def _ramp32(x):
    """`tracker.masks.smoothstep` of one float32, in float32."""
    x = min(max(x, np.float32(0.0)), np.float32(1.0))
    return x * x * (np.float32(3.0) - np.float32(2.0) * x)


# No fastmath: float32 operations in the reference's order give its values exactly.
@njit(cache=True, error_model="numpy")
def _mouth_terms_nb(lum, redness, s, band, den, num_l, num_red, fill_l, fill_red, confident):
    h, w = s.shape
    core = np.empty((h, w), np.float32)
    reach = np.empty((h, w), np.float32)
    colour = np.empty((h, w), np.float32)
    one = np.float32(1.0)
    b = np.float32(band)
    half = np.float32(0.5 * band)
    fade = np.float32(FADE_PX)
    tiny = np.float32(1e-3)
    fl, fr = np.float32(fill_l), np.float32(fill_red)
    dark_lo, dark_w = np.float32(DARK_LOW), np.float32(DARK_HIGH - DARK_LOW)
    red_lo, red_w = np.float32(REDNESS_LOW), np.float32(REDNESS_HIGH - REDNESS_LOW)
    pale_lo, pale_w = np.float32(PALE_LOW), np.float32(PALE_HIGH - PALE_LOW)
    bright_lo, bright_w = np.float32(BRIGHT_LOW), np.float32(BRIGHT_HIGH - BRIGHT_LOW)
    red_min = np.float32(LIP_REDNESS_MIN)
    for i in range(h):
        for j in range(w):
            sv = s[i, j]
            core[i, j] = one - _ramp32((sv + b) / half)
            reach[i, j] = one - _ramp32((sv - b) / fade)
            d = den[i, j]
            if d < tiny:
                ll, lr = fl, fr
            else:
                ll, lr = num_l[i, j] / d, num_red[i, j] / d
            lv = lum[i, j]
            dark = one - _ramp32((lv / max(ll, one) - dark_lo) / dark_w)
            rel = redness[i, j] / max(lr, red_min)
            white = one - _ramp32((rel - red_lo) / red_w)
            pale = (one - _ramp32((rel - pale_lo) / pale_w)) * _ramp32(
                ((lv - ll) - bright_lo) / bright_w)
            colour[i, j] = max(np.float64(dark), confident * np.float64(max(white, pale)))
    return core, reach, colour


def mouth_guard(face: FaceShape, lab: np.ndarray, x0: int = 0, y0: int = 0) -> Mask | None:
    """The weights products keep around the mouth (0 on its inside, 1 elsewhere).

    face : the FaceShape; lab : float32 (3, H, W) CIELAB planes of the frame rectangle whose
    top-left corner is (x0, y0) in frame pixels, before any product is applied. Returns a
    Mask over the part of the mouth's rectangle inside that buffer, or None when they do
    not overlap.
    """
    geom = mouth_geometry(face)
    gx0, gy0, gx1, gy1 = geom.rect
    bx0, by0 = max(gx0, x0), max(gy0, y0)
    bx1, by1 = min(gx1, x0 + lab.shape[2]), min(gy1, y0 + lab.shape[1])
    if bx1 <= bx0 or by1 <= by0:
        return None
    if (bx0, by0, bx1, by1) != geom.rect:  # the buffer holds part of the mouth
        geom = geom.crop((bx0, by0, bx1, by1))
    rows, cols = slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0)
    lum = lab[0, rows, cols].astype(np.float32)
    a = lab[1, rows, cols].astype(np.float32)
    return Mask(1.0 - mouth_inside(lum, a, geom), bx0, by0)


def guard_mask(mask: Mask, guard: Mask | None) -> Mask:
    """A product's mask times the guard's weights where they overlap (a new Mask; the
    mask as it is when the guard is None or does not overlap it)."""
    if guard is None or mask.data.size == 0:
        return mask
    h, w = mask.data.shape
    gh, gw = guard.data.shape
    x0, y0 = max(mask.x0, guard.x0), max(mask.y0, guard.y0)
    x1, y1 = min(mask.x0 + w, guard.x0 + gw), min(mask.y0 + h, guard.y0 + gh)
    if x1 <= x0 or y1 <= y0:
        return mask
    data = mask.data.copy()
    data[y0 - mask.y0:y1 - mask.y0, x0 - mask.x0:x1 - mask.x0] *= \
        guard.data[y0 - guard.y0:y1 - guard.y0, x0 - guard.x0:x1 - guard.x0]
    return Mask(data, mask.x0, mask.y0)
