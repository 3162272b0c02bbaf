"""Soft makeup masks from 68 landmarks: lips, eyeshadow, eyeliner, blush, brows, skin.

Every mask is float32 in [0, 1], anti-aliased and feathered, and covers only a small
rectangle of the frame (`Mask.x0`, `Mask.y0`, `Mask.data.shape`) inside the face's
region of interest (`face_roi`): the whole frame is never rasterised or blurred.

Landmarks are float32 (68, 2) frame pixels, 0-based pixel centres, 300-W / Multi-PIE
order (`tracker.regions`). Contours are drawn as centripetal Catmull-Rom curves through
the landmarks and rasterised with 1/16-pixel precision (`cv2.fillPoly(..., shift=4)`,
anti-aliased), so a landmark moving by a fraction of a pixel moves the mask smoothly.
All sizes (feathering, liner thickness, brow thickness, blush radius) scale with the
inter-ocular distance `iod = |p36 - p45|`. Feathering is a Gaussian blur of the filled
shape (lips, eyeshadow, eyeliner, brows) or a smooth falloff inside a boundary (blush
from its centre; skin only inward from the face edge, so it never bleeds past the jaw). Values below
`tracker.raster.MASK_FLOOR` are set to exactly 0, so "outside the mask" is a crisp set.

Speed: the large soft masks (foundation, blush, eyeshadow) are feathered on a grid of
half the resolution (when their feathering is at least `HALF_RES_SIGMA` pixels wide) and
upsampled bilinearly; the polygons are still filled at full resolution. The grid is
anchored to the mask's rectangle, so a face moved by whole pixels gets the same mask,
moved. Parts several masks share (the skin terms of foundation and blush, the brow
shapes) are computed once per FaceShape. The curves come from `tracker.curves`, the `Mask`
type and the canvases they are rasterised on from `tracker.raster`.

    face = FaceShape(landmarks, frame.shape)      # the curves, once per face and frame
    m = lips_mask(face)                           # Mask(data, x0, y0)
    frame[m.slices]                               # the pixels it covers

Masks: `lips_mask`, `eyeshadow_mask`, `eyeliner_mask`, `blush_mask`, `brows_mask`,
`skin_mask` (foundation); each also accepts raw landmarks plus the frame shape.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from nnlite.jit import HAVE_NUMBA, njit
from tracker import regions as R
from tracker.curves import catmull_rom, normals, resample
from tracker.raster import Canvas, Mask, blur, floor_mask, to_float


# Feathering (Gaussian sigma or fade width), as fractions of the inter-ocular distance.
FEATHER = {
    "lips": 0.012,
    "eyeshadow": 0.05,
    "eyeliner": 0.007,
    "brows": 0.014,
    "skin": 0.07,
}
FOREHEAD_RAISE = 0.32  # the face region extends this far (x iod) above the brow line


def union_box(masks) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), end-exclusive frame pixels, of the rectangle covering every Mask."""
    masks = list(masks)
    return (min(m.x0 for m in masks), min(m.y0 for m in masks),
            max(m.x0 + m.data.shape[1] for m in masks), max(m.y0 + m.data.shape[0] for m in masks))


@dataclass(frozen=True)
class FaceFrame:
    """Face-aligned axes: `right` along the eye line (p36 -> p45), `down` toward the chin."""
    origin: np.ndarray  # mid-point of the outer eye corners
    right: np.ndarray
    down: np.ndarray
    iod: float


# ------------------------------------------------------------------ geometry helpers

