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
`MASK_FLOOR` are set to exactly 0, so "outside the mask" is a crisp set.

Speed: the large soft masks (foundation, blush, eyeshadow) are feathered on a grid of
half the resolution (when their feathering is at least `HALF_RES_SIGMA` pixels wide) and
upsampled bilinearly; the polygons are still filled at full resolution. The grid is
anchored to the mask's rectangle, so a face moved by whole pixels gets the same mask,
moved. Parts several masks share (the skin terms of foundation and blush, the brow
shapes) are computed once per FaceShape. The curves come from `tracker.curves`.

    face = FaceShape(landmarks, frame.shape)      # the curves, once per face and frame
    m = lips_mask(face)                           # Mask(data, x0, y0)
    frame[m.slices]                               # the pixels it covers

Masks: `lips_mask`, `eyeshadow_mask`, `eyeliner_mask`, `blush_mask`, `brows_mask`,
`skin_mask` (foundation); each also accepts raw landmarks plus the frame shape.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from tracker import regions as R
from tracker.curves import catmull_rom, normals, resample

MASK_FLOOR = 1.0 / 512.0
_SHIFT = 4  # fillPoly fractional bits: 1/16 pixel
_SCALE = float(1 << _SHIFT)

# Feathering (Gaussian sigma or fade width), as fractions of the inter-ocular distance.
FEATHER = {
    "lips": 0.012,
    "eyeshadow": 0.05,
    "eyeliner": 0.007,
    "brows": 0.014,
    "skin": 0.07,
}
FOREHEAD_RAISE = 0.32  # the face region extends this far (x iod) above the brow line


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
        return self.data.size == 0 or not bool(self.data.any())

    def to_frame(self, shape) -> np.ndarray:
        """The mask pasted into a zero float32 (H, W) frame of the given shape."""
        full = np.zeros(tuple(shape[:2]), dtype=np.float32)
        full[self.slices] = self.data
        return full


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
    x0 = int(np.floor(pts[:, 0].min() - pad))
    y0 = int(np.floor(pts[:, 1].min() - pad))
    x1 = int(np.ceil(pts[:, 0].max() + pad)) + 1
    y1 = int(np.ceil(pts[:, 1].max() + pad)) + 1
    return max(x0, clip[0]), max(y0, clip[1]), min(x1, clip[2]), min(y1, clip[3])


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
        self.lips_outer = np.vstack([upper[:-1], lower[:-1]])
        upper_in = catmull_rom(p[list(R.UPPER_LIP_INNER)], 6)
        lower_in = catmull_rom(p[list(R.LOWER_LIP_INNER)], 6)
        self.lips_inner = np.vstack([upper_in[:-1], lower_in[:-1]])
        self.eyes = [catmull_rom(p[list(idx)], 6, closed=True) for idx in (R.LEFT_EYE, R.RIGHT_EYE)]
        # Upper lids and brow lines, image left to right, evenly resampled.
        self.lids = [resample(catmull_rom(p[list(idx)], 8), 24)
                     for idx in (R.LEFT_UPPER_LID, R.RIGHT_UPPER_LID)]
        self.brows = [resample(catmull_rom(p[list(idx)], 8), 28)
                      for idx in (R.LEFT_BROW, R.RIGHT_BROW)]
        self.brows_at_lids = [resample(b, len(lid)) for b, lid in zip(self.brows, self.lids)]
        jaw = catmull_rom(p[list(R.JAW)], 6)
        brow_line = catmull_rom(p[list(R.LEFT_BROW + R.RIGHT_BROW)][::-1], 6)
        self.polygon = np.vstack([jaw, brow_line - down * (FOREHEAD_RAISE * self.iod)])
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
                polys.append(np.vstack([line - down * (above * w),
                                        (line + down * ((1.0 - above) * w))[::-1]]))
            return polys
        return self.memo(("brow_polygons", float(thickness), float(above)), make)

    def _brow_frames(self):
        """Per brow, tail to head: the line, its downward normals, the width profile."""
        frames = []
        for line, head_last in ((self.brows[0], True), (self.brows[1], False)):
            if not head_last:
                line = line[::-1]
            s = np.linspace(0.0, 1.0, len(line))[:, None]
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


