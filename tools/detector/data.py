"""Face-detector training data: detect/ photos and 300-W face crops composited on backgrounds.

Split: the held-out photos are exactly tools/detector/calibrate_cascade.py's (fixed-seed 10%
of the sorted detect/ photos), so this detector's numbers compare with the
cascade's. Every other file of a held-out photo id (HELEN photos come as several
crops, ID.jpg / ID_2.jpg; 300-W faces are ID_K.jpg) is left out of training.

Training samples are made the way the detector sees frames at run time: a window
of a photo (any aspect, may reach past its edges) is letterboxed into the model
input with tracker.detection.blaze.letterbox. Two kinds:

- photo: the window is chosen around a random labelled face so that the face
  gets a log-uniform size in the input (or, sometimes, the whole photo);
- composite: a window of a photo plus 1-3 300-W face crops pasted at random
  sizes, positions and rolls with a feathered mask, their boxes the landmark
  boxes of the warped points.

Labelled faces cut by the window edge (< 70% visible) and tiny ones are "ignore"
boxes: anchors overlapping them are neither positives nor negatives. Unlabelled
faces in the photos remain label noise (300-W labels only some faces).

Decoded images are cached once in .cache/ (one flat uint8 file per image list,
memory-mapped, with a JSON index of shapes).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nnlite.detector import box_iou, make_anchors
from tools.common import SHARED_DATA
from tools.detector.calibrate_cascade import find_photos, greedy_match, heldout_indices
from tools.landmarks.data import find_pairs, read_pts

DATA = SHARED_DATA
DEFAULT_DETECT = DATA / "detect"
DEFAULT_FACES = DATA / "300w"
VISIBLE_MIN = 0.7     # a labelled face less visible than this in a window is ignored
MIN_FACE_PX = 4.0     # faces smaller than this (input pixels) are ignored


def photo_id(path: Path) -> str:
    """The photo a file comes from: detect/ ID.jpg, ID_K.jpg and 300w/ ID_K.jpg share ID."""
    return Path(path).stem.split("_")[0]


# ---------------------------------------------------------------------------
# Decode cache: every image once, in one flat uint8 file that np.memmap maps.
# ---------------------------------------------------------------------------

class ImageCache:
    """Decoded BGR images of a list of files, cached under cache_dir keyed by the file list."""

    def __init__(self, paths: list[Path], cache_dir=".cache", tag="images"):
        key = hashlib.sha1("\n".join(f"{p}:{p.stat().st_mtime_ns}" for p in paths)
                           .encode()).hexdigest()[:16]
        blob = Path(cache_dir) / f"{tag}_{key}.bin"
        index = blob.with_suffix(".json")
        if not (blob.exists() and index.exists()):
            self._build(paths, blob, index)
        self.shapes = [tuple(s) for s in json.loads(index.read_text())["shapes"]]
        self.offsets = np.concatenate([[0], np.cumsum([int(np.prod(s)) for s in self.shapes])])
        self.data = (np.memmap(blob, dtype=np.uint8, mode="r") if self.offsets[-1]
                     else np.zeros(0, np.uint8))

    @staticmethod
    def _build(paths, blob, index):
        """Decode each image once, appending its bytes to the blob; shapes go to the index."""
        blob.parent.mkdir(parents=True, exist_ok=True)
        tmp = blob.with_name(blob.name + ".tmp")
        shapes = []
        with open(tmp, "wb") as f:
            for p in paths:
                img = cv2.imread(str(p), cv2.IMREAD_COLOR)
                if img is None:
                    raise ValueError(f"{p}: unreadable image")
                shapes.append(img.shape)
                f.write(np.ascontiguousarray(img).tobytes())
        index.write_text(json.dumps({"files": [str(p) for p in paths], "shapes": shapes}))
        tmp.replace(blob)

    def __len__(self):
        return len(self.shapes)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.data[self.offsets[i]:self.offsets[i + 1]]).reshape(self.shapes[i])


@dataclass
class DetectorData:
    """Training photos (+ boxes), 300-W training faces (+ 68 points), held-out photos."""
    train_images: ImageCache
    train_boxes: list[np.ndarray]   # float (K, 4) landmark boxes per training photo
    face_images: ImageCache
    face_points: list[np.ndarray]   # float32 (68, 2), 0-based, per face crop
    val_paths: list[Path]
    val_boxes: list[np.ndarray]


def split_files(detect_root=DEFAULT_DETECT, faces_root=DEFAULT_FACES):
    """-> (train photos, train faces, held-out photos): [(image path, boxes (K, 4))],
    [(image path, .pts path)], [(image path, boxes)]. Nothing is decoded."""
    photos = find_photos(Path(detect_root))
    if not photos:
        raise FileNotFoundError(f"no NAME.jpg + NAME.txt pairs under {detect_root}")
    held = heldout_indices(len(photos))
    val_ids = {photo_id(photos[i][0]) for i in held}
    train = [p for k, p in enumerate(photos) if k not in held and photo_id(p[0]) not in val_ids]
    faces = [p for p in find_pairs(faces_root) if photo_id(p[0]) not in val_ids]
    return train, faces, [photos[k] for k in sorted(held)]


def load_data(detect_root=DEFAULT_DETECT, faces_root=DEFAULT_FACES, limit: int | None = None,
              cache_dir=".cache") -> DetectorData:
    """Split and decode (cached). limit: use only the first N training photos and faces."""
    train, faces, val = split_files(detect_root, faces_root)
    if limit:
        train, faces = train[:limit], faces[:limit]
    return DetectorData(
        ImageCache([p for p, _ in train], cache_dir, "detect"), [b for _, b in train],
        ImageCache([p for p, _ in faces], cache_dir, "faces"), [read_pts(t) for _, t in faces],
        [p for p, _ in val], [b for _, b in val])


# ---------------------------------------------------------------------------
# Samples: uint8 (S, S, 3) input, positive boxes (K, 4), ignore boxes (J, 4), input pixels.
# ---------------------------------------------------------------------------

@dataclass
class AugmentParams:
    photo: float = 0.6             # probability of a photo sample (else composite)
    whole_photo: float = 0.2       # photo samples showing the whole photo (run-time view)
    face_px: tuple = (8.0, 150.0)  # log-uniform face size in the input (160 px input; scaled)
    aspect: float = 0.35           # window aspect log-uniform within +-this
    max_zoom_out: float = 1.5      # window side at most this x the photo's longer side
    max_faces: int = 3             # pasted per composite
    max_roll_deg: float = 30.0
    flip: float = 0.5
    gray: float = 0.1
    blur: float = 0.15
    noise: float = 0.2


def crop_window(image, boxes, window, size: int, pad_value: int):
    """Letterbox the window (x0, y0, w, h) of image (integers; may reach outside it).

    The same as tracker.detection.blaze.letterbox on that window (its size rounding,
    area averaging when it shrinks, padding right and below; pad_value also where
    the window leaves the photo), but only the part inside the photo is resampled.
    A point maps as u = (x - x0 + 0.5) * sx - 0.5 (v likewise with sy).

    Returns (uint8 (size, size, 3), boxes (K, 4) in input pixels, visible fraction (K,)).
    """
    x0, y0, ww, wh = (int(v) for v in window)
    h, w = image.shape[:2]
    s = size / max(ww, wh)
    nw, nh = max(1, min(size, round(ww * s))), max(1, min(size, round(wh * s)))
    sx, sy = nw / ww, nh / wh
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + ww, w), min(y0 + wh, h)
    if sx1 <= sx0 or sy1 <= sy0:
        canvas = np.full((size, size, 3), pad_value, np.uint8)
    else:
        src = image[sy0:sy1, sx0:sx1]
        rx = ry = 1.0
        if s < 0.75:  # shrink by area first, then a small bilinear warp
            rw, rh = max(1, round(src.shape[1] * sx)), max(1, round(src.shape[0] * sy))
            rx, ry = rw / src.shape[1], rh / src.shape[0]
            src = cv2.resize(src, (rw, rh), interpolation=cv2.INTER_AREA)
        m = np.array([[sx / rx, 0.0, (0.5 / rx + sx0 - x0) * sx - 0.5],
                      [0.0, sy / ry, (0.5 / ry + sy0 - y0) * sy - 0.5]])
        canvas = cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(pad_value,) * 3)
        canvas[nh:] = pad_value
        canvas[:, nw:] = pad_value
    b = np.asarray(boxes, np.float64).reshape(-1, 4) - [x0, y0, x0, y0]
    area = np.clip(b[:, 2] - b[:, 0], 1e-6, None) * np.clip(b[:, 3] - b[:, 1], 1e-6, None)
    cw = np.clip(np.minimum(b[:, 2], ww - 0.5) - np.maximum(b[:, 0], -0.5), 0, None)
    ch = np.clip(np.minimum(b[:, 3], wh - 0.5) - np.maximum(b[:, 1], -0.5), 0, None)
    visible = cw * ch / area
    return canvas, (b + 0.5) * [sx, sy, sx, sy] - 0.5, visible


def photo_sample(image, boxes, size, pad_value, rng, p: AugmentParams):
    """A letterboxed window of a labelled photo -> (canvas, positive boxes, ignore boxes)."""
    h, w = image.shape[:2]
    k = size / 160.0
    if len(boxes) == 0 or rng.random() < p.whole_photo:
        jitter = rng.uniform(0.9, 1.15)
        ww, wh = int(round(w * jitter)), int(round(h * jitter))
        x0 = int(rng.integers(min(0, w - ww), max(0, w - ww) + 1))
        y0 = int(rng.integers(min(0, h - wh), max(0, h - wh) + 1))
    else:
        bx = boxes[rng.integers(len(boxes))]
        side = max(bx[2] - bx[0], bx[3] - bx[1], 2.0)
        # Face size in the input, log-uniform; the window at most max_zoom_out x the photo.
        lo = max(p.face_px[0] * k, side * size / (p.max_zoom_out * max(h, w)))
        hi = max(p.face_px[1] * k, lo)
        target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        longer = side * size / target                  # window's longer side, photo pixels
        aspect = math.exp(rng.uniform(-p.aspect, p.aspect))  # w / h
        ww, wh = (longer, longer / aspect) if aspect >= 1 else (longer * aspect, longer)
        ww, wh = max(int(round(ww)), 8), max(int(round(wh)), 8)
        # Place the face anywhere inside the window (centred when it does not fit).
        cx, cy = (bx[0] + bx[2]) / 2, (bx[1] + bx[3]) / 2
        fw, fh = bx[2] - bx[0], bx[3] - bx[1]
        x0 = int(round(cx - rng.uniform(min(fw / 2, ww / 2), max(fw / 2, ww - fw / 2))))
        y0 = int(round(cy - rng.uniform(min(fh / 2, wh / 2), max(fh / 2, wh - fh / 2))))
    canvas, b, visible = crop_window(image, boxes, (x0, y0, ww, wh), size, pad_value)
    return split_boxes(canvas, b, visible, size)


def split_boxes(canvas, boxes, visible, size):
    """-> (canvas, positives, ignores): positives are visible enough and big enough."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    inside = visible > 0
    pos = inside & (visible >= VISIBLE_MIN) & (side >= MIN_FACE_PX)
    return canvas, boxes[pos].astype(np.float32), boxes[inside & ~pos].astype(np.float32)