def check_landmarks(points) -> np.ndarray:
    """Return landmarks as float64 (68, 2); ValueError on a wrong shape or non-finite values."""
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (R.NUM_POINTS, 2):
        raise ValueError(f"landmarks must have shape (68, 2), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("landmarks contain NaN or infinite values")
    return p


def face_frame(points) -> FaceFrame:
    """Face-aligned axes and scale (inter-ocular distance, at least 1 pixel)."""
    p = check_landmarks(points)
    a, b = p[R.LEFT_EYE_OUTER], p[R.RIGHT_EYE_OUTER]
    v = b - a
    iod = float(np.hypot(v[0], v[1]))
    right = v / iod if iod > 1e-6 else np.array([1.0, 0.0])
    down = np.array([-right[1], right[0]])
    # The chin should be "down"; if the markup is mirrored, flip.
    if np.dot(p[R.CHIN] - (a + b) / 2, down) < 0:
        down = -down
    return FaceFrame(origin=(a + b) / 2, right=right, down=down, iod=max(iod, 1.0))


def _bbox(pts: np.ndarray, pad: float, clip) -> tuple[int, int, int, int]:
    (lx, ly), (hx, hy) = pts.min(axis=0), pts.max(axis=0)
    x0 = int(np.floor(lx - pad))
    y0 = int(np.floor(ly - pad))
    x1 = int(np.ceil(hx + pad)) + 1
    y1 = int(np.ceil(hy + pad)) + 1
    return max(x0, clip[0]), max(y0, clip[1]), min(x1, clip[2]), min(y1, clip[3])


@functools.lru_cache(maxsize=16)
def _unit_ramp(n: int) -> np.ndarray:
    """np.linspace(0, 1, n) as a read-only float64 column (n, 1) (cached: built per curve
    and frame otherwise)."""
    ramp = np.linspace(0.0, 1.0, n)[:, None]
    ramp.flags.writeable = False
    return ramp


class FaceShape:
    """The smooth contours of one face, computed once and shared by all its masks.

    points : float (68, 2) landmarks; frame_shape : (H, W, ...) of the frame. Curves are
    float64 (N, 2) in frame pixels. Build it once per face and pass it to the `*_mask`
    functions instead of the raw landmarks to avoid recomputing the curves per product.
    """

    def __init__(self, points, frame_shape):
        p = check_landmarks(points)
        self.points = p
        self.frame_shape = (int(frame_shape[0]), int(frame_shape[1]))
        self.frame = face_frame(p)
        self.iod = self.frame.iod
        down = self.frame.down
        # Lips: upper and lower halves drawn separately, so the mouth corners stay sharp.
        upper = catmull_rom(p[list(R.UPPER_LIP_OUTER)], 6)
        lower = catmull_rom(p[list(R.LOWER_LIP_OUTER)], 6)
        self.lips_outer = np.concatenate([upper[:-1], lower[:-1]])
        upper_in = catmull_rom(p[list(R.UPPER_LIP_INNER)], 6)
        lower_in = catmull_rom(p[list(R.LOWER_LIP_INNER)], 6)
        self.lips_inner = np.concatenate([upper_in[:-1], lower_in[:-1]])
        self.eyes = [catmull_rom(p[list(idx)], 6, closed=True) for idx in (R.LEFT_EYE, R.RIGHT_EYE)]
        # Upper lids and brow lines, image left to right, evenly resampled.
        self.lids = [resample(catmull_rom(p[list(idx)], 8), 24)
                     for idx in (R.LEFT_UPPER_LID, R.RIGHT_UPPER_LID)]
        self.brows = [resample(catmull_rom(p[list(idx)], 8), 28)
                      for idx in (R.LEFT_BROW, R.RIGHT_BROW)]
        self.brows_at_lids = [resample(b, len(lid)) for b, lid in zip(self.brows, self.lids)]
        jaw = catmull_rom(p[list(R.JAW)], 6)
        brow_line = catmull_rom(p[list(R.LEFT_BROW + R.RIGHT_BROW)][::-1], 6)
        self.polygon = np.concatenate([jaw, brow_line - down * (FOREHEAD_RAISE * self.iod)])
        pad = 0.05 * self.iod + 2.0
        self.roi = _bbox(self.polygon, pad, (0, 0, self.frame_shape[1], self.frame_shape[0]))
        self._memo = {}  # shapes and mask parts that several masks share (this frame only)

    def memo(self, key, make):
        """`make()`, computed once per FaceShape and key (it must not be modified)."""
        value = self._memo.get(key)
        if value is None:
            value = self._memo[key] = make()
        return value

    def brow_polygons(self, thickness: float = 1.0, above: float = 0.12) -> list[np.ndarray]:
        """Closed brow shapes under the annotated (upper) brow lines, tail to head.

        Width 0.09 x iod x thickness at the head, tapering to 35% at the tail; `above`
        is the fraction of the width that lies above the annotated line.
        """
        def make():
            polys = []
            for line, down, profile in self.memo("brow_frames", self._brow_frames):
                w = (0.09 * self.iod * thickness) * profile
                polys.append(np.concatenate([line - down * (above * w),
                                        (line + down * ((1.0 - above) * w))[::-1]]))
            return polys
        return self.memo(("brow_polygons", float(thickness), float(above)), make)

    def _brow_frames(self):
        """Per brow, tail to head: the line, its downward normals, the width profile."""
        frames = []
        for line, head_last in ((self.brows[0], True), (self.brows[1], False)):
            if not head_last:
                line = line[::-1]
            s = _unit_ramp(len(line))
            frames.append((line, normals(line, self.frame.down), 0.35 + 0.65 * np.sqrt(s)))
        return frames


def as_face_shape(face, frame_shape=None) -> FaceShape:
    """A FaceShape as is, or one built from (68, 2) landmarks and the frame shape."""
    if isinstance(face, FaceShape):
        return face
    if frame_shape is None:
        raise ValueError("frame_shape is needed when passing raw landmarks")
    return FaceShape(face, frame_shape)


def face_polygon(points) -> np.ndarray:
    """The face region as a closed polygon float64 (N, 2): the jaw line, closed over the
    forehead by the brow line raised `FOREHEAD_RAISE` x iod (face-aligned "up")."""
    return as_face_shape(points, (1, 1)).polygon


def face_roi(points, frame_shape) -> tuple[int, int, int, int]:
    """Face region of interest (x0, y0, x1, y1), end exclusive, clipped to the frame.

    The bounding box of `face_polygon` plus a feathering margin; every mask lies inside
    it. May be empty (x1 <= x0 or y1 <= y0) for a face outside the frame.
    """
    return as_face_shape(points, frame_shape).roi


# ------------------------------------------------------------------- working grids

# Large, soft masks (foundation, blush, eyeshadow) are rasterised and feathered on a grid
# with half the resolution when their feathering is at least this wide (pixels), then
# upsampled bilinearly: 8x less blurring work, the same look (the blur widths are reduced
# to make up for the coverage box and the bilinear kernel, see `tracker.raster.Canvas.blur`).
HALF_RES_SIGMA = 2.0


def _canvas(points_used, pad: float, face: FaceShape, down: int = 1) -> Canvas:
    return Canvas(_bbox(np.asarray(points_used, dtype=np.float64), pad, face.roi), down)


def _down_for(sigma: float) -> int:
    """The working grid step for a mask whose narrowest feathering is `sigma` pixels."""
    return 2 if sigma >= HALF_RES_SIGMA else 1


def smoothstep(x: np.ndarray) -> np.ndarray:
    """3x^2 - 2x^3 of x clipped to [0, 1]: a smooth ramp from 0 to 1 (same dtype for float32)."""
    x = np.minimum(np.maximum(x, 0.0), 1.0)  # np.clip, without its overhead on small arrays
    return x * x * (3.0 - 2.0 * x)


# ------------------------------------------------------------------------ the masks

def lips_mask(face, frame_shape=None) -> Mask:
    """Lips: outer lip contour minus the inner one (an open mouth stays clear).

    face : (68, 2) landmarks (then frame_shape is needed) or a FaceShape.
    """
    f = as_face_shape(face, frame_shape)
    sigma = FEATHER["lips"] * f.iod
    cv = _canvas(f.lips_outer, 3 * sigma + 2, f)
    m = cv.fill([f.lips_outer]) * (1.0 - cv.fill([f.lips_inner]))
    return cv.mask(blur(m, sigma))


def eyeshadow_mask(face, frame_shape=None, height: float = 0.55, layers: int = 8) -> Mask:
    """Eyeshadow on both lids: from the upper lid toward the brow, fading upward.

    height : fraction of the lid-to-brow distance the shadow reaches; it stays nearly
    full near the lid and fades toward there, then is feathered (and scaled to peak at 1).
    The eye is cut out.
    """
    f = as_face_shape(face, frame_shape)
    sigma = FEATHER["eyeshadow"] * f.iod
    lids = np.stack(f.lids)  # (2, n, 2): both eyes
    rise = np.stack(f.brows_at_lids) - lids
    t = height * (np.arange(1, layers + 1) / layers) ** 0.6  # flat near the lid, fading up
    # polys[k - 1]: layer k for both eyes, (2, 2n, 2); layer k lies inside layer k + 1.
    tops = lids[None] + t[:, None, None, None] * rise[None]
    polys = np.concatenate([np.broadcast_to(lids, tops.shape), tops[:, :, ::-1]], axis=2)
    rect = _bbox(np.concatenate([polys[-1].reshape(-1, 2)] + f.eyes), 3 * sigma + 2, f.roi)
    cvh = Canvas(rect, _down_for(sigma))
    total = cvh.fill_sum(polys)  # sum of the layers' coverages, x 255
    m = cvh.upsample(cvh.blur(cvh.to_work(total, 1.0 / (255 * layers)), sigma))
    # The lid band is narrow for its feathering, so the blur leaves a peak well below 1:
    # scale it back to 1 on the lid, so that full intensity is full opacity there.
    peak = float(m.max()) if m.size else 0.0
    if peak > 0.0:
        m = m * np.float32(1.0 / peak)
    cv = Canvas(rect)  # the eye cut-out stays sharp: full resolution
    eye = blur(cv.fill(f.eyes), FEATHER["eyeliner"] * f.iod)
    return cv.mask(m * (1.0 - eye))


def eyeliner_mask(face, frame_shape=None, thickness: float = 1.0, wing: bool = False) -> Mask:
    """Eyeliner along both upper lids, thin at the inner corner, thick at the outer one.

    thickness : scale of the line width (1.0: 0.035 x iod at the outer corner).
    wing : add a flick past the outer corner, continuing the lower lash line, turned up.
    """
    f = as_face_shape(face, frame_shape)
    p, fr = f.points, f.frame
    width = 0.035 * f.iod * thickness
    polys = []
    for lid, outer_first, lower_idx in ((f.lids[0], True, list(R.LEFT_LOWER_LID)),
                                        (f.lids[1], False, list(R.RIGHT_LOWER_LID))):
        if outer_first:
            lid = lid[::-1]  # inner corner -> outer corner
        up = normals(lid, -fr.down)
        s = _unit_ramp(len(lid))
        w = width * (0.2 + 0.8 * s ** 1.3)
        top = lid + up * (0.85 * w)
        bottom = lid - up * (0.2 * w)
        if wing:
            d = lid[-1] - p[lower_idx].mean(axis=0)
            d /= max(float(np.hypot(d[0], d[1])), 1e-9)
            turn = -0.2 if (d @ fr.right) > 0 else 0.2  # radians, toward face-up
            c, sn = np.cos(turn), np.sin(turn)
            d = np.array([c * d[0] - sn * d[1], sn * d[0] + c * d[1]])
            tip = lid[-1] + d * (0.1 * f.iod * thickness) - up[-1] * (0.1 * w[-1, 0])
            top = np.concatenate([top, tip[None]])
        polys.append(np.concatenate([top, bottom[::-1]]))
    sigma = FEATHER["eyeliner"] * f.iod
    cv = _canvas(np.concatenate(polys), 3 * sigma + 2, f)
    return cv.mask(blur(cv.fill(polys), sigma))


def blush_centers(face) -> tuple[np.ndarray, np.ndarray, float]:
    """Cheek centres (left, right) in frame pixels and the blush radius (pixels).

    In face-aligned coordinates: 1.2 x as far out as the eye centre, at 80% of the depth of
    the nose tip below the eye line, i.e. on the apple of the cheek.
    """
    f = as_face_shape(face, (1, 1))
    p, fr = f.points, f.frame
    nose_y = (p[R.NOSE_TIP] - fr.origin) @ fr.down
    centers = []
    for eye_idx in (R.LEFT_EYE, R.RIGHT_EYE):
        ex = (p[list(eye_idx)].mean(axis=0) - fr.origin) @ fr.right
        centers.append(fr.origin + 1.2 * ex * fr.right + 0.8 * nose_y * fr.down)
    return centers[0], centers[1], 0.19 * f.iod


def blush_mask(face, frame_shape=None, size: float = 1.0) -> Mask:
    """Blush: a soft oval on each cheek, tilted up toward the temple, fading smoothly
    from its centre, kept inside the face and off the eyes, brows and mouth.

    size : scale of the oval (1.0: half-axes 0.24 x 0.15 iod plus the fade).
    """
    f = as_face_shape(face, frame_shape)
    fr = f.frame
    left, right, radius = blush_centers(f)
    radius *= size
    ends = np.array([left, right])
    # On the face's skin grid (`_skin_parts`), so the skin terms are shared with foundation.
    grid = _skin_grid(f)
    x0, y0, x1, y1 = _bbox(np.concatenate([ends - 2.2 * radius, ends + 2.2 * radius]), 2.0, f.roi)
    d = grid.down
    x0 -= (x0 - grid.x0) % d  # whole working pixels of the skin grid
    y0 -= (y0 - grid.y0) % d
    cv = Canvas((x0, y0, x1, y1), d)
    if 0 in cv.shape:
        return cv.mask(np.zeros(cv.work_shape, np.float32))
    gx, gy = cv.grid()
    ovals = []
    for c, tilt in ((left, 0.35), (right, -0.35)):
        # Ellipse axes: the face's right axis turned by `tilt` (long axis toward the temple).
        ca, sa = np.cos(tilt), np.sin(tilt)
        u = (ca * fr.right[0] - sa * fr.right[1], sa * fr.right[0] + ca * fr.right[1])
        ovals.append((c[0], c[1], u[0], u[1], 1.25 * radius, 0.8 * radius))
    ovals = np.array(ovals, np.float32)
    if HAVE_NUMBA:
        m = _blush_ovals_nb(np.ascontiguousarray(gx[0]), np.ascontiguousarray(gy[:, 0]), ovals)
    else:
        m = blush_ovals_reference(gx[0], gy[:, 0], ovals)
    i0, j0 = (y0 - grid.y0) // d, (x0 - grid.x0) // d
    h, w = cv.work_shape
    keep = _skin_core(f, feather=0.06 * f.iod)[i0:i0 + h, j0:j0 + w]
    return cv.mask(m * keep)


def blush_ovals_reference(gx: np.ndarray, gy: np.ndarray, ovals: np.ndarray) -> np.ndarray:
    """NumPy reference of `_blush_ovals_nb`: the blush's falloff, float32 (h, w), on the grid of
    pixel centres gx float32 (w,), gy float32 (h,) (frame pixels): the largest over the ovals
    (float32 rows cx, cy, ux, uy, ra, rb: centre, long-axis direction, half-axes) of
    1 - smoothstep((r - 0.3) / 1.2), r the oval's normalised radius."""
    m = np.zeros((len(gy), len(gx)), np.float32)
    for cx, cy, ux, uy, ra, rb in ovals:
        dx, dy = gx[None, :] - cx, gy[:, None] - cy
        a = (dx * ux + dy * uy) / ra
        b = (dy * ux - dx * uy) / rb
        m = np.maximum(m, 1.0 - smoothstep((np.sqrt(a * a + b * b) - 0.3) / 1.2))
    return m


# No fastmath: float32 operations in the reference's order give its values exactly.
@njit(cache=True, error_model="numpy")
def _blush_ovals_nb(gx, gy, ovals):
    h, w = gy.shape[0], gx.shape[0]
    m = np.zeros((h, w), np.float32)
    one, lo, width = np.float32(1.0), np.float32(0.3), np.float32(1.2)
    for k in range(ovals.shape[0]):
        cx, cy, ux, uy, ra, rb = ovals[k]
        for i in range(h):
            dy = gy[i] - cy
            row = m[i]
            for j in range(w):
                dx = gx[j] - cx
                a = (dx * ux + dy * uy) / ra
                b = (dy * ux - dx * uy) / rb
                x = min(max((np.sqrt(a * a + b * b) - lo) / width, np.float32(0.0)), one)
                row[j] = max(row[j], one - x * x * (np.float32(3.0) - np.float32(2.0) * x))
    return m


def brows_mask(face, frame_shape=None, thickness: float = 1.0) -> Mask:
    """Brows: a plausible brow shape under the annotated upper brow line (the markup has
    only that line), thick at the head, tapering to the tail; scaled with iod."""
    f = as_face_shape(face, frame_shape)
    sigma = FEATHER["brows"] * f.iod
    polys = f.brow_polygons(thickness)
    cv = _canvas(np.concatenate(polys), 3 * sigma + 2, f)
    return cv.mask(blur(cv.fill(polys), sigma))


def _grow(poly: np.ndarray, amount: float) -> np.ndarray:
    """Push a closed contour outward from its centroid by `amount` pixels."""
    v = poly - poly.mean(axis=0)
    return poly + v / np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)[:, None] * amount


