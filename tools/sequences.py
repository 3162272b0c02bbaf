"""Synthetic tracking sequences made from one face photo with known motion, the tracker run
over them, and the tracking metrics (jitter, lag) that `tools.bench.tracking` reports and
`tools.landmarks.tune_tracking` tunes on.

A face image is warped by a per-frame similarity (translation, zoom, roll) onto a synthetic
background with feathered edges, with per-frame sensor noise; the ground-truth points go
through the same similarity. Points are float32 (68, 2) frame pixels; errors are fractions
of the true inter-ocular distance (`tools.common`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tools.common import SHARED_DATA, inter_ocular
from tracker.geometry import apply_affine, landmark_box
from tracker.smoothing import OneEuroFilter, SmoothingParams
from tracker.types import Box

FRAME_SIZE = (640, 480)      # (width, height)
FPS = 30.0
FACE_IOD = 70.0              # inter-ocular distance of the pasted face at zoom 1, pixels
DATA_ROOT = SHARED_DATA / "300w"
STILL_WARMUP = 10            # still frames left out of the jitter (filter settling)


# -- synthetic sequences -------------------------------------------------------------------

@dataclass(frozen=True)
class Pose:
    """Where the face is in the frame: landmark-box centre (cx, cy) in frame pixels,
    inter-ocular distance in pixels, extra roll in radians (clockwise on screen)."""
    cx: float
    cy: float
    iod: float
    roll: float = 0.0


@dataclass
class Sequence:
    """A face image moved through the frame by one pose per frame.

    image : uint8 (h, w, 3) BGR face image; points : float32 (68, 2) its landmarks;
    poses : one Pose per frame; background : uint8 (H, W, 3); noise : sensor
    noise sigma in grey levels; seed : noise seed.
    """
    name: str
    image: np.ndarray
    points: np.ndarray
    poses: list[Pose]
    background: np.ndarray
    noise: float = 2.0
    seed: int = 0
    _mask: np.ndarray | None = field(default=None, repr=False)
    _noise_bank: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.poses)

    def matrix(self, i: int) -> np.ndarray:
        """float64 (2, 3) similarity, face image -> frame, of frame i."""
        return pose_matrix(self.points, self.poses[i])

    def truth(self, i: int) -> np.ndarray:
        """float32 (68, 2) ground-truth landmarks of frame i in frame pixels."""
        return apply_affine(self.points, self.matrix(i))

    def visibility(self, i: int) -> str:
        """'full' (every landmark inside the frame), 'none' (landmark box outside) or 'partial'."""
        return visibility(self.truth(i), self.background.shape[1], self.background.shape[0])

    def frame(self, i: int) -> np.ndarray:
        """uint8 (H, W, 3) BGR frame i: background, the warped face (feathered), sensor noise."""
        h, w = self.background.shape[:2]
        m = self.matrix(i)
        if self._mask is None:
            self._mask = feather_mask(self.image.shape[:2])
        face = cv2.warpAffine(self.image, m, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT).astype(np.float32)
        alpha = cv2.warpAffine(self._mask, m, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)[:, :, None]
        out = self.background.astype(np.float32)
        out += alpha * (face - out)
        if self.noise > 0:
            if self._noise_bank is None:
                rng = np.random.default_rng(self.seed)
                self._noise_bank = rng.standard_normal((8, h, w, 3), dtype=np.float32)
            out += self.noise * self._noise_bank[(i * 5 + i // 8) % 8]
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def pose_matrix(points: np.ndarray, pose: Pose) -> np.ndarray:
    """Similarity (2, 3) taking the face's landmark-box centre to (cx, cy), its inter-ocular
    distance to pose.iod, and rotating it by pose.roll (clockwise on screen)."""
    x0, y0, x1, y1 = landmark_box(points)
    iod = float(inter_ocular(points))
    s = pose.iod / max(iod, 1e-6)
    c, si = math.cos(pose.roll), math.sin(pose.roll)
    a = s * np.array([[c, -si], [si, c]])
    t = np.array([pose.cx, pose.cy]) - a @ np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    return np.hstack([a, t[:, None]])


def visibility(points: np.ndarray, width: int, height: int) -> str:
    x0, y0, x1, y1 = landmark_box(points)
    if x0 >= 0 and y0 >= 0 and x1 <= width - 1 and y1 <= height - 1:
        return "full"
    if x1 < 0 or y1 < 0 or x0 > width - 1 or y0 > height - 1:
        return "none"
    return "partial"


def feather_mask(shape, ramp: float = 0.08) -> np.ndarray:
    """float32 (h, w) alpha: 1 inside, falling linearly to 0 over `ramp` x min(h, w) at the edges."""
    h, w = shape
    r = max(ramp * min(h, w), 1.0)
    ys = np.minimum(np.arange(h), np.arange(h)[::-1]) + 0.5
    xs = np.minimum(np.arange(w), np.arange(w)[::-1]) + 0.5
    return np.clip(np.minimum(ys[:, None], xs[None, :]) / r, 0, 1).astype(np.float32)


def make_background(seed: int, size=FRAME_SIZE) -> np.ndarray:
    """uint8 (H, W, 3) BGR: a smooth random colour field with some blocks and fine texture."""
    w, h = size
    rng = np.random.default_rng(seed)
    low = rng.uniform(40, 210, (4, 5, 3)).astype(np.float32)
    bg = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(10):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(30, 250)), y0 + int(rng.integers(30, 200))
        colour = rng.uniform(20, 235, 3)
        bg[y0:y1, x0:x1] = 0.5 * bg[y0:y1, x0:x1] + 0.5 * colour
    texture = rng.normal(0, 8, (h // 4, w // 4, 3)).astype(np.float32)
    bg += cv2.resize(texture, (w, h), interpolation=cv2.INTER_LINEAR)
    bg = cv2.GaussianBlur(bg, (3, 3), 0)
    return np.clip(bg, 0, 255).astype(np.uint8)


def still_poses(n: int = 90, size=FRAME_SIZE, iod: float = FACE_IOD) -> list[Pose]:
    """n copies of the centred pose."""
    return [Pose(size[0] / 2.0, size[1] / 2.0, iod)] * n


def moving_poses(n: int = 120, size=FRAME_SIZE, iod: float = FACE_IOD, fps: float = FPS) -> list[Pose]:
    """Smooth head motion: x +/-110 px (period 4 s), y +/-35 px (3 s), zoom +/-15% (5 s),
    roll +/-15 degrees (3.5 s); at zoom 1 the fastest point moves ~2.5 inter-ocular
    distances per second."""
    out = []
    for i in range(n):
        t = i / fps
        out.append(Pose(size[0] / 2.0 + 110.0 * math.sin(2 * math.pi * t / 4.0),
                        size[1] / 2.0 + 35.0 * math.sin(2 * math.pi * t / 3.0 + 0.5),
                        iod * (1.0 + 0.15 * math.sin(2 * math.pi * t / 5.0)),
                        math.radians(15.0) * math.sin(2 * math.pi * t / 3.5)))
    return out


def leave_poses(size=FRAME_SIZE, iod: float = FACE_IOD, still: int = 20, slide: int = 15,
                away: int = 20) -> list[Pose]:
    """Still, slide out of the right edge (ease-in), `away` frames out of view, slide back in
    from the left edge (ease-out) to the centre, then still again."""
    w, h = size
    cx, cy = w / 2.0, h / 2.0
    off = 2.2 * iod * 1.6  # far enough that the whole face (and its image) is outside
    out = [Pose(cx, cy, iod)] * still
    for k in range(1, slide + 1):
        u = (k / slide) ** 2
        out.append(Pose(cx + u * (w / 2.0 + off), cy, iod))
    out += [Pose(w + off, cy, iod)] * away
    for k in range(1, slide + 1):
        u = 1.0 - (1.0 - k / slide) ** 2
        out.append(Pose(-off + u * (cx + off), cy, iod))
    out += [Pose(cx, cy, iod)] * still
    return out


def build_sequences(image: np.ndarray, points: np.ndarray, seed: int = 0, noise: float = 2.0,
                    size=FRAME_SIZE, iod: float = FACE_IOD) -> dict[str, Sequence]:
    """The three benchmark sequences for one face (image uint8 BGR, points float32 (68, 2))."""
    bg = make_background(seed, size)
    poses = {"still": still_poses(size=size, iod=iod), "moving": moving_poses(size=size, iod=iod),
             "leave": leave_poses(size=size, iod=iod)}
    return {name: Sequence(name, image, np.asarray(points, np.float32), p, bg, noise,
                           seed * 101 + k)
            for k, (name, p) in enumerate(poses.items())}


def validation_faces(root=DATA_ROOT, n: int = 15, min_iod: float = 30.0, cache_dir=".cache"):
    """n validation faces (one per photo, evenly spread over the fixed-seed validation split),
    each with every landmark inside its image and an inter-ocular distance >= min_iod px."""
    from tools.landmarks import data as D

    pairs = D.find_pairs(root)
    if not pairs:
        raise ValueError(f"no image + .pts pairs under {root}")
    _, val = D.split_pairs(pairs, 0.1, seed=0)
    keep, seen = [], set()
    for img_path, pts_path in val:
        pid = D.photo_id(img_path)
        if pid in seen:
            continue
        pts = D.read_pts(pts_path)
        if pts.shape != (68, 2) or inter_ocular(pts) < min_iod:
            continue
        h, w = cv2.imread(str(img_path)).shape[:2]
        if pts.min() < 0 or pts[:, 0].max() > w - 1 or pts[:, 1].max() > h - 1:
            continue
        seen.add(pid)
        keep.append((img_path, pts_path))
    if len(keep) > n:
        keep = [keep[int(i)] for i in np.linspace(0, len(keep) - 1, n).round()]
    return D.load_samples(keep, cache_dir=cache_dir)


# -- running the tracker ---------------------------------------------------------------------

class TimedDetector:
    """Wraps a detector: records whether and how long it ran since the last `take()`."""

    def __init__(self, detector):
        self.detector = detector
        self.seconds = 0.0
        self.calls = 0
        self.found = 0

    def detect(self, image_bgr):
        start = time.perf_counter()
        boxes = self.detector.detect(image_bgr)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.found += len(boxes)
        return boxes

    def take(self) -> tuple[int, int, float]:
        """-> (calls, boxes found, seconds) since the last take; resets them."""
        out = (self.calls, self.found, self.seconds)
        self.calls, self.found, self.seconds = 0, 0, 0.0
        return out


class OracleDetector:
    """Ground-truth landmark box (score 1) whenever the face is fully in view; set `truth`."""

    def __init__(self):
        self.truth: np.ndarray | None = None

    def detect(self, image_bgr):
        if self.truth is None or visibility(self.truth, image_bgr.shape[1], image_bgr.shape[0]) != "full":
            return []
        return [Box(*landmark_box(self.truth), 1.0)]


@dataclass
class Record:
    """Per-frame tracker output for one sequence (T frames).

    raw : float32 (T, 68, 2) raw landmarks, NaN where no face; track : int (T,) track id, 0 = none;
    score : (T,); truth : float32 (T, 68, 2); visible : list of 'full'/'partial'/'none';
    detected : int (T,) detector calls; found : int (T,) boxes the detector returned;
    process_s, detect_s : (T,) seconds in tracker.process and in the detector;
    landmarks_s : (T,) seconds in the landmark model (NaN when the tracker does not report it).
    """
    name: str
    raw: np.ndarray
    track: np.ndarray
    score: np.ndarray
    truth: np.ndarray
    visible: list
    detected: np.ndarray
    found: np.ndarray
    process_s: np.ndarray
    detect_s: np.ndarray
    landmarks_s: np.ndarray


def run_sequence(seq: Sequence, tracker, detector: TimedDetector, oracle: OracleDetector | None = None,
                 fps: float = FPS) -> Record:
    """Run a fresh track (tracker.reset()) over the sequence with smoothing off."""
    tracker.reset()
    detector.take()
    n = len(seq)
    rec = Record(seq.name, np.full((n, 68, 2), np.nan, np.float32), np.zeros(n, int), np.zeros(n),
                 np.zeros((n, 68, 2), np.float32), [], np.zeros(n, int), np.zeros(n, int),
                 np.zeros(n), np.zeros(n), np.full(n, np.nan))
    for i in range(n):
        frame = seq.frame(i)
        truth = seq.truth(i)
        if oracle is not None:
            oracle.truth = truth
        start = time.perf_counter()
        faces = tracker.process(frame, i / fps)
        rec.process_s[i] = time.perf_counter() - start
        rec.detected[i], rec.found[i], rec.detect_s[i] = detector.take()
        times = getattr(tracker, "last_times", None)
        if times is not None:
            rec.landmarks_s[i] = times.landmarks
        rec.truth[i] = truth
        rec.visible.append(visibility(truth, frame.shape[1], frame.shape[0]))
        if faces:
            face = faces[0]
            rec.raw[i] = face.landmarks
            rec.track[i] = face.track_id
            rec.score[i] = face.score
    return rec


def smooth_track(raw: np.ndarray, track: np.ndarray, params: SmoothingParams, fps: float = FPS):
    """The tracker's smoothing applied after the fact: a new One Euro filter per track id,
    t = frame / fps. -> (float32 (T, 68, 2) smoothed, NaN where no face; seconds per call)."""
    out = np.full_like(raw, np.nan)
    filt, current, spent, calls = None, 0, 0.0, 0
    for i in range(len(raw)):
        if track[i] == 0:
            current = 0
            continue
        if track[i] != current:
            filt, current = OneEuroFilter.from_params(params), track[i]
        start = time.perf_counter()
        out[i] = filt(raw[i], i / fps)
        spent += time.perf_counter() - start
        calls += 1
    return out, spent / max(calls, 1)


def make_tracker(landmarker, detector, min_tracking_score=None, crop_deadband=None):
    """Tracker for one face with smoothing off; None arguments take the tracker's defaults
    (its thread cap: the landmarker's)."""
    from tracker.tracking import Tracker

    kwargs = {} if min_tracking_score is None else {"min_tracking_score": min_tracking_score}
    if crop_deadband is not None:
        kwargs["crop_deadband"] = crop_deadband
    return Tracker(landmarker, detector, max_faces=1, smoothing=False, fps=FPS, **kwargs)


def load_landmarker(weights, threads):
    from tracker.landmarks import Landmarker

    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: no such weights file")
    try:
        return Landmarker(weights, threads=threads)
    except TypeError:   # a Landmarker without the threads argument
        return Landmarker(weights)


# -- metrics ----------------------------------------------------------------------------------

def jitter(points: np.ndarray, truth: np.ndarray, track: np.ndarray, start: int = 0) -> float:
    """Mean frame-to-frame landmark motion / true inter-ocular distance over frames >= start
    where the same track is present in both frames (fraction); NaN when there are none."""
    same = (track[1:] == track[:-1]) & (track[1:] > 0)
    same[: max(start - 1, 0)] = False
    if not same.any():
        return float("nan")
    step = np.linalg.norm(points[1:] - points[:-1], axis=-1).mean(-1) / inter_ocular(truth[1:])
    return float(step[same].mean())


def lag(points: np.ndarray, truth: np.ndarray, min_speed: float = 0.2) -> float:
    """Mean error along the direction of motion (fraction of inter-ocular distance; positive =
    behind the face) over frames whose landmark centroid moves faster than min_speed px/frame."""
    c = truth.mean(axis=1)
    v = np.zeros_like(c)
    v[1:-1] = (c[2:] - c[:-2]) / 2.0
    speed = np.linalg.norm(v, axis=1)
    ok = (speed > min_speed) & np.isfinite(points).all(axis=(1, 2))
    if not ok.any():
        return float("nan")
    along = ((points - truth).mean(axis=1) * v).sum(axis=1) / np.maximum(speed, 1e-9)
    return float((-along[ok] / inter_ocular(truth[ok])).mean())


def first_full_return(visible: list) -> int | None:
    """Index of the first fully visible frame after the face was out of view."""
    gone = False
    for i, vis in enumerate(visible):
        gone = gone or vis == "none"
        if gone and vis == "full":
            return i
    return None