# -------------------------------------------------------------------- rasterising

# Large, soft masks (foundation, blush, eyeshadow) are rasterised and feathered on a grid
# with half the resolution when their feathering is at least this wide (pixels), then
# upsampled bilinearly: 8x less blurring work, the same look (the blur widths are reduced
# to make up for the coverage box and the bilinear kernel, see `_Canvas.blur`).
HALF_RES_SIGMA = 2.0


class _Canvas:
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

    def to_work(self, img: np.ndarray, scale: float) -> np.ndarray:
        """A full-resolution `fill_u8` image (or a sum of them) -> float32 working grid,
        times `scale`: averaged over down x down blocks (as rasterising at the coarse
        resolution would, but with OpenCV's full-resolution edges)."""
        if self.down > 1 and img.size:
            h, w = self.work_shape
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return img.astype(np.float32) * np.float32(scale)

    def fill(self, polygons, value: float = 1.0) -> np.ndarray:
        """Anti-aliased filled polygons (frame coords) -> float32 working grid in [0, value]."""
        return self.to_work(self.fill_u8(polygons), value / 255.0)

    def blur(self, m: np.ndarray, sigma: float) -> np.ndarray:
        """Gaussian blur of a working-grid image by `sigma` frame pixels.

        On the half-resolution grid the coverage box (variance d^2 / 12) and the bilinear
        upsampling (d^2 / 6) already spread by d^2 / 4: the Gaussian supplies the rest.
        """
        d = self.down
        if d > 1:
            sigma = np.sqrt(max(sigma * sigma - 0.25 * d * d, 0.0)) / d
        return _blur(m, sigma)

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


def _blur(m: np.ndarray, sigma: float) -> np.ndarray:
    if m.size == 0 or sigma < 0.3:
        return m
    return cv2.GaussianBlur(m, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def _canvas(points_used, pad: float, face: FaceShape, down: int = 1) -> _Canvas:
    return _Canvas(_bbox(np.asarray(points_used, dtype=np.float64), pad, face.roi), down)


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
    return cv.mask(_blur(m, sigma))


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
    rect = _bbox(np.vstack([polys[-1].reshape(-1, 2)] + f.eyes), 3 * sigma + 2, f.roi)
    cvh = _Canvas(rect, _down_for(sigma))
    layer = cvh.fill_u8([])
    total = np.zeros(layer.shape, np.uint16)  # sum of the layers' coverages, x 255
    for q in polys:
        layer[...] = 0
        total += cvh.fill_u8(q, 255, layer)
    m = cvh.upsample(cvh.blur(cvh.to_work(total, 1.0 / (255 * layers)), sigma))
    # The lid band is narrow for its feathering, so the blur leaves a peak well below 1:
    # scale it back to 1 on the lid, so that full intensity is full opacity there.
    peak = float(m.max()) if m.size else 0.0
    if peak > 0.0:
        m = m * np.float32(1.0 / peak)
    cv = _Canvas(rect)  # the eye cut-out stays sharp: full resolution
    eye = _blur(cv.fill(f.eyes), FEATHER["eyeliner"] * f.iod)
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
        s = np.linspace(0.0, 1.0, len(lid))[:, None]
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
            top = np.vstack([top, tip[None]])
        polys.append(np.vstack([top, bottom[::-1]]))
    sigma = FEATHER["eyeliner"] * f.iod
    cv = _canvas(np.vstack(polys), 3 * sigma + 2, f)
    return cv.mask(_blur(cv.fill(polys), sigma))


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
    ends = np.vstack([left, right])
    # On the face's skin grid (`_skin_parts`), so the skin terms are shared with foundation.
    grid = _skin_grid(f)
    x0, y0, x1, y1 = _bbox(np.vstack([ends - 2.2 * radius, ends + 2.2 * radius]), 2.0, f.roi)
    d = grid.down
    x0 -= (x0 - grid.x0) % d  # whole working pixels of the skin grid
    y0 -= (y0 - grid.y0) % d
    cv = _Canvas((x0, y0, x1, y1), d)
    if 0 in cv.shape:
        return cv.mask(np.zeros(cv.work_shape, np.float32))
    gx, gy = cv.grid()
    m = np.zeros(cv.work_shape, np.float32)
    for c, tilt in ((left, 0.35), (right, -0.35)):
        # Ellipse axes: the face's right axis turned by `tilt` (long axis toward the temple).
        ca, sa = np.cos(tilt), np.sin(tilt)
        u = np.array([ca * fr.right[0] - sa * fr.right[1], sa * fr.right[0] + ca * fr.right[1]])
        dx, dy = gx - np.float32(c[0]), gy - np.float32(c[1])
        a = (dx * np.float32(u[0]) + dy * np.float32(u[1])) / np.float32(1.25 * radius)
        b = (dy * np.float32(u[0]) - dx * np.float32(u[1])) / np.float32(0.8 * radius)
        r = np.sqrt(a * a + b * b)
        m = np.maximum(m, 1.0 - smoothstep((r - 0.3) / 1.2))
    i0, j0 = (y0 - grid.y0) // d, (x0 - grid.x0) // d
    h, w = cv.work_shape
    keep = _skin_core(f, feather=0.06 * f.iod)[i0:i0 + h, j0:j0 + w]
    return cv.mask(m * keep)


def brows_mask(face, frame_shape=None, thickness: float = 1.0) -> Mask:
    """Brows: a plausible brow shape under the annotated upper brow line (the markup has
    only that line), thick at the head, tapering to the tail; scaled with iod."""
    f = as_face_shape(face, frame_shape)
    sigma = FEATHER["brows"] * f.iod
    polys = f.brow_polygons(thickness)
    cv = _canvas(np.vstack(polys), 3 * sigma + 2, f)
    return cv.mask(_blur(cv.fill(polys), sigma))


def _grow(poly: np.ndarray, amount: float) -> np.ndarray:
    """Push a closed contour outward from its centroid by `amount` pixels."""
    v = poly - poly.mean(axis=0)
    return poly + v / np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)[:, None] * amount