def paste_face(canvas, face_img, pts, target_px, centre, angle_deg):
    """Warp a 300-W face crop onto canvas (in place); -> its landmark box in canvas pixels.

    The crop's landmark box gets side target_px around `centre`, rolled by angle_deg;
    a feathered ellipse (forehead included) blends it in.
    """
    x0, y0 = pts.min(0)
    x1, y1 = pts.max(0)
    side = max(x1 - x0, y1 - y0, 1.0)
    scale = target_px / side
    img, p = face_img, pts.astype(np.float64)
    if scale < 0.5:  # area-downscale first, as the run-time letterbox does
        f = scale * 1.5
        img = cv2.resize(face_img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        p = (p + 0.5) * [img.shape[1] / face_img.shape[1], img.shape[0] / face_img.shape[0]] - 0.5
        x0, y0 = p.min(0)
        x1, y1 = p.max(0)
        scale = target_px / max(x1 - x0, y1 - y0, 1.0)
    fc = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    fw, fh = x1 - x0, y1 - y0
    # Mask in crop pixels: ellipse over the landmark box, extended up for the forehead.
    mask = np.zeros(img.shape[:2], np.float32)
    cv2.ellipse(mask, (int(round(fc[0])), int(round(fc[1] - 0.12 * fh))),
                (max(1, int(0.62 * fw)), max(1, int(0.72 * fh))), 0, 0, 360, 1.0, -1)
    sigma = max(0.08 * max(fw, fh), 0.6)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    m = cv2.getRotationMatrix2D((float(fc[0]), float(fc[1])), angle_deg, scale)
    m[:, 2] += np.asarray(centre) - fc
    size = canvas.shape[1], canvas.shape[0]
    warped = cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    canvas[:] = (canvas * (1 - alpha) + warped * alpha + 0.5).astype(np.uint8)
    q = p @ m[:, :2].T + m[:, 2]
    return np.array([*q.min(0), *q.max(0)])


def composite_sample(bg_image, bg_boxes, faces: ImageCache, face_points, size, pad_value, rng,
                     p: AugmentParams):
    """A photo window with 1..max_faces 300-W faces pasted on -> (canvas, positives, ignores)."""
    h, w = bg_image.shape[:2]
    frac = rng.uniform(0.3, 1.0)
    aspect = math.exp(rng.uniform(-p.aspect, p.aspect))
    longer = frac * max(h, w)
    ww, wh = (longer, longer / aspect) if aspect >= 1 else (longer * aspect, longer)
    ww, wh = max(int(ww), 8), max(int(wh), 8)
    x0 = int(rng.integers(min(0, w - ww), max(0, w - ww) + 1))
    y0 = int(rng.integers(min(0, h - wh), max(0, h - wh) + 1))
    canvas, b, visible = crop_window(bg_image, bg_boxes, (x0, y0, ww, wh), size, pad_value)
    canvas, pos, ign = split_boxes(canvas, b, visible, size)
    pos, ign = list(pos), list(ign)
    k = size / 160.0
    for _ in range(int(rng.integers(1, p.max_faces + 1))):
        j = int(rng.integers(len(faces)))
        target = math.exp(rng.uniform(math.log(p.face_px[0] * k), math.log(p.face_px[1] * k)))
        for _try in range(10):  # a place that covers no face already there
            c = rng.uniform(-0.1 * target, size + 0.1 * target, 2)
            cand = np.array([c[0] - target, c[1] - target, c[0] + target, c[1] + target])
            if not pos and not ign or box_iou(cand[None], np.array(pos + ign)).max() == 0:
                break
        else:
            continue
        roll = float(np.clip(rng.normal(0, p.max_roll_deg / 3), -p.max_roll_deg, p.max_roll_deg))
        box = paste_face(canvas, faces[j], face_points[j], target, c, roll)
        vis_w = np.clip(min(box[2], size - 0.5) - max(box[0], -0.5), 0, None)
        vis_h = np.clip(min(box[3], size - 0.5) - max(box[1], -0.5), 0, None)
        vis = vis_w * vis_h / max((box[2] - box[0]) * (box[3] - box[1]), 1e-6)
        _, bp, bi = split_boxes(canvas, box[None], np.array([vis]), size)
        pos += list(bp)
        ign += list(bi)
    return canvas, np.array(pos, np.float32).reshape(-1, 4), np.array(ign, np.float32).reshape(-1, 4)


def photometric(img: np.ndarray, rng, p: AugmentParams) -> np.ndarray:
    """Brightness, contrast, colour gains, sometimes grey / blur / noise (uint8 in and out)."""
    f = img.astype(np.float32)
    mean = f.mean()
    f = (f - mean) * math.exp(rng.uniform(-0.4, 0.4)) + mean + rng.uniform(-35, 35)
    f *= np.exp(rng.uniform(-0.12, 0.12, 3)).astype(np.float32)
    if rng.random() < p.gray:
        f[:] = f.mean(axis=2, keepdims=True)
    if rng.random() < p.blur:
        f = cv2.GaussianBlur(f, (0, 0), rng.uniform(0.5, 1.2))
    if rng.random() < p.noise:
        f += rng.normal(0, rng.uniform(2, 8), f.shape).astype(np.float32)
    return np.clip(f, 0, 255).astype(np.uint8)


def flip_boxes(boxes: np.ndarray, size: int) -> np.ndarray:
    """Mirror boxes (K, 4) of a size-wide input (pixel centres: x -> size - 1 - x)."""
    out = boxes.copy()
    out[:, 0] = size - 1 - boxes[:, 2]
    out[:, 2] = size - 1 - boxes[:, 0]
    return out


def make_sample(data: DetectorData, cfg: dict, rng, p: AugmentParams = AugmentParams()):
    """One augmented training sample -> (uint8 (S, S, 3), positives (K, 4), ignores (J, 4))."""
    size = int(cfg["input"]["size"])
    pad = int(round(float(cfg["letterbox"]["pad_value"])))
    i = int(rng.integers(len(data.train_images)))
    if rng.random() < p.photo or len(data.face_images) == 0:
        canvas, pos, ign = photo_sample(data.train_images[i], data.train_boxes[i], size, pad, rng, p)
    else:
        canvas, pos, ign = composite_sample(data.train_images[i], data.train_boxes[i],
                                            data.face_images, data.face_points, size, pad, rng, p)
    if rng.random() < p.flip:
        canvas = canvas[:, ::-1]
        pos, ign = flip_boxes(pos, size), flip_boxes(ign, size)
    return photometric(canvas, rng, p), pos, ign


# ---------------------------------------------------------------------------
# Anchor targets.
# ---------------------------------------------------------------------------

def corner_anchors(cfg: dict) -> np.ndarray:
    """Anchors as float64 (A, 4) x0, y0, x1, y1."""
    a = make_anchors(cfg).astype(np.float64)
    return np.concatenate([a[:, :2] - a[:, 2:] / 2, a[:, :2] + a[:, 2:] / 2], axis=1)


def encode_boxes(boxes: np.ndarray, anchors_cxcywh: np.ndarray, variance) -> np.ndarray:
    """Inverse of nnlite.detector.decode_boxes: boxes (A, 4) x0,y0,x1,y1 -> deltas (A, 4)."""
    v0, v1 = variance
    a = anchors_cxcywh
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w = np.maximum(boxes[:, 2] - boxes[:, 0], 1e-3)
    h = np.maximum(boxes[:, 3] - boxes[:, 1], 1e-3)
    return np.stack([(cx - a[:, 0]) / (a[:, 2] * v0), (cy - a[:, 1]) / (a[:, 3] * v0),
                     np.log(w / a[:, 2]) / v1, np.log(h / a[:, 3]) / v1], axis=1)


class AnchorMatcher:
    """Per-anchor labels (1 face, 0 background, -1 ignored) and box targets for one sample.

    Positive: IoU >= positive_iou with a face, or the best anchor of a face (every
    face gets at least one). Background: IoU < negative_iou with every face and
    with every ignore box. Everything else is ignored by the loss.
    """

    def __init__(self, cfg: dict):
        m = cfg["matching"]
        self.pos_iou, self.neg_iou = float(m["positive_iou"]), float(m["negative_iou"])
        self.variance = cfg["box"]["variance"]
        self.cxcywh = make_anchors(cfg).astype(np.float64)
        self.corners = corner_anchors(cfg)

    def __call__(self, pos: np.ndarray, ign: np.ndarray):
        a = len(self.corners)
        labels = np.zeros(a, np.int8)
        targets = np.zeros((a, 4), np.float32)
        if len(ign):
            labels[box_iou(self.corners, ign).max(1) >= self.neg_iou] = -1
        if len(pos):
            iou = box_iou(self.corners, pos)            # (A, K)
            best = iou.argmax(1)
            best_iou = iou[np.arange(a), best]
            labels[(best_iou >= self.neg_iou) & (best_iou < self.pos_iou)] = -1
            is_pos = best_iou >= self.pos_iou
            forced = iou.argmax(0)                      # best anchor of each face
            best[forced] = np.arange(len(pos))
            is_pos[forced] = True
            labels[is_pos] = 1
            targets[is_pos] = encode_boxes(pos[best[is_pos]].astype(np.float64),
                                           self.cxcywh[is_pos], self.variance)
        return labels, targets


# ---------------------------------------------------------------------------
# Evaluation on full photos (the run-time path), shared by training and export.
# ---------------------------------------------------------------------------

def score_detections(runs, threshold: float, min_iou: float = 0.5) -> dict:
    """Recall at IoU min_iou and false positives per image, as tools/detector/calibrate_cascade.py.

    runs: [(boxes (K, 4) frame pixels, scores (K,), truth (M, 4))]. Unlabelled
    faces count as false positives, so that rate is an upper bound.
    """
    faces = found = false_pos = 0
    ious = []
    for boxes, scores, truth in runs:
        keep = np.asarray(scores) >= threshold
        dets, sc = np.asarray(boxes)[keep].reshape(-1, 4), np.asarray(scores)[keep]
        match = greedy_match(dets, sc, truth, min_iou)
        faces += len(truth)
        found += int((match >= 0).sum())
        false_pos += int((match < 0).sum())
        ious += [box_iou(dets[i:i + 1], truth[match[i]:match[i] + 1])[0, 0]
                 for i in np.flatnonzero(match >= 0)]
    return {"score_threshold": threshold, "images": len(runs), "faces": faces,
            "recall": round(found / max(faces, 1), 4),
            "false_positives_per_image": round(false_pos / max(len(runs), 1), 4),
            "mean_iou_of_matches": round(float(np.mean(ious)), 4) if ious else None}