def _skin_grid(f: FaceShape) -> Canvas:
    """The face region's canvas for the skin terms (foundation, blush)."""
    return f.memo("skin_grid", lambda: Canvas(
        f.roi, _down_for(min(0.06 * f.iod / 2.5, 0.04 * f.iod))))


def _skin_parts(f: FaceShape) -> tuple[np.ndarray, np.ndarray]:
    """The face fill and the keep-out term (1 off eyes, brows and mouth) on `_skin_grid`."""
    def make():
        cv = _skin_grid(f)
        face = cv.to_work(_face_fill(f), 1.0 / 255.0)
        polys = ([_grow(e, 0.07 * f.iod) for e in f.eyes] + [_grow(f.lips_outer, 0.04 * f.iod)]
                 + f.brow_polygons(1.5, above=0.35))
        sigma = 0.04 * f.iod
        # The holes fill half the face region: filled and blurred over their own part of the
        # grid, with the blur's reach (OpenCV's float kernel: 4 sigma) and a pixel of
        # anti-aliasing to spare. The whole grid's blur is exactly 0 beyond, so the keep-out
        # term is 1 there: the same values.
        sub, rows, cols = cv.sub(np.concatenate(polys), int(np.ceil(4.0 * cv.work_sigma(sigma))) + 3)
        keep = np.ones(cv.work_shape, np.float32)
        if sub.work_shape[0] and sub.work_shape[1]:
            holes = sub.blur(sub.fill(polys), sigma)
            keep[rows, cols] = 1.0 - np.minimum(holes * np.float32(1.5), np.float32(1.0))
        return face, keep
    return f.memo("skin_parts", make)


