"""BlazeDetector (our single-shot detector run by nnlite) with the random-weight fixture:
API, letterbox geometry, errors. Detection quality is measured by tools/detector/export.py."""
from pathlib import Path

import numpy as np
import pytest

from tracker.detection import DETECTORS, Detector
from tracker.detection.blaze import BlazeDetector, boxes_to_frame, boxes_to_input, letterbox
from tracker.errors import InputError
from tracker.types import Box

FIX = Path(__file__).parent / "fixtures"
WEIGHTS = FIX / "detector_small.h5"


@pytest.fixture(scope="module")
def detector():
    return BlazeDetector(WEIGHTS)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)


def test_registry():
    assert DETECTORS["blaze"] is BlazeDetector
    assert "cascade" in DETECTORS


def test_missing_weights_names_the_file(tmp_path):
    missing = tmp_path / "no_detector.h5"
    with pytest.raises(InputError, match="no_detector.h5"):
        BlazeDetector(missing)


def test_wrong_model_names_the_file():
    with pytest.raises(InputError, match=r"model_small\.h5.*single_shot_detector"):
        BlazeDetector(FIX / "model_small.h5")


def test_detect_api(detector, frame):
    assert isinstance(detector, Detector)
    boxes = detector.detect(frame)
    assert boxes and all(isinstance(b, Box) for b in boxes)
    scores = [b.score for b in boxes]
    assert scores == sorted(scores, reverse=True)
    assert all(detector.min_score <= s <= 1 for s in scores)
    assert all(b.x1 > b.x0 and b.y1 > b.y0 for b in boxes)
    assert detector.detect(np.zeros((50, 60, 3), np.uint8)) is not None


def test_detect_is_model_output_mapped_back(detector, frame):
    x, scale = detector.prepare(frame)
    assert x.shape == (1, 64, 64, 3) and x.dtype == np.float32
    boxes, scores = detector.model.detect(x, detector.min_score)[0]
    want = boxes_to_frame(boxes, scale)
    got = detector.detect(frame)
    np.testing.assert_allclose([b.as_tuple() for b in got], want, atol=1e-4)
    np.testing.assert_allclose([b.score for b in got], scores, atol=1e-6)


def test_min_score(frame):
    strict = BlazeDetector(WEIGHTS, min_score=0.8, backend="numpy")
    assert all(b.score >= 0.8 for b in strict.detect(frame))
    assert len(strict.detect(frame)) <= len(BlazeDetector(WEIGHTS, min_score=0.3).detect(frame))


def test_rejects_non_bgr(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((40, 40), np.uint8))


@pytest.mark.parametrize("shape", [(120, 200), (200, 120), (40, 30), (64, 64)])
def test_letterbox_shape_and_padding(shape):
    img = np.full(shape + (3,), 200, np.uint8)
    canvas, (sx, sy) = letterbox(img, 64, 128)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.uint8
    nw, nh = round(shape[1] * sx), round(shape[0] * sy)
    assert max(nw, nh) == 64
    assert np.all(canvas[:nh, :nw] == 200)
    assert np.all(canvas[nh:] == 128) and np.all(canvas[:, nw:] == 128)


def test_letterbox_maps_points_like_boxes_to_input():
    # A bright square in the frame lands where boxes_to_input says (pixel-centre convention).
    img = np.zeros((200, 300, 3), np.uint8)
    img[60:100, 100:140] = 255
    canvas, scale = letterbox(img, 150, 0)
    w = canvas[..., 0].astype(np.float64)
    ys, xs = np.mgrid[:150, :150]
    centroid = [(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()]
    corners = boxes_to_input(np.array([[119.5, 79.5, 119.5, 79.5]]), scale)[0]
    np.testing.assert_allclose(centroid, corners[:2], atol=0.05)


def test_letterbox_round_trip():
    rng = np.random.default_rng(1)
    boxes = rng.uniform(0, 300, (10, 4))
    for scale in [(0.25, 0.2503), (1.6, 1.6), (64 / 200, 39 / 120)]:
        np.testing.assert_allclose(boxes_to_frame(boxes_to_input(boxes, scale), scale), boxes, atol=1e-9)


@pytest.mark.parametrize("background", [False, True])
def test_tracker_warmup_with_blaze(background):
    """Tracker.warmup() calls the detector's own warmup(), also through a BackgroundDetector."""
    from tests.fakes import TemplateLandmarker
    from tracker.detection import BackgroundDetector
    from tracker.tracking import Tracker

    det = BlazeDetector(WEIGHTS)
    det = BackgroundDetector(det) if background else det
    try:
        assert Tracker(TemplateLandmarker(), det).warmup() >= 0
    finally:
        if background:
            det.close()


def test_shipped_detector_finds_the_sample_face():
    """weights/detector.h5 (the default detector) finds the one face of the sample clip's first
    frame where tools/fixtures/make_sample_clip.py put it: landmark box centred at (320, 236), ~128 px."""
    from tracker.sources import open_file
    from tracker.video import SAMPLE

    with open_file(SAMPLE) as reader:
        frame = next(iter(reader))
    boxes = [b for b in BlazeDetector().detect(frame) if b.score >= 0.5]
    assert len(boxes) == 1
    b = boxes[0]
    assert abs((b.x0 + b.x1) / 2 - 320) < 12 and abs((b.y0 + b.y1) / 2 - 236) < 12
    assert 0.8 * 128 < b.width < 1.25 * 128 and 0.8 * 128 < b.height < 1.25 * 128


def test_run_size_from_config_and_argument(tmp_path, frame):
    """input.run_size in the file sets the letterbox side; input_size= overrides it; the
    anchors are laid out for the side the detector runs at."""
    import json
    import shutil

    import h5py

    from nnlite.detector import make_anchors, run_size

    path = tmp_path / "run96.h5"
    shutil.copy(WEIGHTS, path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        assert run_size(config) == config["input"]["size"] == 64
        config["input"]["run_size"] = 96
        f.attrs["config"] = json.dumps(config)
    det = BlazeDetector(path)
    assert det.size == 96 and det.model.input_size == 96
    assert len(det.model.anchors) == len(make_anchors(config, 96)) > len(make_anchors(config))
    x, _ = det.prepare(frame)
    assert x.shape == (1, 96, 96, 3)
    assert all(isinstance(b, Box) for b in det.detect(frame))
    assert BlazeDetector(path, input_size=80).size == 80
