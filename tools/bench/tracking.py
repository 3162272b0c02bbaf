"""Tracker benchmark on synthetic video made from validation faces, with known motion.

USAGE
    python -m tools.bench.tracking --weights weights/demo.h5
    python -m tools.bench.tracking --weights weights/demo.h5 --faces 15 --mode both \
        --json bench_tracking.json

Each validation face of 300-W (the fixed split `tools.landmarks.data.split_pairs(pairs,
0.1, seed=0)[1]`; never training faces, never test data) is pasted into a
640x480 frame: the whole face image is warped by a per-frame similarity
(translation, zoom, roll) onto a synthetic background with feathered edges,
per-frame sensor noise is added, and the ground-truth points go through the
same similarity. Three sequences per face, 30 frames/s:

    still   90 frames, constant pose, sensor noise only;
    moving  120 frames, smooth translation (up to ~2.5 inter-ocular distances
            per second), zoom +/-15% and roll +/-15 degrees;
    leave   90 frames: still, slides out of the right edge, 20 frames of
            empty background, slides back in from the left, still again.

The tracker runs with smoothing off and the One Euro filter is applied to its
raw output afterwards with the tracker's own semantics (a new filter per track,
t = frame / fps), so one run gives both the raw model output and the smoothed
output (`smooth_track`; tests check it equals the tracker's own smoothing).

Reported per sequence (means over faces; NME, jitter and lag in % of the
ground-truth inter-ocular distance |p36 - p45|):

    nme raw / smooth   per-frame NME of the tracker output while the face is
                       fully in view, mean and (med) median over faces
                       (per-frame values in the JSON);
    jitter             still: mean frame-to-frame landmark motion (per
                       landmark, per frame), from frame 10 on;
    lag                moving: mean error along the direction of motion
                       (positive = behind the face), raw and smoothed;
    lost               frames with the face fully in view but no output;
    recover            leave: frames from the first frame the face is fully
                       back in view to the first output that covers it
                       (landmark-box IoU >= 0.5); 0 = on that very frame;
    ghost              leave: frames with output while the face is out of view;
    fps                end to end (tracker.process + the One Euro step) on
                       640x480 frames with one face, landmarks only; tracking
                       frames (no detector call) apart from detection frames.

With --mediapipe PYTHON (a venv made by `python -m venv mpvenv && mpvenv/bin/pip
install mediapipe==0.10.14 'numpy<2'`), MediaPipe's legacy face_mesh in tracking mode
runs in that interpreter on the same frames, each timed sequence right after ours (so
load on a shared machine hits both alike); its tracking frames are those with a face
out after a frame with a face (cvtColor to RGB + FaceMesh.process), and both frames/s
are printed side by side with their ratio.

Modes: `detector` starts (and restarts) tracks with the default detector of
`tracker.detection.DETECTORS` and reports when it misses; `oracle` replaces it
by the ground-truth landmark box whenever the tracker asks (when the face is
fully in view), so landmark tracking is measured independently of the detector.

The tracker runs with its own defaults (crop deadband, tracking threshold
from the weights config else 0.5) unless --min-tracking-score / --crop-deadband
say otherwise; --smoothing sets the One Euro parameters applied afterwards.
Use NUMBA_NUM_THREADS / --threads to match the deployment (the 2-core target
machines); timings on a loaded machine are upper bounds.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tracker.detection import DEFAULT_DETECTOR
from tracker.geometry import apply_affine, landmark_box
from tracker.smoothing import OneEuroFilter, SmoothingParams
from tracker.types import Box

FRAME_SIZE = (640, 480)      # (width, height)
FPS = 30.0
FACE_IOD = 70.0              # inter-ocular distance of the pasted face at zoom 1, pixels
DATA_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "300w"
SEQUENCES = ("still", "moving", "leave")
STILL_WARMUP = 10            # still frames left out of the jitter (filter settling)
RECOVER_IOU = 0.5


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
    iod = float(np.linalg.norm(points[36] - points[45]))
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
        if pts.shape != (68, 2) or np.linalg.norm(pts[36] - pts[45]) < min_iod:
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


# -- metrics ----------------------------------------------------------------------------------

def iod(points: np.ndarray) -> np.ndarray:
    """Inter-ocular distance |p36 - p45| of (..., 68, 2) points."""
    return np.linalg.norm(points[..., 36, :] - points[..., 45, :], axis=-1)


def nme(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-frame NME (fraction of the true inter-ocular distance); NaN where pred is NaN."""
    return np.linalg.norm(pred - truth, axis=-1).mean(-1) / iod(truth)