def _skin_core(f: FaceShape, feather: float) -> np.ndarray:
    """Face region minus eyes, brows and mouth, fading in from the face edge, on
    `_skin_grid` (working resolution)."""
    def make():
        face, keep = _skin_parts(f)
        if face.size == 0:
            return face
        # Fade in from the edge: a blurred edge is 0.5 on the contour (for a smooth contour)
        # and rises to 1 about `feather` inside; keep only the inner half. Sub-pixel exact,
        # so the fade does not step by whole pixels as the landmarks move.
        m = smoothstep(2.0 * (_skin_grid(f).blur(face, feather / 2.5) - 0.5))
        return (m * keep).astype(np.float32, copy=False)
    return f.memo(("skin_core", float(feather)), make)


def skin_mask(face, frame_shape=None) -> Mask:
    """Foundation: the face region minus eyes, brows and mouth, fading in from the face
    edge (inward only, so it never bleeds past the jaw line)."""
    f = as_face_shape(face, frame_shape)
    return _skin_grid(f).mask(_skin_core(f, feather=FEATHER["skin"] * f.iod))


MASKS = {
    "foundation": skin_mask,
    "blush": blush_mask,
    "eyeshadow": eyeshadow_mask,
    "eyeliner": eyeliner_mask,
    "brows": brows_mask,
    "lips": lips_mask,
}


