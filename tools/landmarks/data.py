"""300-W style landmark data: discovery, .pts I/O, split, decode cache, augmentation.

Any folder holding NAME.jpg/.png + NAME.pts pairs (searched recursively) is
training data. Points are returned 0-based (300-W files are 1-based).
Crops are made exactly as the tracker makes them at run time
(tracker.geometry.box_to_crop on the landmark box, then warp_crop), with the
augmentation perturbing that crop's centre, size and roll.
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tools.common import inter_ocular
from tracker.geometry import (CropBox, apply_affine, box_to_crop, crop_matrix,
                              landmark_box, warp_crop)

IMAGE_EXTS = (".jpg", ".jpeg", ".png")

# Horizontal-flip permutation of the 68-point markup (0-based).
FLIP_68 = np.array(
    list(range(16, -1, -1))                      # jaw
    + list(range(26, 21, -1)) + list(range(21, 16, -1))  # brows
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]    # nose
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]      # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65])          # inner lips


def read_pts(path) -> np.ndarray:
    """Read a 300-W .pts file -> float32 (n, 2), 0-based pixel centres."""
    lines = Path(path).read_text().split("\n")
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == "{") + 1
        end = next(i for i, ln in enumerate(lines) if ln.strip() == "}")
    except StopIteration:
        raise ValueError(f"{path}: not a 300-W .pts file (no '{{' ... '}}' block)") from None
    pts = np.array([[float(v) for v in ln.split()] for ln in lines[start:end] if ln.strip()],
                   dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{path}: malformed point lines")
    return pts - 1.0


def find_pairs(root) -> list[tuple[Path, Path]]:
    """All (image, pts) pairs under root, sorted by path."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    pairs = []
    for pts in sorted(root.rglob("*.pts")):
        for ext in IMAGE_EXTS:
            img = pts.with_suffix(ext)
            if img.exists():
                pairs.append((img, pts))
                break
    return pairs


def photo_id(img_path: Path) -> str:
    """Faces of one photo (PHOTOID_K) share an id, so a split never divides a photo."""
    stem = img_path.stem
    base = stem.rsplit("_", 1)[0] if "_" in stem else stem
    return f"{img_path.parent.name}/{base}"


def split_pairs(pairs, val_fraction=0.1, seed=0):
    """Fixed-seed split by photo id -> (train_pairs, val_pairs)."""
    ids = sorted({photo_id(p[0]) for p in pairs})
    rng = np.random.default_rng(seed)
    rng.shuffle(ids)
    n_val = max(1, int(round(len(ids) * val_fraction)))
    val_ids = set(ids[:n_val])
    train = [p for p in pairs if photo_id(p[0]) not in val_ids]
    val = [p for p in pairs if photo_id(p[0]) in val_ids]
    return train, val


def training_order(n: int) -> np.ndarray:
    """The fixed shuffle of n training faces: `train --subset K` trains on its first K and
    the fit report scores its first faces, the same in every run (and for every tool)."""
    return np.random.default_rng(1).permutation(n)


@dataclass
class Sample:
    name: str
    image: np.ndarray   # uint8 (H, W, 3) BGR
    points: np.ndarray  # float32 (68, 2), 0-based


