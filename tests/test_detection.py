"""The LBP cascade detector: finds the sample clip's face, calibration file loads and is checked."""
import json
from pathlib import Path

import numpy as np
import pytest

from tracker.detection import DETECTORS, BoxCalibration, CascadeDetector, Detector
from tracker.detection.cascade import DEFAULT_CONFIG, group_rectangles, load_config
from tracker.errors import InputError
from tracker.sources import open_file

SAMPLE = Path(__file__).resolve().parents[1] / "tracker" / "data" / "sample.mp4"
# tools/fixtures/make_sample_clip.py puts the middle of the face's landmark box at (320, 236)
# in frame 0, about 128 px across (1.5 x the photo's ~85 px face).
FACE_CENTRE, FACE_SIZE = (320.0, 236.0), 128.0


@pytest.fixture(scope="module")
def detector():
    return CascadeDetector()


def test_registry():
    assert DETECTORS["cascade"] is CascadeDetector
    assert isinstance(CascadeDetector(), Detector)


def test_finds_face_in_sample_clip(detector):
    with open_file(SAMPLE) as reader:
        frame = next(iter(reader))
    boxes = [b for b in detector.detect(frame) if b.score >= 0.5]
    assert len(boxes) == 1
    b = boxes[0]
    assert abs((b.x0 + b.x1) / 2 - FACE_CENTRE[0]) < 12 and abs((b.y0 + b.y1) / 2 - FACE_CENTRE[1]) < 12
    assert 0.8 * FACE_SIZE < b.width < 1.25 * FACE_SIZE and 0.8 * FACE_SIZE < b.height < 1.25 * FACE_SIZE


def test_blank_frame(detector):
    assert detector.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_calibration_file_loads():
    config = load_config(DEFAULT_CONFIG)
    cal = BoxCalibration(**config["calibration"])
    assert 0.5 < cal.sx < 1.2 and 0.5 < cal.sy < 1.2 and abs(cal.dx) < 0.2 and abs(cal.dy) < 0.3
    held = config["heldout"]
    assert held["images"] > 0 and 0 <= held["recall"] <= 1 and held["false_positives_per_image"] >= 0
    assert (DEFAULT_CONFIG.parent / config["cascade"]).is_file()


def test_bad_configuration(tmp_path):
    missing = tmp_path / "none.json"
    with pytest.raises(InputError, match="none.json"):
        CascadeDetector(missing)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"format": "something-else", "version": 1}))
    with pytest.raises(InputError, match="wrong.json"):
        CascadeDetector(wrong)


def test_box_calibration_fit_recovers_map():
    true = BoxCalibration(0.01, 0.15, 0.85, 0.8)
    rng = np.random.default_rng(0)
    native = rng.uniform(0, 200, (50, 2))
    native = np.concatenate([native, native + rng.uniform(30, 90, (50, 1))], axis=1)
    target = np.array([true.apply(*b) for b in native])
    fit = BoxCalibration.fit(native, target)
    for k in ("dx", "dy", "sx", "sy"):
        assert getattr(fit, k) == pytest.approx(getattr(true, k), abs=1e-9)


def test_group_rectangles():
    hits = [(100, 100, 40, 40), (102, 101, 40, 40), (99, 98, 42, 42), (300, 50, 30, 30)]
    groups, counts = group_rectangles(np.array(hits), min_neighbors=2)
    assert counts.tolist() == [3]
    np.testing.assert_allclose(groups[0], [100, 100, 41, 41], atol=1)