def _skin_grid(f: FaceShape) -> _Canvas:
    """The face region's canvas for the skin terms (foundation, blush)."""
    return f.memo("skin_grid", lambda: _Canvas(
        f.roi, _down_for(min(0.06 * f.iod / 2.5, 0.04 * f.iod))))


def _skin_parts(f: FaceShape) -> tuple[np.ndarray, np.ndarray]:
    """The face fill and the keep-out term (1 off eyes, brows and mouth) on `_skin_grid`."""
    def make():
        cv = _skin_grid(f)
        face = cv.to_work(_face_fill(f), 1.0 / 255.0)
        holes = cv.fill([_grow(e, 0.07 * f.iod) for e in f.eyes]
                        + [_grow(f.lips_outer, 0.04 * f.iod)]
                        + f.brow_polygons(1.5, above=0.35))
        holes = cv.blur(holes, 0.04 * f.iod)
        return face, 1.0 - np.minimum(holes * np.float32(1.5), np.float32(1.0))
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
        h, w = _Canvas(f.roi).shape
        data = _face_fill(f)[:h, :w].astype(np.float32) * np.float32(1.0 / 255.0)
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
    if part.min() >= 1.0:
        return mask  # wholly inside the face (most features): times 1, the same mask
    return Mask(floor_mask(cv2.multiply(mask.data, part)), mask.x0, mask.y0)


_FLOOR_BELOW = float(np.nextafter(np.float32(MASK_FLOOR), np.float32(0.0)))  # > this: kept


def floor_mask(data: np.ndarray) -> np.ndarray:
    """Set every value of a float32 (h, w) array below `MASK_FLOOR` (negatives too) to 0, in
    place; returns it. Same as `data[data < MASK_FLOOR] = 0` in one SIMD pass (OpenCV's
    threshold to zero) instead of a boolean mask and a masked store."""
    if data.size:
        cv2.threshold(data, _FLOOR_BELOW, 0.0, cv2.THRESH_TOZERO, dst=data)
    return data