def face_coverage(face, frame_shape=None) -> Mask:
    """The face region itself (`face_polygon`: jaw line closed over the forehead), anti-aliased
    coverage in [0, 1] at full resolution. Every product's mask is clipped to it, so makeup
    never changes a pixel where it is 0."""
    f = as_face_shape(face, frame_shape)
    def make():
        h, w = Canvas(f.roi).shape
        data = to_float(_face_fill(f)[:h, :w], 1.0 / 255.0)
        return Mask(data, f.roi[0], f.roi[1])
    return f.memo("face_coverage", make)


def _face_fill(f: FaceShape) -> np.ndarray:
    """The face polygon filled (anti-aliased uint8) at full resolution on `_skin_grid`'s
    extent: rasterised once, for both the skin terms (averaged onto their grid) and
    `face_coverage` (as it is)."""
    return f.memo("face_fill", lambda: _skin_grid(f).fill_u8([f.polygon]))


def clip_to_face(mask: Mask, face) -> Mask:
    """`mask` times `face_coverage` (a new Mask): nothing outside the face region is made up.

    face : the FaceShape the mask was built for (every mask lies inside its `roi`).
    """
    if mask.data.size == 0:
        return mask
    cov = face_coverage(face)
    h, w = mask.data.shape
    part = cov.data[mask.y0 - cov.y0:mask.y0 - cov.y0 + h, mask.x0 - cov.x0:mask.x0 - cov.x0 + w]
    if cv2.minMaxLoc(part)[0] >= 1.0:  # part.min(), in one SIMD pass
        return mask  # wholly inside the face (most features): times 1, the same mask
    return Mask(floor_mask(cv2.multiply(mask.data, part)), mask.x0, mask.y0)
