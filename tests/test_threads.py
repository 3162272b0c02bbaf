"""Thread caps (threads= on the model, Landmarker and Tracker) and the start-up warm-up."""
from pathlib import Path

import cv2
import numba
import numpy as np
import pytest

from nnlite.jit import DEFAULT_MAX_THREADS, available_cores, default_threads, resolve_threads, thread_limit
from nnlite.model import TwoStageModel
from tests.fakes import BlobDetector, TemplateLandmarker
from tracker.geometry import CropBox
from tracker.landmarks import Landmarker
from tracker.tracking import Tracker

FIX = Path(__file__).resolve().parent / "fixtures"
MODEL = FIX / "model_small.h5"


@pytest.fixture(autouse=True)
def restore_opencv_threads():
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


def _record_threads(model):
    """Wrap every op of a model so each call records Numba's thread count in force."""
    seen = []
    for name in ("conv2d", "pointwise_conv2d", "inverted_residual", "roi_align", "soft_argmax",
                 "heatmap_peak", "softmax_peak"):
        fn = getattr(model.ops, name)

        def wrapped(*args, _fn=fn, **kwargs):
            seen.append(numba.get_num_threads())
            return _fn(*args, **kwargs)
        setattr(model.ops, name, wrapped)
    return seen


def test_resolve_threads():
    assert resolve_threads(None) == default_threads() == max(1, min(DEFAULT_MAX_THREADS, available_cores() - 1))
    assert resolve_threads(3) == 3
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ValueError, match="threads"):
            resolve_threads(bad)


def test_thread_limit_caps_nests_and_restores():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs a Numba pool of at least 2 threads")
    before = numba.get_num_threads()
    with thread_limit(1):
        assert numba.get_num_threads() == 1
        with thread_limit(8):  # a cap never raises an outer one
            assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with thread_limit(10_000):  # clamped to the pool
        assert numba.get_num_threads() <= numba.config.NUMBA_NUM_THREADS
    with thread_limit(None):
        assert numba.get_num_threads() == before


def test_landmarker_threads_cap_numba_and_opencv():
    lm = Landmarker(MODEL, backend="numba", threads=1)
    assert lm.threads == 1 and cv2.getNumThreads() == 1
    seen = _record_threads(lm.model)
    before = numba.get_num_threads()
    lm.run(np.full((100, 120, 3), 90, np.uint8), [CropBox(60.0, 50.0, 50.0)])
    assert seen and set(seen) == {1}
    assert numba.get_num_threads() == before  # restored for the caller


def test_default_threads_leave_opencv_alone():
    cv2.setNumThreads(3)
    lm = Landmarker(MODEL)
    assert lm.threads == resolve_threads(None) and cv2.getNumThreads() == 3


class _RecordingLandmarker(TemplateLandmarker):
    def __init__(self):
        self.seen = []

    def run(self, frame_bgr, crops):
        self.seen.append(numba.get_num_threads())
        return super().run(frame_bgr, crops)


def test_tracker_threads_cap_the_landmark_model():
    lm = _RecordingLandmarker()
    frame = np.zeros((240, 320, 3), np.uint8)
    cv2.rectangle(frame, (120, 80), (200, 170), (255, 255, 255), -1)
    with Tracker(lm, BlobDetector(), threads=1) as tracker:
        assert cv2.getNumThreads() == 1
        tracker.process(frame)
        tracker.process(frame)
    assert len(lm.seen) >= 2 and set(lm.seen) == {1}


def test_tracker_keeps_the_landmarkers_thread_cap():
    """Without threads= the tracker takes the landmarker's cap (a Landmarker(threads=2) under a
    tracker capped at its default of one thread on 2 cores ran at one thread, silently)."""
    class TwoThreads(TemplateLandmarker):
        threads = 2
    assert Tracker(TwoThreads(), BlobDetector()).threads == 2
    assert Tracker(TwoThreads(), BlobDetector(), threads=1).threads == 1
    assert Tracker(TemplateLandmarker(), BlobDetector()).threads == default_threads()


def test_tracker_rejects_bad_threads():
    with pytest.raises(ValueError, match="threads"):
        Tracker(TemplateLandmarker(), BlobDetector(), threads=0)


def test_model_threads_argument():
    model = TwoStageModel.load(MODEL, threads=1)
    seen = _record_threads(model)
    model.forward(np.zeros((2, 64, 64, 3), np.float32))
    assert set(seen) == {1}


def test_tracker_warmup_runs_both_stages_and_keeps_state():
    lm, det = _RecordingLandmarker(), BlobDetector()
    tracker = Tracker(lm, det)
    seconds = tracker.warmup()
    assert isinstance(seconds, float) and seconds >= 0
    assert det.calls == 1 and len(lm.seen) == 1
    assert tracker.process(np.zeros((240, 320, 3), np.uint8)) == []  # no track left behind


def test_tracker_from_weights_and_landmarker_warmup():
    tracker = Tracker.from_weights(MODEL, detector=BlobDetector(), backend="numpy", threads=1,
                                   max_faces=2)
    assert tracker.max_faces == 2 and tracker.threads == 1
    assert tracker.landmarker.model.ops.name == "numpy" and tracker.landmarker.threads == 1
    tracker.landmarker.warmup()
    tracker.warmup()


def test_tracker_from_weights_errors_name_the_input(tmp_path):
    from tracker.errors import InputError

    with pytest.raises(InputError, match="nope.h5"):
        Tracker.from_weights(tmp_path / "nope.h5")
    with pytest.raises(InputError, match="'nosuch'"):
        Tracker.from_weights(MODEL, detector="nosuch")
    with pytest.raises(InputError, match="'tpu'"):
        Tracker.from_weights(MODEL, backend="tpu")
