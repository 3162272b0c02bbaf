"""nnlite's single-shot detector vs outputs stored from PyTorch (tools/fixtures/make_detector_fixtures.py),
plus its anchors, box decoding and NMS."""
from pathlib import Path

import numpy as np
import pytest

from nnlite.detector import (SingleShotDetector, box_iou, count_params, decode_boxes,
                             make_anchors, nms, sigmoid)
from nnlite.weights import WeightsError, load

FIX = Path(__file__).parent / "fixtures"
WEIGHTS = FIX / "detector_small.h5"


@pytest.fixture(scope="module")
def stored():
    return np.load(FIX / "detector_small.npz")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_matches_pytorch(stored, backend):
    model = SingleShotDetector.load(WEIGHTS, backend=backend)
    out = model.forward(stored["x"])
    np.testing.assert_allclose(out.logits, stored["logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.deltas, stored["deltas"], atol=1e-4, rtol=0)
    # Boxes are in input pixels (tens): 1e-4 px.
    np.testing.assert_allclose(out.boxes, stored["boxes"], atol=1e-4, rtol=0)
    assert out.logits.dtype == out.boxes.dtype == np.float32


def test_batch_items_independent(stored):
    model = SingleShotDetector.load(WEIGHTS)
    one = model.forward(stored["x"][1:2])
    np.testing.assert_allclose(one.boxes[0], stored["boxes"][1], atol=1e-4, rtol=0)


def test_rejects_bad_input(stored):
    model = SingleShotDetector.load(WEIGHTS)
    with pytest.raises(ValueError, match="float32"):
        model.forward(stored["x"].astype(np.float64))
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        model.forward(stored["x"][:, :32])


def test_rejects_wrong_model_type():
    config, arrays, _ = load(WEIGHTS)
    with pytest.raises(WeightsError, match="single_shot_detector"):
        SingleShotDetector({**config, "type": "two_stage"}, arrays, "x.h5")
    bad_heads = [{**h, "anchors": h["anchors"][:-1]} for h in config["heads"]]
    with pytest.raises(WeightsError, match="heads.0.cls"):
        SingleShotDetector({**config, "heads": bad_heads}, arrays, "x.h5")


def test_param_count_matches_file():
    config, arrays, _ = load(WEIGHTS)
    assert count_params(config) == sum(a.size for a in arrays.values())


def test_anchors_order_and_centres():
    config, _, _ = load(WEIGHTS)
    anchors = make_anchors(config)
    size = config["input"]["size"]
    heads = config["heads"]
    counts = [(-(-size // h["stride"])) ** 2 * len(h["anchors"]) for h in heads]
    assert anchors.shape == (sum(counts), 4)
    h0 = heads[0]
    n = len(h0["anchors"])
    s = h0["stride"]
    # Row-major over the map, anchor sizes innermost; pixel k centred at (k + 0.5) * s - 0.5.
    np.testing.assert_allclose(anchors[:n, :2], [[0.5 * s - 0.5, 0.5 * s - 0.5]] * n)
    np.testing.assert_allclose(anchors[:n, 2], h0["anchors"], rtol=1e-6)
    np.testing.assert_allclose(anchors[n, :2], [1.5 * s - 0.5, 0.5 * s - 0.5])
    row = -(-size // s) * n
    np.testing.assert_allclose(anchors[row, :2], [0.5 * s - 0.5, 1.5 * s - 0.5])


def test_decode_boxes():
    anchors = np.array([[10, 20, 8, 8], [50, 50, 16, 16]], np.float32)
    deltas = np.array([[0, 0, 0, 0], [1, -2, 5, -5]], np.float32)
    boxes = decode_boxes(deltas, anchors, (0.1, 0.2), 6.0)
    np.testing.assert_allclose(boxes[0], [6, 16, 14, 24], atol=1e-5)
    cx, cy = 50 + 1 * 0.1 * 16, 50 - 2 * 0.1 * 16
    hw, hh = 8 * np.exp(1.0), 8 * np.exp(-1.0)
    np.testing.assert_allclose(boxes[1], [cx - hw, cy - hh, cx + hw, cy + hh], rtol=1e-5)
    huge = decode_boxes(np.array([[0, 0, 1e6, 0]], np.float32), anchors[:1], (0.1, 0.2), 6.0)
    assert np.all(np.isfinite(huge)) and huge[0, 2] - huge[0, 0] == pytest.approx(8 * np.exp(6.0), rel=1e-5)


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0], [0, 0]])


def test_nms_hard_and_weighted():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60], [0, 1, 10, 11]], np.float32)
    scores = np.array([0.9, 0.6, 0.8, 0.3], np.float32)
    kb, ks = nms(boxes, scores, 0.5, "hard")
    np.testing.assert_allclose(ks, [0.9, 0.8])
    np.testing.assert_allclose(kb, boxes[[0, 2]])
    wb, ws = nms(boxes, scores, 0.5, "weighted")
    np.testing.assert_allclose(ws, [0.9, 0.8])
    w = np.array([0.9, 0.6, 0.3])
    np.testing.assert_allclose(wb[0], (boxes[[0, 1, 3]] * w[:, None]).sum(0) / w.sum(), rtol=1e-6)
    np.testing.assert_allclose(wb[1], boxes[2])
    kb, ks = nms(boxes, scores, 0.5, "hard", max_out=1)
    assert len(kb) == 1
    kb, ks = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert kb.shape == (0, 4) and ks.shape == (0,)
    with pytest.raises(ValueError, match="mode"):
        nms(boxes, scores, 0.5, "soft")


def test_detect_thresholds_and_suppresses(stored):
    model = SingleShotDetector.load(WEIGHTS)
    out = model.forward(stored["x"])
    results = model.postprocess(out, threshold=0.6)
    assert len(results) == 2
    for (boxes, scores), logits in zip(results, out.logits):
        assert boxes.shape == (len(scores), 4) and np.all(scores >= 0.6)
        assert np.all(np.diff(scores) <= 0) and len(scores) <= model.max_detections
        assert scores[0] == pytest.approx(sigmoid(logits).max())
    hard = SingleShotDetector.load(WEIGHTS)
    hard.nms_mode = "hard"
    boxes, _ = hard.postprocess(out, threshold=0.6)[0]
    iou = box_iou(boxes, boxes)
    assert np.all(iou[np.triu_indices(len(boxes), 1)] <= hard.nms_iou + 1e-6)
