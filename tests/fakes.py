"""Stand-ins for the landmark model and the detector, and a synthetic face, for tracker tests.

The synthetic face is a rough 68-point layout (jaw arc, brows, nose, eyes,
lips) in a unit frame whose landmark box is x in [-1, 1], y in [-0.75, 1];
`face_points(cx, cy, size, roll)` places it in a frame.
"""
from __future__ import annotations

import math
import threading
import time

import cv2
import numpy as np

from tracker.geometry import CropBox
from tracker.landmarks import LandmarkResult
from tracker.types import Box


def _ellipse(cx, cy, rx, ry, n, start=math.pi):
    t = start + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def unit_face() -> np.ndarray:
    """float64 (68, 2) synthetic landmarks, landmark box [-1, 1] x [-0.75, 1]."""
    t = np.linspace(0, math.pi, 17)
    jaw = np.stack([-np.cos(t), -0.25 + 1.25 * np.sin(t)], axis=1)
    xs = np.linspace(-0.8, -0.2, 5)
    brow_l = np.stack([xs, -0.7 + 0.05 * np.sin((xs + 0.8) / 0.6 * math.pi) - 0.05], axis=1)
    brow_r = brow_l[::-1] * [-1, 1]
    nose = np.stack([np.zeros(4), np.linspace(-0.45, 0.05, 4)], axis=1)
    nostrils = np.stack([np.linspace(-0.2, 0.2, 5), 0.2 + 0.03 * np.abs(np.linspace(-2, 2, 5))], axis=1)
    eye_l = _ellipse(-0.45, -0.3, 0.18, 0.07, 6)
    eye_r = _ellipse(0.45, -0.3, 0.18, 0.07, 6)
    lips_out = _ellipse(0.0, 0.5, 0.4, 0.15, 12)
    lips_in = _ellipse(0.0, 0.5, 0.25, 0.05, 8)
    pts = np.concatenate([jaw, brow_l, brow_r, nose, nostrils, eye_l, eye_r, lips_out, lips_in])
    assert pts.shape == (68, 2)
    return pts


UNIT_FACE = unit_face()
UNIT_CENTRE = np.array([0.0, 0.125])  # middle of the unit landmark box


def face_points(cx: float, cy: float, size: float, roll: float = 0.0) -> np.ndarray:
    """float32 (68, 2): synthetic face whose upright landmark box is size x 0.875 size,
    centred on (cx, cy), rolled by `roll` radians (clockwise on screen)."""
    c, s = math.cos(roll), math.sin(roll)
    rot = np.array([[c, -s], [s, c]])
    local = (UNIT_FACE - UNIT_CENTRE) * (size / 2.0)
    return (local @ rot.T + [cx, cy]).astype(np.float32)


def landmark_result(points: np.ndarray, score: float) -> LandmarkResult:
    """What a landmark model's `run` gives per crop: points (68, 2) frame pixels (also the
    coarse stage's here) and a score."""
    return LandmarkResult(points, points, float(score))


def draw_scene(faces: list[np.ndarray], size=(320, 240)) -> np.ndarray:
    """uint8 BGR frame, black, each face a filled white convex hull of its points."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    for pts in faces:
        hull = cv2.convexHull(np.round(pts).astype(np.int32))
        cv2.fillConvexPoly(frame, hull, (255, 255, 255))
    return frame


class BlobDetector:
    """Detector for draw_scene frames: one box per white blob, score 0.9. Counts its calls."""

    def __init__(self):
        self.calls = 0

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        self.calls += 1
        mask = (image_bgr[:, :, 0] > 127).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = []
        for x, y, w, h, area in stats[1:n]:
            if area >= 30:
                boxes.append(Box(float(x), float(y), float(x + w - 1), float(y + h - 1), 0.9))
        return boxes


class SceneLandmarker:
    """Landmark model stand-in that knows the true faces of the current frame.

    Set `truth` (list of (68, 2) arrays) before each frame. For a crop that
    holds a true face (centre inside the middle of the crop, size within 2x of
    what the crop expects) it returns that face (plus optional noise) with
    score 0.95; otherwise the unit face laid into the crop with score 0.05.
    Records every crop it was given.
    """

    def __init__(self, crop_scale: float = 1.5, noise: float = 0.0, seed: int = 0):
        self.crop_scale = crop_scale
        self.noise = noise
        self.rng = np.random.default_rng(seed)
        self.truth: list[np.ndarray] = []
        self.crops: list[CropBox] = []
        self.calls = 0

    def run(self, frame_bgr, crops):
        self.calls += 1
        out = []
        for crop in crops:
            self.crops.append(crop)
            expected = crop.side / self.crop_scale
            for pts in self.truth:
                centre = (pts.min(axis=0) + pts.max(axis=0)) / 2
                size = float(np.linalg.norm(pts[0] - pts[16]))
                if (np.hypot(*(centre - [crop.cx, crop.cy])) < 0.25 * crop.side
                        and expected / 2 < size < expected * 2):
                    noisy = pts + self.rng.normal(0, self.noise, pts.shape) if self.noise else pts
                    out.append(landmark_result(noisy.astype(np.float32), 0.95))
                    break
            else:
                out.append(landmark_result(face_points(crop.cx, crop.cy, expected, crop.angle), 0.05))
        return out


class TemplateLandmarker:
    """Landmark model stand-in for real frames: the unit face laid into each crop, score 0.9."""

    crop_scale = 1.5

    def run(self, frame_bgr, crops):
        return [landmark_result(face_points(c.cx, c.cy, c.side / self.crop_scale, c.angle), 0.9) for c in crops]


class ManualClock:
    """A clock for `tracker.live` that moves only when told (`advance`), so tests of pacing and
    frame dropping read no wall clock. `wait(event, seconds)` returns once the clock has moved
    that far or the event is set (polling both; the capture thread waits here)."""

    def __init__(self, start: float = 0.0):
        self._t = float(start)
        self._cond = threading.Condition()

    def now(self) -> float:
        with self._cond:
            return self._t

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._t += seconds
            self._cond.notify_all()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        with self._cond:
            target = self._t + seconds
            while self._t < target and not event.is_set():
                self._cond.wait(0.005)  # also wakes up to see a set event
        return event.is_set()


class CountingCapture:
    """cv2.VideoCapture-like source of `n` frames (frame i filled with i), counting its reads."""

    def __init__(self, n: int, size=(32, 24)):
        self.n, self.size, self.reads = n, size, 0

    def isOpened(self):
        return True

    def read(self):
        self.reads += 1
        if self.reads > self.n:
            return False, None
        return True, np.full((self.size[1], self.size[0], 3), self.reads - 1, np.uint8)


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    """Block until `condition()` is true (another thread makes it so); fails naming `what` after
    `timeout` s. A synchronisation for tests, not a timing check: the timeout only catches a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)
