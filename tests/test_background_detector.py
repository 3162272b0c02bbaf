"""BackgroundDetector: detections run on a worker thread and come out of later calls, once each."""
import threading
import time

import numpy as np
import pytest

from tracker.detection import BackgroundDetector, Detector
from tracker.types import Box


class SlowDetector:
    """Returns one box whose x0 is the frame's first pixel value; blocks until released."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        self.started.set()
        assert self.release.wait(5.0)
        return [Box(float(image[0, 0, 0]), 0.0, 10.0, 10.0, 0.9)]


class FailingDetector:
    def detect(self, image):
        raise ValueError("broken detector")


def frame(value):
    return np.full((4, 6, 3), value, np.uint8)


def test_results_come_later_and_once():
    slow = SlowDetector()
    with BackgroundDetector(slow) as det:
        assert isinstance(det, Detector)
        assert det.detect(frame(1)) == []          # starts a detection on frame 1
        assert slow.started.wait(5.0) and det.busy
        assert det.detect(frame(2)) == []          # busy: frame 2 is not queued
        slow.release.set()
        assert det.wait(5.0) and not det.busy
        boxes = det.detect(frame(3))               # frame 1's result; starts frame 3
        assert [b.x0 for b in boxes] == [1.0]
        assert det.wait(5.0)
        assert [b.x0 for b in det.poll()] == [3.0]  # poll collects and starts nothing
        assert det.poll() == [] and not det.busy
    assert slow.calls == 2                         # frames 1 and 3; never 2


def test_old_and_discarded_results_are_dropped():
    slow = SlowDetector()
    slow.release.set()
    with BackgroundDetector(slow, max_age=0.05) as det:
        det.detect(frame(1))
        assert det.wait(5.0)
        time.sleep(0.1)
        assert det.poll() == []                    # its frame is older than max_age
        det.max_age = 10.0
        det.detect(frame(2))
        assert det.wait(5.0)
        det.discard()
        assert det.poll() == []


def test_empty_result_starts_the_next_detection_at_once():
    class Nothing:
        calls = 0

        def detect(self, image):
            self.calls += 1
            return []

    with BackgroundDetector(Nothing()) as det:
        det.detect(frame(1))
        assert det.wait(5.0)
        assert det.detect(frame(2)) == [] and det.wait(5.0)   # frame 1 found nothing: frame 2 starts
        assert det.detector.calls == 2


def test_frame_is_copied():
    slow = SlowDetector()
    with BackgroundDetector(slow) as det:
        image = frame(7)
        det.detect(image)
        image[:] = 9                               # the caller reuses its buffer at once
        slow.release.set()
        det.wait(5.0)
        assert [b.x0 for b in det.detect(frame(0))] == [7.0]
        det.wait(5.0)


def test_errors_reach_the_caller():
    with BackgroundDetector(FailingDetector()) as det:
        det.detect(frame(1))
        assert det.wait(5.0)
        with pytest.raises(ValueError, match="broken detector"):
            det.detect(frame(2))
        assert det.detect(frame(3)) == []          # the error is raised once; detection goes on


def test_warmup_runs_in_the_calling_thread():
    slow = SlowDetector()
    slow.release.set()
    with BackgroundDetector(slow) as det:
        det.warmup()                               # no warmup() of its own: one detection
        assert slow.calls == 1 and not det.busy


def test_warmup_uses_the_detectors_own():
    class Warm(FailingDetector):
        warmed = False

        def warmup(self):
            self.warmed = True

    with BackgroundDetector(Warm()) as det:
        det.warmup()
        assert det.detector.warmed and not det.busy


def test_closed_detector_refuses():
    det = BackgroundDetector(FailingDetector())
    det.close()
    det.close()
    with pytest.raises(RuntimeError, match="closed"):
        det.detect(frame(1))


def test_tracker_picks_up_background_detections():
    """A Tracker with a background detector starts tracking once a detection lands, and the
    frames before that return at once with no faces; reset() drops a leftover result."""
    from tests.fakes import BlobDetector, SceneLandmarker, draw_scene, face_points
    from tracker.tracking import Tracker

    truth = [face_points(160, 120, 80)]
    scene = draw_scene(truth)
    landmarker = SceneLandmarker()
    landmarker.truth = truth
    with BackgroundDetector(BlobDetector()) as det:
        tracker = Tracker(landmarker, det)
        assert tracker.process(scene) == []        # detection handed to the worker
        assert det.wait(5.0)
        faces = tracker.process(scene)             # its result starts the track
        assert len(faces) == 1 and faces[0].track_id == 1
        assert len(tracker.process(scene)) == 1    # tracked from now on
        assert det.wait(5.0)
        tracker.reset()
        assert det.poll() == []                    # the extra detection's result is gone


def test_tracker_polls_for_a_second_face_between_due_detections():
    """max_faces 2, one face tracked: a second face that appears is taken from the first
    background result after the next due detection, not one redetect interval later."""
    from tests.fakes import BlobDetector, SceneLandmarker, draw_scene, face_points
    from tracker.tracking import Tracker

    first, second = face_points(80, 120, 60), face_points(240, 120, 60)
    landmarker = SceneLandmarker()
    with BackgroundDetector(BlobDetector()) as det:
        tracker = Tracker(landmarker, det, max_faces=2, redetect_interval=10)
        found_at = None
        for i in range(40):
            landmarker.truth = [first] if i < 12 else [first, second]
            faces = tracker.process(draw_scene(landmarker.truth))
            det.wait(5.0)                          # an instant detector, as seen by the loop
            if len(faces) == 2:
                found_at = i
                break
    # Due detections at frames 0/1 and then every 10 frames; the one handed frame >= 12 is
    # polled on the very next frame.
    assert found_at is not None and found_at <= 23