def load_samples(pairs, cache_dir=".cache") -> list[Sample]:
    """Decode every image once; cached as a pickle keyed by the file list.

    The cache holds plain (name, image, points) tuples, not Sample objects, so it
    stays readable when this module moves or Sample changes.
    """
    key = hashlib.sha1("\n".join(f"{a}:{a.stat().st_mtime_ns}" for a, _ in pairs)
                       .encode()).hexdigest()[:16]
    cache = Path(cache_dir) / f"faces_{key}.pkl"
    if cache.exists():
        with open(cache, "rb") as f:
            return [Sample(*row) for row in pickle.load(f)]
    out = []
    for img_path, pts_path in pairs:
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{img_path}: unreadable image")
        out.append(Sample(img_path.stem, img, read_pts(pts_path)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    # One temporary file per process: two runs started together both decode and must not
    # write into the same file.
    tmp = cache.with_suffix(f".{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump([(s.name, s.image, s.points) for s in out], f,
                    protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cache)  # a run stopped mid-write leaves no truncated cache behind
    return out


def eval_crop(sample: Sample, size: int, box_scale: float):
    """Deterministic crop from the ground-truth landmark box -> (uint8 crop, points, M)."""
    box = box_to_crop(landmark_box(sample.points), box_scale)
    m = crop_matrix(box, size)
    return warp_crop(sample.image, m, size), apply_affine(sample.points, m), m


@dataclass
class AugmentParams:
    max_rotation_deg: float = 30.0
    scale_range: float = 0.15      # log-uniform +/- around the box scale
    shift: float = 0.08            # fraction of the crop side
    flip: float = 0.5
    # 300-W's x is not mirror-symmetric: points sit ~0.3-1.5% of the inter-ocular distance
    # to the right of the mirror image of their partners (tools.landmarks.asymmetry). A
    # mirrored crop's point l gets its own offset and its partner's added, so mirrored and
    # plain crops teach the same convention. A float (the same for every point) or one
    # value per landmark, fractions of the inter-ocular distance (0: plain mirroring).
    flip_shift: float | tuple = 0.0
    blur: float = 0.2
    noise: float = 0.2
    occlude: float = 0.25
    gray: float = 0.05


def mirrored_shift(flip_shift) -> np.ndarray | float:
    """x to add to a mirrored crop's points, in inter-ocular distances: point l of the mirror
    image is the mirror of its partner FLIP_68[l], which sits flip_shift[partner] right of the
    symmetric position; the convention wants it flip_shift[l] right, so it moves by both."""
    shift = np.asarray(flip_shift, np.float32)
    return shift + shift[FLIP_68] if shift.ndim else 2 * float(shift)


def augment_crop(sample: Sample, size: int, box_scale: float, rng: np.random.Generator,
                 p: AugmentParams = AugmentParams()):
    """Random training crop -> (uint8 (size, size, 3) BGR, float32 (68, 2) crop points)."""
    x0, y0, x1, y1 = landmark_box(sample.points)
    base = box_to_crop((x0, y0, x1, y1), box_scale)
    # Most tracked faces arrive de-rolled; detector crops can be rolled up to ~30 deg.
    max_rot = p.max_rotation_deg if rng.random() < 0.5 else p.max_rotation_deg / 4
    angle = math.radians(rng.uniform(-max_rot, max_rot))
    side = base.side * math.exp(rng.uniform(-p.scale_range, p.scale_range))
    cx = base.cx + rng.uniform(-p.shift, p.shift) * base.side
    cy = base.cy + rng.uniform(-p.shift, p.shift) * base.side
    m = crop_matrix(CropBox(cx, cy, side, angle), size)
    img = warp_crop(sample.image, m, size)
    pts = apply_affine(sample.points, m)
    if rng.random() < p.flip:
        img = img[:, ::-1].copy()
        pts = pts[FLIP_68].copy()
        pts[:, 0] = size - 1 - pts[:, 0]
        pts[:, 0] += mirrored_shift(p.flip_shift) * inter_ocular(pts)
    img = _photometric(img, rng, p)
    return img, pts


def _photometric(img, rng, p: AugmentParams):
    f = img.astype(np.float32)
    contrast = math.exp(rng.uniform(-0.4, 0.4))
    brightness = rng.uniform(-40, 40)
    gains = np.exp(rng.uniform(-0.12, 0.12, 3)).astype(np.float32)
    mean = f.mean()
    f = (f - mean) * contrast + mean + brightness
    f *= gains
    if rng.random() < p.gray:
        f[:] = f.mean(axis=2, keepdims=True)
    if rng.random() < p.blur:
        k = int(rng.choice([3, 5]))
        f = cv2.GaussianBlur(f, (k, k), 0)
    if rng.random() < p.noise:
        f += rng.normal(0, rng.uniform(2, 10), f.shape).astype(np.float32)
    if rng.random() < p.occlude:
        h, w = f.shape[:2]
        ow, oh = int(rng.uniform(0.1, 0.4) * w), int(rng.uniform(0.1, 0.4) * h)
        ox, oy = int(rng.integers(0, w - ow)), int(rng.integers(0, h - oh))
        f[oy:oy + oh, ox:ox + ow] = rng.uniform(0, 255, 3)
    return np.clip(f, 0, 255).astype(np.uint8)