def jitter(points: np.ndarray, truth: np.ndarray, track: np.ndarray, start: int = 0) -> float:
    """Mean frame-to-frame landmark motion / true inter-ocular distance over frames >= start
    where the same track is present in both frames (fraction); NaN when there are none."""
    same = (track[1:] == track[:-1]) & (track[1:] > 0)
    same[: max(start - 1, 0)] = False
    if not same.any():
        return float("nan")
    step = np.linalg.norm(points[1:] - points[:-1], axis=-1).mean(-1) / iod(truth[1:])
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
    return float((-along[ok] / iod(truth[ok])).mean())


def first_full_return(visible: list) -> int | None:
    """Index of the first fully visible frame after the face was out of view."""
    gone = False
    for i, vis in enumerate(visible):
        gone = gone or vis == "none"
        if gone and vis == "full":
            return i
    return None


def sequence_metrics(rec: Record, smoothed: np.ndarray) -> dict:
    """Figures of one sequence (fractions are turned into % here)."""
    full = np.array([v == "full" for v in rec.visible])
    none = np.array([v == "none" for v in rec.visible])
    have = rec.track > 0
    e_raw, e_smooth = nme(rec.raw, rec.truth), nme(smoothed, rec.truth)
    tracked = full & have
    out = {
        "frames": len(rec.visible),
        "nme_raw": _pct(np.nanmean(e_raw[tracked]) if tracked.any() else np.nan),
        "nme_smooth": _pct(np.nanmean(e_smooth[tracked]) if tracked.any() else np.nan),
        "lost": int((full & ~have).sum()),
        "first_face": int(np.argmax(have)) if have.any() else None,
        "detector_calls": int(rec.detected.sum()),
        "detector_missed": int(((rec.detected > 0) & (rec.found == 0) & full).sum()),
        "tracks": int(len(set(rec.track[have].tolist()))),
        "per_frame_nme_raw": [_pct(x) for x in e_raw],
        "per_frame_nme_smooth": [_pct(x) for x in e_smooth],
    }
    if rec.name == "still":
        out["jitter_raw"] = _pct(jitter(rec.raw, rec.truth, rec.track, STILL_WARMUP))
        out["jitter_smooth"] = _pct(jitter(smoothed, rec.truth, rec.track, STILL_WARMUP))
    if rec.name == "moving":
        out["lag_raw"] = _pct(lag(rec.raw, rec.truth))
        out["lag_smooth"] = _pct(lag(smoothed, rec.truth))
    if rec.name == "leave":
        back = first_full_return(rec.visible)
        recover = None
        if back is not None:
            for i in range(back, len(rec.visible)):
                if have[i] and Box(*landmark_box(rec.raw[i])).iou(Box(*landmark_box(rec.truth[i]))) >= RECOVER_IOU:
                    recover = i - back
                    break
        out["recover"] = recover
        out["ghost"] = int((none & have).sum())
        gone = int(np.argmax(none)) if none.any() else None
        out["dropped_after"] = None if gone is None else next(
            (i - gone for i in range(gone, len(have)) if not have[i]), None)
    return out


def _pct(x) -> float | None:
    x = float(x)
    return None if not math.isfinite(x) else round(100.0 * x, 4)


# -- driver -----------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average %.2f" % os.getloadavg()[0]
    threads = os.environ.get("NUMBA_NUM_THREADS", "default")
    return (f"{cpu}, {os.cpu_count()} logical cores{load}, NUMBA_NUM_THREADS={threads}, "
            f"OpenCV threads {cv2.getNumThreads()}, Python {platform.python_version()}")


