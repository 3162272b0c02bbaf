"""Face tracking: detect once, then follow each face with the landmark model.

Per frame (streaming mode):

1. every live track is cropped from its previous landmarks
   (`geometry.landmarks_to_crop`, which also removes head roll; the track's
   previous crop is kept while the new one is within `crop_deadband` of it)
   and the landmark model runs on all those crops in one call; a track whose
   score is below `min_tracking_score` is lost, and so is one whose landmarks
   left the frame or grew past MAX_FACE_SIZE times its longer side (a model
   that runs away with its own crops);
2. when there are fewer tracks than `max_faces`, the detector runs: on every
   frame while there is no track, otherwise every `redetect_interval` frames.
   Detections with score >= `min_detection_score` that do not overlap a track
   (IoU of landmark boxes) are cropped with `geometry.box_to_crop` and
   landmarked; those the landmark model accepts start new tracks. A face the
   detector finds near a track lost in this same frame (`_found_again`:
   centres at most one face size apart, sizes within 2x) is that face again
   and keeps its id: a fast motion can carry a face out of the crop taken
   from its previous landmarks while it stays in view. A detector with a `poll()` method
   (`tracker.detection.BackgroundDetector`) is also polled on the frames in
   between, so its result is used as soon as it lands;
3. each track's landmarks go through its own One Euro filter.

In static-image mode every call is independent: detection on every frame, no
tracks kept, no smoothing. Track ids start at 1 and only increase over the
tracker's life (also across `reset()`); a face keeps its id while it is
tracked or re-found in the frame it was lost.

The landmark model is any object with
    crop_scale : float   crop side / landmark-box side used at training;
    run(frame_bgr, crops: list[CropBox]) -> one result per crop with `points`
        (float32 (68, 2) frame pixels) and `score` (in [0, 1]), e.g.
        `tracker.landmarks.LandmarkResult`
and the detector any `tracker.detection.Detector`.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from nnlite.jit import resolve_threads, thread_limit
from tracker.detection import core as detection
from tracker.detection.core import Detector
from tracker.geometry import CropBox, box_to_crop, landmark_box, landmarks_to_crop
from tracker.smoothing import OneEuroFilter, SmoothingParams
from tracker.types import Box, Face

log = logging.getLogger(__name__)

# When neither the caller nor the weights file gives a threshold: one per kind of landmark
# score (the weights config's heatmap.confidence, see nnlite.model.ModelOutput.peaks); a face
# scores about 0.9 in sigmoid peaks and 0.3 in softmax peaks, a lost track under half that.
DEFAULT_MIN_TRACKING_SCORES = {"sigmoid_peak": 0.5, "softmax_peak": 0.15}
CROP_DEADBAND = 0.02              # see Tracker(crop_deadband=...); tools/landmarks/tune_tracking.py
CROP_DEADBAND_ROLL = math.radians(2.0)
MAX_FACE_SIZE = 2.0               # most landmark-box side, in frame sides, of a tracked face


def default_min_tracking_score(landmarker) -> float:
    """The landmark model's own tracking threshold: `landmarker.min_score` when it has one,
    else `"tracking": {"min_score": ...}` of its weights config (`landmarker.model.config`),
    else the default of DEFAULT_MIN_TRACKING_SCORES for its kind of score
    (`landmarker.model.confidence`, which nnlite reads from the config)."""
    score = getattr(landmarker, "min_score", None)
    if score is None:
        config = getattr(getattr(landmarker, "model", None), "config", None)
        tracking = config.get("tracking") if isinstance(config, dict) else None
        score = tracking.get("min_score") if isinstance(tracking, dict) else None
    if score is not None:
        return float(score)
    kind = getattr(getattr(landmarker, "model", None), "confidence", "sigmoid_peak")
    return DEFAULT_MIN_TRACKING_SCORES.get(kind, DEFAULT_MIN_TRACKING_SCORES["sigmoid_peak"])


@dataclass(frozen=True)
class StageTimes:
    """Wall time one `Tracker.process` call spent in each stage, in seconds."""
    detect: float = 0.0      # the face detector (0 on frames where it did not run)
    landmarks: float = 0.0   # the landmark model, tracked faces and new detections


@dataclass
class _Track:
    track_id: int
    points: np.ndarray          # raw (unsmoothed) landmarks of the last frame, float32 (68, 2)
    score: float
    smoother: OneEuroFilter | None
    crop: CropBox | None = None  # the crop the last landmarks came from (tracking frames)

    def box(self) -> Box:
        return Box(*landmark_box(self.points), self.score)


def _found_again(new: Box, lost: Box) -> bool:
    """A new face where a track was lost one frame before: landmark-box centres at most the
    lost box's longer side apart (a fast pan moves a face by most of its width in a frame)
    and box sides within 2x of each other."""
    size_new, size_lost = max(new.width, new.height), max(lost.width, lost.height)
    if not (0.5 * size_lost <= size_new <= 2.0 * size_lost):
        return False
    dx = (new.x0 + new.x1 - lost.x0 - lost.x1) / 2
    dy = (new.y0 + new.y1 - lost.y0 - lost.y1) / 2
    return math.hypot(dx, dy) <= size_lost


def _in_frame(points: np.ndarray, shape) -> bool:
    """Landmark box overlaps the frame and is at most MAX_FACE_SIZE frame sides long."""
    x0, y0, x1, y1 = landmark_box(points)
    h, w = shape[:2]
    return (x1 >= 0 and y1 >= 0 and x0 <= w - 1 and y0 <= h - 1
            and max(x1 - x0, y1 - y0) <= MAX_FACE_SIZE * max(w, h))


class Tracker:
    """Landmarks of up to `max_faces` faces per frame, tracked over a video.

    Args:
        landmarker: the landmark model (see the module docstring for its interface).
        detector: a face detector returning 68-landmark boxes.
        max_faces: most faces tracked at once.
        static_image_mode: treat every frame as an unrelated image.
        min_detection_score: detections below this are ignored.
        min_tracking_score: landmark results below this drop the track (or
            reject a new detection). None: the landmark model's own value
            (`landmarker.min_score`, else its weights config
            "tracking": {"min_score": ...}), else the default for its kind of
            score (DEFAULT_MIN_TRACKING_SCORES).
        smoothing: run the One Euro filter on each track's landmarks.
        redetect_interval: frames between detector runs while some faces are
            tracked and fewer than max_faces (every frame when none is).
        overlap_iou: a detection overlapping a track by more than this (IoU of
            landmark boxes) is the same face; two tracks that overlap this much
            are merged (the older one is kept).
        smoothing_params: One Euro parameters.
        crop_deadband: a track keeps its previous crop while the crop from
            its latest landmarks differs from it by at most this fraction of
            the crop side (centre shift and size change) and at most
            CROP_DEADBAND_ROLL in roll; a still face then gives the model the
            same crop every frame instead of one that moves with the
            landmarks' own noise, which the model would feed back as jitter.
            0: a new crop every frame.
        fps: frame rate assumed when `process` is called without a timestamp.
        threads: most CPU threads per frame: caps Numba's parallel kernels in
            the landmark model and, when given, sets OpenCV's thread count
            (`cv2.setNumThreads`, process-wide). None: the landmarker's own cap
            (its ``threads``, e.g. `Landmarker(threads=...)`), else one core fewer
            than available (1 to 4); OpenCV unchanged.

    `Tracker.from_weights(...)` builds the landmark model and detector too, and on the
    Numba backend starts `preparation` (`tracker.startup`): a thread that loads (or
    compiles) the kernels right away, while the caller opens its source; `process`,
    `warmup` and `reset` wait for its models' part. On an empty Numba cache it also starts
    `precompile_helper`, a process that compiles the landmark model's heads and the
    makeup kernels on another core meanwhile (see `tracker.precompile`). `warmup()` runs
    the models once at start-up, so the first frame pays nothing for them.

    After each `process` call, `last_times` (a `StageTimes`) holds the time
    that frame spent in the detector and in the landmark model.

    Raises:
        ValueError: on out-of-range arguments.
    """

    def __init__(self, landmarker, detector: Detector, max_faces: int = 1,
                 static_image_mode: bool = False, min_detection_score: float = 0.5,
                 min_tracking_score: float | None = None, smoothing: bool = True,
                 redetect_interval: int = 10, overlap_iou: float = 0.3,
                 smoothing_params: SmoothingParams = SmoothingParams(), fps: float = 30.0,
                 threads: int | None = None, crop_deadband: float = CROP_DEADBAND):
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        if redetect_interval < 1:
            raise ValueError(f"redetect_interval must be >= 1, got {redetect_interval}")
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        if not 0 <= crop_deadband < 0.5:
            raise ValueError(f"crop_deadband must be in [0, 0.5), got {crop_deadband}")
        if not hasattr(landmarker, "run") or not hasattr(landmarker, "crop_scale"):
            raise ValueError("landmarker needs a crop_scale attribute and a run(frame, crops) method")
        self.landmarker = landmarker
        self.detector = detector
        self.max_faces = int(max_faces)
        self.static_image_mode = bool(static_image_mode)
        self.min_detection_score = float(min_detection_score)
        self.min_tracking_score = float(default_min_tracking_score(landmarker)
                                        if min_tracking_score is None else min_tracking_score)
        self.crop_deadband = float(crop_deadband)
        self.smoothing = bool(smoothing)
        self.redetect_interval = int(redetect_interval)
        self.overlap_iou = float(overlap_iou)
        self.smoothing_params = smoothing_params
        self.fps = float(fps)
        # A landmarker built for N threads keeps them: the tracker's cap would hold it lower.
        self.threads = resolve_threads(getattr(landmarker, "threads", None) if threads is None else threads)
        if threads is not None:
            cv2.setNumThreads(threads)
        self._next_id = 1
        self.last_times = StageTimes()
        # The process compiling kernels into an empty Numba cache (from_weights), or None.
        self.precompile_helper = None
        # The background thread loading the kernels (from_weights, `tracker.startup`), or None.
        self.preparation = None
        self._models_ready = True
        self._detect_s = self._landmarks_s = 0.0
        self.reset()

    @classmethod
    def from_weights(cls, weights=None, detector: str | Detector | None = None, backend: str | None = None,
                     threads: int | None = None, prepare: str | None = "all", **options) -> "Tracker":
        """A Tracker with its landmark model and detector built from files.

        Args:
            weights: landmark model (.h5; default: the shipped weights/demo.h5).
            detector: a name in `tracker.detection.DETECTORS`, a detector object, or None
                for `tracker.detection.DEFAULT_DETECTOR`.
            backend: "numba", "numpy" or None (Numba when it can be imported).
            threads: thread cap for the model, the tracker and OpenCV (see the class).
            prepare: on the Numba backend, load (or compile) the kernels on a background
                thread right away (`tracker.startup`): "all" (detector, landmark model and
                the default look's makeup), "models" (no makeup) or None (on first use).
            **options: any other `Tracker` argument (max_faces, static_image_mode, ...).

        Raises:
            tracker.errors.InputError: missing or unreadable weights, unknown
                detector or backend (the message names the input).
        """
        from tracker.detection import DEFAULT_DETECTOR, build_detector
        from tracker.landmarks import DEFAULT_WEIGHTS, check_backend, load_landmarker

        if detector is None:
            detector = DEFAULT_DETECTOR
        backend = check_backend(backend)
        if isinstance(detector, str):
            detector = build_detector(detector, backend)  # on the landmark model's backend
        weights = DEFAULT_WEIGHTS if weights is None else weights
        landmarker = load_landmarker(weights, backend=backend, threads=threads)
        if prepare not in ("all", "models", None):
            raise ValueError(f"prepare must be 'all', 'models' or None, got {prepare!r}")
        from tracker.precompile import runs_numba, start_if_first_run

        tracker = cls(landmarker, detector, threads=threads, **options)
        # An empty Numba cache: the first frame would compile for seconds on one core. A
        # helper process compiles the landmark model's heads and the makeup kernels on
        # the other core meanwhile.
        tracker.precompile_helper = start_if_first_run(landmarker, weights)
        if prepare is not None and runs_numba(landmarker):
            tracker._start_preparation(makeup=prepare == "all")
        return tracker

    def _start_preparation(self, makeup: bool) -> None:
        """Load (or compile) the kernels on a background thread (see `tracker.startup`)."""
        from tracker.startup import (Preparation, after_process, holding_compiler_lock,
                                     start_compiler_init_step)

        later = []
        if makeup:
            from tracker.precompile import compile_makeup, compile_makeup_tail

            helper = self.precompile_helper
            # On a first run the helper renders the default look from its first kernel on;
            # this thread compiles the render's last kernels meanwhile, holding the compiler
            # lock so that a render in another thread does not compile them a third time.
            tail = [holding_compiler_lock(compile_makeup_tail)] if helper is not None else []
            later = tail + [after_process(helper), compile_makeup]
        self._models_ready = False
        self.preparation = Preparation([start_compiler_init_step, self._warm_models], later)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the background preparation of the models' kernels
        (`from_weights(prepare=...)`), if any; -> True when they are ready. The tracker's
        methods wait by themselves; ``self.preparation.finish()`` also waits for the makeup's."""
        if not self._models_ready:
            prep = self.preparation
            self._models_ready = prep is None or prep.wait(timeout)
        return self._models_ready

    def warmup(self) -> float:
        """Run the detector and the landmark model once on a blank frame, after the background
        preparation (if any) has finished, makeup included; -> seconds taken.

        The first call of each Numba kernel compiles it (or loads it from the
        cache), which would otherwise land on the first real frame; servers call
        this once at start-up. Tracks and ids are not touched.
        """
        start = time.perf_counter()
        if self.preparation is not None:  # all of it: a server's first request renders too
            self.preparation.finish()
        self.wait_ready()
        self._warm_models()
        return time.perf_counter() - start

    def _warm_models(self) -> None:
        frame = np.zeros((240, 320, 3), np.uint8)
        # The detector's own warmup() when it has one: a BackgroundDetector would only
        # queue a frame, its warmup runs the wrapped detector here and now.
        detection.warmup(self.detector)
        crop = box_to_crop((100.0, 60.0, 220.0, 180.0), self.landmarker.crop_scale)
        with thread_limit(self.threads):
            self.landmarker.run(frame, [crop])

    def reset(self) -> None:
        """Drop every track (the next frame starts with detection). Ids keep increasing."""
        self.wait_ready()
        self._tracks: list[_Track] = []
        self._lost: list[_Track] = []  # tracks lost in the current frame (their last landmarks)
        self._frame_index = 0
        self._since_detection = 0
        if callable(getattr(self.detector, "discard", None)):
            self.detector.discard()  # a background detection of the old frames

    def close(self) -> None:
        self.reset()

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def process(self, frame_bgr: np.ndarray, timestamp: float | None = None) -> list[Face]:
        """Faces in one frame, ordered by track id; [] when there is none.

        frame_bgr : uint8 (H, W, 3) BGR; timestamp : seconds (default frame index / fps),
        used by the smoothing filter.
        """
        if not (isinstance(frame_bgr, np.ndarray) and frame_bgr.dtype == np.uint8
                and frame_bgr.ndim == 3 and frame_bgr.shape[2] == 3):
            raise ValueError("expected a uint8 (H, W, 3) BGR frame, got "
                             f"{getattr(frame_bgr, 'dtype', type(frame_bgr))} {getattr(frame_bgr, 'shape', '')}")
        if not self._models_ready:
            self.wait_ready()
        t = self._frame_index / self.fps if timestamp is None else float(timestamp)
        self._frame_index += 1
        self._since_detection += 1
        if self.static_image_mode:
            self._tracks = []
        self._detect_s = self._landmarks_s = 0.0
        self._follow(frame_bgr)
        if len(self._tracks) < self.max_faces:
            if (self.static_image_mode or not self._tracks
                    or self._since_detection >= self.redetect_interval):
                self._detect(frame_bgr)
            elif callable(getattr(self.detector, "poll", None)):
                # A background detector's result lands between due detections: take it
                # while it is fresh instead of at the next due frame.
                self._start_tracks(frame_bgr, self.detector.poll())
        self.last_times = StageTimes(self._detect_s, self._landmarks_s)
        return [self._face(track, t) for track in sorted(self._tracks, key=lambda tr: tr.track_id)]

    # -- steps -----------------------------------------------------------------------------

    def _predict(self, frame_bgr: np.ndarray, crops: list) -> list[tuple[np.ndarray, float]]:
        if not crops:
            return []
        start = time.perf_counter()
        with thread_limit(self.threads):
            results = self.landmarker.run(frame_bgr, crops)
        self._landmarks_s += time.perf_counter() - start
        if len(results) != len(crops):
            raise RuntimeError(f"landmarker returned {len(results)} results for {len(crops)} crops")
        out = []
        for result in results:
            points, score = np.asarray(result.points, dtype=np.float32), result.score
            if points.ndim != 2 or points.shape[1] != 2:
                raise RuntimeError(f"landmarker returned points of shape {points.shape}, expected (N, 2)")
            if not np.isfinite(points).all():
                score = 0.0
            out.append((points, float(score)))
        return out

    def _follow(self, frame_bgr: np.ndarray) -> None:
        """Landmark every track from its previous landmarks; drop the lost and the duplicates."""
        scale = self.landmarker.crop_scale
        crops = [self._tracking_crop(track, scale) for track in self._tracks]
        kept: list[_Track] = []
        self._lost = []
        for track, (points, score) in zip(self._tracks, self._predict(frame_bgr, crops)):
            if score < self.min_tracking_score:
                log.debug("track %d lost (score %.2f)", track.track_id, score)
                self._lost.append(track)
                continue
            if not _in_frame(points, frame_bgr.shape):
                log.debug("track %d lost (landmarks left the frame or grew past it)", track.track_id)
                self._lost.append(track)
                continue
            track.points, track.score = points, score
            if any(track.box().iou(other.box()) > self.overlap_iou for other in kept):
                log.debug("track %d merged into an older track", track.track_id)
                continue
            kept.append(track)
        self._tracks = kept

    def _tracking_crop(self, track: _Track, scale: float) -> CropBox:
        """The crop from the track's landmarks, or its previous crop while within the deadband."""
        new = landmarks_to_crop(track.points, scale)
        old = track.crop
        if (old is not None and self.crop_deadband > 0
                and math.hypot(new.cx - old.cx, new.cy - old.cy) <= self.crop_deadband * old.side
                and abs(math.log(new.side / old.side)) <= self.crop_deadband
                and abs(math.remainder(new.angle - old.angle, 2 * math.pi)) <= CROP_DEADBAND_ROLL):
            new = old
        track.crop = new
        return new

    def _detect(self, frame_bgr: np.ndarray) -> None:
        """Run the detector and start tracks for new faces."""
        self._since_detection = 0
        start = time.perf_counter()
        found = self.detector.detect(frame_bgr)
        self._detect_s += time.perf_counter() - start
        self._start_tracks(frame_bgr, found)

    def _start_tracks(self, frame_bgr: np.ndarray, found: list[Box]) -> None:
        """Landmark the detections that are not tracked yet; those the model accepts start tracks."""
        if not found:
            return
        boxes = sorted((b for b in found if b.score >= self.min_detection_score), key=lambda b: -b.score)
        taken = [track.box() for track in self._tracks]
        fresh: list[Box] = []
        for box in boxes:
            if len(self._tracks) + len(fresh) >= self.max_faces:
                break
            if all(box.iou(other) <= self.overlap_iou for other in taken + fresh):
                fresh.append(box)
        scale = self.landmarker.crop_scale
        crops = [box_to_crop(box.as_tuple(), scale) for box in fresh]
        for points, score in self._predict(frame_bgr, crops):
            if score < self.min_tracking_score:
                continue
            track = _Track(self._next_id, points, score, None)
            if any(track.box().iou(other) > self.overlap_iou for other in taken):
                continue
            if self.smoothing and not self.static_image_mode:
                track.smoother = OneEuroFilter.from_params(self.smoothing_params)
            lost = next((old for old in self._lost if _found_again(track.box(), old.box())), None)
            if lost is not None:  # the face whose track was lost in this frame: same id
                log.debug("track %d found again by the detector", lost.track_id)
                self._lost.remove(lost)
                track.track_id = lost.track_id
            else:
                self._next_id += 1
            self._tracks.append(track)
            taken.append(track.box())

    def _face(self, track: _Track, t: float) -> Face:
        points = track.points if track.smoother is None else track.smoother(track.points, t)
        points = np.array(points, dtype=np.float32)
        points.setflags(write=False)
        return Face(Box(*landmark_box(points), track.score), points, track.score, track.track_id)
