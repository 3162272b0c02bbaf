"""Detector training data (tools/detector/data.py, no torch): the training crops are the
run-time letterbox, anchor targets decode back to the boxes, pasted faces get the right box."""
import numpy as np
import pytest

from nnlite.detector import box_iou, decode_boxes, make_anchors
from tools.detector import data as DD
from tools.detector.config import small_config
from tracker.detection.blaze import boxes_to_input, letterbox


@pytest.fixture(scope="module")
def cfg():
    return small_config()


def test_whole_window_is_the_runtime_letterbox():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (90, 150, 3), dtype=np.uint8)
    boxes = np.array([[10.0, 20.0, 50.0, 70.0]])
    canvas, b, visible = DD.crop_window(img, boxes, (0, 0, 150, 90), 64, 128)
    want, scale = letterbox(img, 64, 128)
    assert np.abs(canvas.astype(int) - want).max() <= 1
    assert np.all(canvas[38:] == 128)  # 90 * 64 / 150 = 38.4 rows, rounded as letterbox does
    np.testing.assert_allclose(b, boxes_to_input(boxes, scale), atol=1e-9)
    assert visible[0] == pytest.approx(1.0)


def test_window_outside_the_photo_is_padding():
    img = np.full((40, 40, 3), 200, np.uint8)
    canvas, _, visible = DD.crop_window(img, np.array([[50.0, 50, 70, 70]]), (20, 20, 40, 40), 40, 128)
    assert np.all(canvas[:19, :19] == 200) and np.all(canvas[21:, 21:] == 128)
    assert visible[0] == pytest.approx(9.5 ** 2 / 400)  # the window ends at pixel edge 59.5


def test_matcher_targets_decode_to_the_boxes(cfg):
    matcher = DD.AnchorMatcher(cfg)
    anchors = make_anchors(cfg)
    pos = np.array([[10.0, 12.0, 30.0, 33.0], [40.0, 5.0, 41.5, 6.5]], np.float32)  # one tiny
    labels, targets = matcher(pos, np.zeros((0, 4), np.float32))
    assert labels.shape == (len(anchors),) and targets.shape == (len(anchors), 4)
    p = labels == 1
    decoded = decode_boxes(targets[p], anchors[p], cfg["box"]["variance"], cfg["box"]["max_log_scale"])
    iou = box_iou(decoded, pos)
    assert np.all(iou.max(1) > 0.999)
    assert set(iou.argmax(1)) == {0, 1}  # the tiny face still gets its best anchor
    best_iou = box_iou(DD.corner_anchors(cfg), pos).max(1)
    low = best_iou < cfg["matching"]["negative_iou"]
    assert np.sum(labels[low] == 1) == 1 and np.all(labels[low] >= 0)  # only the forced match


def test_matcher_ignore_boxes(cfg):
    matcher = DD.AnchorMatcher(cfg)
    ign = np.array([[20.0, 20.0, 44.0, 44.0]], np.float32)
    labels, _ = matcher(np.zeros((0, 4), np.float32), ign)
    near = box_iou(DD.corner_anchors(cfg), ign)[:, 0] >= cfg["matching"]["negative_iou"]
    assert near.any() and np.all(labels[near] == -1) and np.all(labels[~near] == 0)


def test_paste_face_box_follows_points():
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    pts = rng.uniform(30, 70, (68, 2)).astype(np.float32)
    pts[0], pts[1] = (30, 30), (70, 70)
    canvas = np.zeros((64, 64, 3), np.uint8)
    box = DD.paste_face(canvas, face, pts, 20.0, (32.0, 32.0), 0.0)
    np.testing.assert_allclose(box, [22, 22, 42, 42], atol=1e-6)
    assert canvas[32, 32].any() and not canvas[2, 2].any()


def test_flip_boxes():
    b = np.array([[0.0, 1.0, 10.0, 5.0]])
    np.testing.assert_allclose(DD.flip_boxes(b, 64), [[53.0, 1.0, 63.0, 5.0]])


def test_score_detections():
    truth = np.array([[0.0, 0, 10, 10], [50, 50, 60, 60]])
    runs = [(np.array([[0.0, 0, 10, 10], [100, 100, 110, 110]]), np.array([0.9, 0.8]), truth),
            (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)))]
    r = DD.score_detections(runs, 0.5)
    assert r["recall"] == 0.5 and r["false_positives_per_image"] == 0.5 and r["faces"] == 2
    assert DD.score_detections(runs, 0.95)["recall"] == 0.0