# -- the peer: MediaPipe's legacy face mesh in its own interpreter --------------------------

#: Runs in the peer's interpreter (a venv with mediapipe 0.10.14 and numpy < 2). Reads
#: sequences from stdin: a JSON line {"frames": T, "height": H, "width": W}, then T raw
#: uint8 BGR frames; a fresh FaceMesh in tracking mode per sequence (as `tracker.reset()`
#: for ours); answers one JSON line per sequence: per-frame seconds of cvtColor to RGB +
#: FaceMesh.process, and whether a face came out. An empty line ends it.
PEER_WORKER = r"""
import json, sys, time
import cv2, numpy as np
import mediapipe as mp
fm = mp.solutions.face_mesh
print(json.dumps({"ready": mp.__version__}), flush=True)
src = sys.stdin.buffer
while True:
    line = src.readline()
    if not line.strip():
        break
    head = json.loads(line)
    n, h, w = head["frames"], head["height"], head["width"]
    secs, found, cpu = [], [], time.process_time()
    with fm.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=False,
                     min_detection_confidence=0.5, min_tracking_confidence=0.5) as mesh:
        for _ in range(n):
            frame = np.frombuffer(src.read(h * w * 3), np.uint8).reshape(h, w, 3)
            t = time.perf_counter()
            res = mesh.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            secs.append(time.perf_counter() - t)
            found.append(bool(res.multi_face_landmarks))
    print(json.dumps({"seconds": secs, "found": found, "cpu_s": time.process_time() - cpu}), flush=True)
"""


class PeerTracker:
    """MediaPipe's face mesh (tracking mode) in another interpreter, fed the same frames.

    python : the peer venv's interpreter (its own numpy; frames go over a pipe, so
    the transfer is not timed). `run(frames)` -> (seconds per frame, face found per frame);
    `cpu_s` and `wall_s` add up the CPU seconds (all its threads) and frame seconds so far.
    """

    def __init__(self, python):
        import subprocess

        if not Path(python).is_file():
            raise FileNotFoundError(f"{python}: no such interpreter (--mediapipe)")
        self.proc = subprocess.Popen([str(python), "-c", PEER_WORKER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.version = json.loads(self._answer())["ready"]
        self.cpu_s = self.wall_s = 0.0

    def _answer(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the MediaPipe peer stopped:\n{err}")
        return line.decode()

    def run(self, frames: list) -> tuple[np.ndarray, np.ndarray]:
        h, w = frames[0].shape[:2]
        self.proc.stdin.write((json.dumps({"frames": len(frames), "height": h, "width": w}) + "\n").encode())
        for frame in frames:
            self.proc.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())
        self.proc.stdin.flush()
        res = json.loads(self._answer())
        self.cpu_s += res["cpu_s"]
        self.wall_s += sum(res["seconds"])
        return np.asarray(res["seconds"], float), np.asarray(res["found"], bool)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def peer_tracking_seconds(seconds: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Per-frame seconds of the peer's tracking frames: a face out, and one on the frame
    before (so the frame did not start with a detection)."""
    tracking = found.copy()
    tracking[0] = False
    tracking[1:] &= found[:-1]
    return seconds[tracking]


def make_tracker(landmarker, detector, min_tracking_score=None, crop_deadband=None):
    """Tracker for one face with smoothing off; None arguments take the tracker's defaults."""
    from tracker.tracking import Tracker

    kwargs = {} if min_tracking_score is None else {"min_tracking_score": min_tracking_score}
    if crop_deadband is not None:
        kwargs["crop_deadband"] = crop_deadband
    return Tracker(landmarker, detector, max_faces=1, smoothing=False, fps=FPS, **kwargs)


def benchmark(landmarker, samples, mode: str, params: SmoothingParams, detector_name: str,
              min_tracking_score=None, crop_deadband=None, noise: float = 2.0, progress=True,
              peer: PeerTracker | None = None):
    """Run every sequence of every face in one mode -> (per-face results, timing dict).

    With a `peer`, each timed sequence (still, moving) goes to it right after our tracker,
    so both see the same frames under the same machine load."""
    from tracker.detection import DETECTORS

    oracle = OracleDetector() if mode == "oracle" else None
    timed = TimedDetector(oracle if oracle is not None else DETECTORS[detector_name]())
    tracker = make_tracker(landmarker, timed, min_tracking_score, crop_deadband)
    faces, track_s, detect_frame_s, smooth_s, model_s, other_s, peer_s = [], [], [], [], [], [], []
    peer_cpu, peer_wall = (peer.cpu_s, peer.wall_s) if peer is not None else (0.0, 0.0)
    for k, sample in enumerate(samples):
        seqs = build_sequences(sample.image, sample.points, seed=k, noise=noise)
        per = {"face": sample.name}
        for name, seq in seqs.items():
            rec = run_sequence(seq, tracker, timed, oracle)
            smoothed, per_call = smooth_track(rec.raw, rec.track, params)
            per[name] = sequence_metrics(rec, smoothed)
            if name != "leave":   # timing: one face in view
                on = rec.track > 0
                track_s += (rec.process_s[on & (rec.detected == 0)] + per_call).tolist()
                model_s += rec.landmarks_s[on & (rec.detected == 0)].tolist()
                other_s += (rec.process_s - rec.landmarks_s)[on & (rec.detected == 0)].tolist()
                detect_frame_s += (rec.process_s[rec.detected > 0]).tolist()
                smooth_s.append(per_call)
                if peer is not None:
                    peer_s += peer_tracking_seconds(*peer.run([seq.frame(i) for i in range(len(seq))])).tolist()
        faces.append(per)
        if progress:
            print(f"  [{mode}] face {k + 1}/{len(samples)} {sample.name}", file=sys.stderr, flush=True)
    timing = {"tracking_frames": len(track_s), "detection_frames": len(detect_frame_s),
              "tracking_ms_mean": _ms(np.mean(track_s)) if track_s else None,
              "tracking_ms_median": _ms(np.median(track_s)) if track_s else None,
              "tracking_ms_p90": _ms(np.percentile(track_s, 90)) if track_s else None,
              "tracking_fps": round(1.0 / np.mean(track_s), 1) if track_s else None,
              "tracking_fps_median": round(1.0 / np.median(track_s), 1) if track_s else None,
              "tracking_model_ms_median": _ms(np.nanmedian(model_s)) if np.isfinite(model_s).any() else None,
              "tracking_other_ms_median": _ms(np.nanmedian(other_s)) if np.isfinite(other_s).any() else None,
              "detection_ms_median": _ms(np.median(detect_frame_s)) if detect_frame_s else None,
              "smoothing_ms": _ms(np.mean(smooth_s)) if smooth_s else None}
    if peer is not None:
        cpu, wall = peer.cpu_s - peer_cpu, peer.wall_s - peer_wall
        timing["peer"] = {"cores_used": round(cpu / wall, 2) if wall else None, "name": f"MediaPipe {peer.version} face_mesh, tracking mode",
                          "tracking_frames": len(peer_s),
                          "tracking_fps": round(1.0 / np.mean(peer_s), 1) if peer_s else None,
                          "tracking_fps_median": round(1.0 / np.median(peer_s), 1) if peer_s else None,
                          "tracking_ms_median": _ms(np.median(peer_s)) if peer_s else None}
    return faces, timing


def _ms(x) -> float:
    return round(1000.0 * float(x), 3)


def _mean(values):
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(faces: list[dict]) -> dict:
    """Means over faces (None values skipped), NME medians over faces, and counts."""
    s = {}
    for name in SEQUENCES:
        keys = [k for k, v in faces[0][name].items() if not k.startswith("per_frame")
                and (v is None or isinstance(v, (int, float)))]
        s[name] = {k: _mean([f[name][k] for f in faces]) for k in keys}
        for k in ("nme_raw", "nme_smooth"):
            vals = [f[name][k] for f in faces if f[name][k] is not None]
            s[name][k + "_median"] = float(np.median(vals)) if vals else None
    rec = [f["leave"]["recover"] for f in faces]
    s["leave"]["recovered_faces"] = sum(r is not None for r in rec)
    s["leave"]["recover_max"] = max((r for r in rec if r is not None), default=None)
    s["leave"]["recover_within_3"] = sum(r is not None and r <= 3 for r in rec)
    s["faces"] = len(faces)
    s["start_missed_faces"] = sum(f["still"]["first_face"] is None for f in faces)
    return s


def format_table(results: dict) -> str:
    def f(x, fmt="{:.2f}"):
        return "-" if x is None else fmt.format(x)

    lines = [f"{'mode':9s}{'seq':8s}{'nme raw':>9s}{'(med)':>7s}{'smooth':>8s}{'(med)':>7s}"
             f"{'jitter raw':>11s}{'smooth':>8s}"
             f"{'lag raw':>9s}{'smooth':>8s}{'lost':>6s}{'recover':>9s}{'max':>5s}{'ghost':>6s}"]
    for mode, r in results.items():
        s = r["summary"]
        for name in SEQUENCES:
            q = s[name]
            lines.append(
                f"{mode:9s}{name:8s}{f(q['nme_raw']):>9s}{f(q['nme_raw_median']):>7s}"
                f"{f(q['nme_smooth']):>8s}{f(q['nme_smooth_median']):>7s}"
                f"{f(q.get('jitter_raw'), '{:.3f}'):>11s}{f(q.get('jitter_smooth'), '{:.3f}'):>8s}"
                f"{f(q.get('lag_raw')):>9s}{f(q.get('lag_smooth')):>8s}{f(q['lost'], '{:.1f}'):>6s}"
                f"{f(q.get('recover'), '{:.1f}'):>9s}{f(q.get('recover_max'), '{:d}'):>5s}"
                f"{f(q.get('ghost'), '{:.1f}'):>6s}")
    lines.append("")
    lines.append(f"{'mode':9s}{'faces':>6s}{'recovered<=3':>13s}{'start missed':>13s}"
                 f"{'track fps':>10s}{'(median)':>9s}{'track ms p90':>13s}{'model ms':>9s}{'det frame ms':>13s}")
    for mode, r in results.items():
        s, t = r["summary"], r["timing"]
        lines.append(f"{mode:9s}{s['faces']:6d}{s['leave']['recover_within_3']:>9d}/{s['faces']:<3d}"
                     f"{s['start_missed_faces']:>13d}{f(t['tracking_fps'], '{:.1f}'):>10s}"
                     f"{f(t['tracking_fps_median'], '{:.1f}'):>9s}{f(t['tracking_ms_p90']):>13s}"
                     f"{f(t['tracking_model_ms_median']):>9s}"
                     f"{f(t['detection_ms_median'], '{:.1f}'):>13s}")
    for mode, r in results.items():
        t = r["timing"]
        lines.append(f"{mode}: a tracking frame (median) = landmark model {f(t['tracking_model_ms_median'])} ms"
                     f" + rest of Tracker.process {f(t.get('tracking_other_ms_median'))} ms"
                     f" + One Euro {f(t['smoothing_ms'], '{:.3f}')} ms; {t['tracking_frames']} tracking, "
                     f"{t['detection_frames']} detection frames (still + moving)")
        p = t.get("peer")
        if p is not None and p["tracking_fps"] and t["tracking_fps"]:
            lines.append(f"{mode}: {p['name']} on the same frames, taking turns sequence by sequence: "
                         f"{p['tracking_fps']:.1f} tracking frames/s (median {p['tracking_fps_median']:.1f}, "
                         f"{p['tracking_frames']} frames) vs ours {t['tracking_fps']:.1f} "
                         f"(median {t['tracking_fps_median']:.1f}) = {t['tracking_fps'] / p['tracking_fps']:.2f}x "
                         f"(medians {t['tracking_fps_median'] / p['tracking_fps_median']:.2f}x); the peer's "
                         f"CPU time / frame time: {p['cores_used']} cores")
    return "\n".join(lines)


def load_landmarker(weights, threads):
    from tracker.landmarks import Landmarker

    if not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: no such weights file")
    try:
        return Landmarker(weights, threads=threads)
    except TypeError:   # a Landmarker without the threads argument
        return Landmarker(weights)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/demo.h5")
    ap.add_argument("--data", default=str(DATA_ROOT), help="300-W folder (the validation split is used)")
    ap.add_argument("--faces", type=int, default=15, help="validation faces (one per photo)")
    ap.add_argument("--mode", choices=["detector", "oracle", "both"], default="both")
    ap.add_argument("--detector", default=DEFAULT_DETECTOR, help="name in tracker.detection.DETECTORS")
    ap.add_argument("--min-tracking-score", type=float,
                    help="default: the tracker's own (weights config, else 0.5)")
    ap.add_argument("--crop-deadband", type=float, help="default: the tracker's own")
    ap.add_argument("--smoothing", type=float, nargs=3, metavar=("MIN_CUTOFF", "BETA", "D_CUTOFF"),
                    help="One Euro parameters (default: tracker.smoothing.SmoothingParams())")
    ap.add_argument("--noise", type=float, default=2.0, help="sensor noise sigma, grey levels")
    ap.add_argument("--threads", type=int, default=1, help="landmark model threads")
    ap.add_argument("--json", default="bench_tracking.json")
    ap.add_argument("--mediapipe", metavar="PYTHON",
                    help="interpreter of a venv with mediapipe 0.10.14 (and numpy<2): its legacy face_mesh "
                         "in tracking mode runs the same frames, sequence by sequence with ours")
    args = ap.parse_args(argv)

    params = SmoothingParams(*args.smoothing) if args.smoothing else SmoothingParams()
    try:
        landmarker = load_landmarker(args.weights, args.threads)
        samples = validation_faces(args.data, args.faces)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    peer = None
    if args.mediapipe:
        try:
            peer = PeerTracker(args.mediapipe)
        except (OSError, RuntimeError, ValueError) as e:
            print(f"error: --mediapipe {args.mediapipe}: {e}", file=sys.stderr)
            return 2
    # compile / load the kernels before timing
    warm = build_sequences(samples[0].image, samples[0].points, seed=999)["still"]
    make_tracker(landmarker, TimedDetector(OracleDetector())).process(warm.frame(0))
    from tracker.detection import DETECTORS
    DETECTORS[args.detector]().detect(warm.frame(0))
    if peer is not None:
        peer.run([warm.frame(i) for i in range(10)])

    modes = ["detector", "oracle"] if args.mode == "both" else [args.mode]
    results = {}
    for mode in modes:
        faces, timing = benchmark(landmarker, samples, mode, params, args.detector,
                                  args.min_tracking_score, args.crop_deadband, args.noise, peer=peer)
        results[mode] = {"summary": summarise(faces), "timing": timing, "faces": faces}
    if peer is not None:
        peer.close()
    probe = make_tracker(landmarker, OracleDetector(), args.min_tracking_score, args.crop_deadband)
    header = {"weights": str(args.weights), "machine": machine(), "faces": [s.name for s in samples],
              "smoothing": {"min_cutoff": params.min_cutoff, "beta": params.beta, "d_cutoff": params.d_cutoff},
              "min_tracking_score": probe.min_tracking_score, "crop_deadband": probe.crop_deadband,
              "noise": args.noise, "frame_size": FRAME_SIZE, "fps": FPS, "face_iod": FACE_IOD}
    print(f"{args.weights}: {len(samples)} validation faces, 640x480, {FPS:.0f} frames/s, "
          f"face inter-ocular {FACE_IOD:.0f} px, sensor noise sigma {args.noise}")
    print(f"machine: {header['machine']}")
    print(f"smoothing {header['smoothing']}, min_tracking_score {probe.min_tracking_score}, "
          f"crop_deadband {probe.crop_deadband}")
    print("NME, jitter, lag in % of inter-ocular distance; lost/recover/ghost in frames (means over faces)")
    print(format_table(results))
    Path(args.json).write_text(json.dumps({**header, "results": results}, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
