"""Synthetic tracking sequences (tools/sequences.py): the ground truth moves with the image.

No landmark model and no data folder: a flat test image carries bright markers
at known points; after rendering a frame, each marker must sit where the
sequence's ground truth puts that point.
"""
import math

import numpy as np
import pytest

from tests.fakes import BlobDetector, SceneLandmarker, draw_scene, face_points
from tests.helpers import tiny_tflite
from tools import sequences as S
from tools.common import inter_ocular, nme
from tools.peer import PeerTracker, peer_tracking_seconds
from tracker.geometry import landmark_box
from tracker.smoothing import SmoothingParams
from tracker.tracking import Tracker

MARKERS = (0, 8, 16, 30, 36, 45, 48, 54)


def marker_face(size=(240, 200)):
    """Grey image with a 3x3 white marker at a few landmarks of a synthetic face."""
    w, h = size
    points = face_points(w / 2, h / 2, 120, math.radians(5)).astype(np.float32)
    points = np.round(points)  # markers centred on pixel centres
    image = np.full((h, w, 3), 60, np.uint8)
    for k in MARKERS:
        x, y = int(points[k, 0]), int(points[k, 1])
        image[y - 1:y + 2, x - 1:x + 2] = 255
    return image, points


def marker_position(frame, near, radius=6):
    """Intensity-weighted centroid of the bright pixels within radius of `near`."""
    x, y = int(round(near[0])), int(round(near[1]))
    x0, y0 = max(x - radius, 0), max(y - radius, 0)
    patch = frame[y0:y + radius + 1, x0:x + radius + 1, 1].astype(np.float64)
    weight = np.clip(patch - 100, 0, None)
    assert weight.sum() > 0, f"no marker near {near}"
    ys, xs = np.mgrid[y0:y0 + patch.shape[0], x0:x0 + patch.shape[1]]
    return np.array([(weight * xs).sum(), (weight * ys).sum()]) / weight.sum()


@pytest.mark.parametrize("name", ["still", "moving", "leave"])
def test_markers_land_where_the_ground_truth_says(name):
    image, points = marker_face()
    seq = S.build_sequences(image, points, seed=1, noise=0.0)[name]
    checked = 0
    for i in range(0, len(seq), 7):
        if seq.visibility(i) != "full":
            continue
        frame, truth = seq.frame(i), seq.truth(i)
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
        for k in MARKERS:
            np.testing.assert_allclose(marker_position(frame, truth[k]), truth[k], atol=0.35)
        checked += 1
    assert checked >= 3


def test_poses_scale_and_roll_the_ground_truth():
    image, points = marker_face()
    seq = S.build_sequences(image, points, seed=0, noise=0.0)["moving"]
    for i in (0, 17, 45, 90):
        truth, pose = seq.truth(i), seq.poses[i]
        assert inter_ocular(truth) == pytest.approx(pose.iod, rel=1e-4)
        if abs(pose.roll) < 1e-9:  # frame 0: the landmark box is centred on the pose centre
            x0, y0, x1, y1 = landmark_box(truth)
            assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((pose.cx, pose.cy), abs=1e-3)
        d0, d1 = points[45] - points[36], truth[45] - truth[36]
        turned = math.atan2(d1[1], d1[0]) - math.atan2(d0[1], d0[0])
        assert turned == pytest.approx(pose.roll, abs=1e-4)


def test_still_frames_differ_only_by_noise():
    image, points = marker_face()
    seq = S.build_sequences(image, points, seed=2, noise=2.0)["still"]
    a, b = seq.frame(3).astype(int), seq.frame(4).astype(int)
    np.testing.assert_array_equal(seq.truth(3), seq.truth(4))
    assert 0.5 < np.abs(a - b).mean() < 5.0
    clean = S.build_sequences(image, points, seed=2, noise=0.0)["still"]
    np.testing.assert_array_equal(clean.frame(3), clean.frame(4))


def test_leave_sequence_goes_out_of_view_and_returns():
    image, points = marker_face()
    seq = S.build_sequences(image, points, seed=0, noise=0.0)["leave"]
    vis = [seq.visibility(i) for i in range(len(seq))]
    assert vis[0] == "full" and vis[-1] == "full"
    gone = [i for i, v in enumerate(vis) if v == "none"]
    assert len(gone) >= 15
    back = S.first_full_return(vis)
    assert back is not None and back > gone[-1]
    away = [i for i in gone if seq.poses[i] == seq.poses[gone[len(gone) // 2]]]
    assert len(away) >= 15
    for i in away[::5]:  # while away, nothing of the face image is in view
        np.testing.assert_array_equal(seq.frame(i), seq.background)


def test_smooth_track_matches_the_trackers_own_smoothing():
    truth = [face_points(150 + 2 * i, 120, 80) for i in range(20)]
    scenes = [[t] for t in truth[:8]] + [[]] * 3 + [[t] for t in truth[11:]]
    params = SmoothingParams(0.5, 3.0, 1.0)

    def run(smoothing):
        lm, det = SceneLandmarker(noise=1.0, seed=5), BlobDetector()
        tracker = Tracker(lm, det, smoothing=smoothing, smoothing_params=params)
        out = []
        for i, scene in enumerate(scenes):
            lm.truth = scene
            out.append(tracker.process(draw_scene(scene), i / S.FPS))
        return out

    raw, smooth = run(False), run(True)
    points = np.full((len(raw), 68, 2), np.nan, np.float32)
    ids = np.zeros(len(raw), int)
    for i, faces in enumerate(raw):
        if faces:
            points[i], ids[i] = faces[0].landmarks, faces[0].track_id
    offline, _ = S.smooth_track(points, ids, params)
    assert len({*ids.tolist()} - {0}) == 2  # the face was lost and found again: two tracks
    for i, faces in enumerate(smooth):
        if faces:
            np.testing.assert_allclose(offline[i], faces[0].landmarks, atol=1e-4)
        else:
            assert np.isnan(offline[i]).all()


def test_metrics_on_known_outputs():
    truth = np.stack([face_points(100 + 3 * i, 100, 80) for i in range(12)])
    io = inter_ocular(truth[0])
    behind = truth - np.array([1.5, 0.0], np.float32)  # 1.5 px behind a face moving along +x
    assert S.lag(behind, truth) == pytest.approx(1.5 / io, rel=1e-3)
    still = np.repeat(truth[:1], 12, axis=0)
    steps = still + np.array([[0.0, 0.0], [0.6, 0.8]], np.float32)[np.arange(12) % 2][:, None, :]
    assert S.jitter(steps, still, np.ones(12, int)) == pytest.approx(1.0 / io, rel=1e-4)
    np.testing.assert_allclose(nme(steps, still)[1], 1.0 / io, rtol=1e-4)


def test_tuning_choices():
    from tools.landmarks import tune_tracking as T

    positives = np.linspace(0.2, 0.9, 101)
    t = T.choose_threshold(positives, keep=0.99)
    assert (positives >= t).mean() >= 0.99 and t == pytest.approx(0.2, abs=0.011)
    rates = T.rates({"face": positives, "background": np.array([0.05, 0.1, 0.5])}, 0.3)
    assert rates["background"] == pytest.approx(1 / 3)
    assert T.separation_warning({"track": 0.99, "background": 0.0, "off-face": 0.003}) is None
    warning = T.separation_warning({"track": 1.0, "background": 0.249, "off-face": 0.0})
    assert "24.9% of background" in warning and "off-face" not in warning.split(";")[0]
    rows = [(0.0, SmoothingParams(0.1, 10, 1), {"jitter": 0.10, "lag": 1.0}),
            (0.0, SmoothingParams(1.0, 10, 1), {"jitter": 0.12, "lag": 1.1}),  # within 25%: wins
            (0.0, SmoothingParams(2.0, 10, 1), {"jitter": 0.20, "lag": 0.9})]
    assert T.pick(rows, slack=0.25)[1].min_cutoff == 1.0
    assert T.pick(rows, slack=0.0)[1].min_cutoff == 0.1
    assert T.pick([], slack=0.25) is None


_FAKE_MEDIAPIPE = '''
"""Stand-in for mediapipe's legacy face mesh: a face is out when the frame's mean is above 50."""
__version__ = "fake"


class _Result:
    def __init__(self, found):
        self.multi_face_landmarks = [object()] if found else None


class FaceMesh:
    def __init__(self, **options):
        assert options["static_image_mode"] is False and options["max_num_faces"] == 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def process(self, rgb):
        assert rgb.dtype.name == "uint8" and rgb.ndim == 3 and rgb.shape[2] == 3
        return _Result(rgb.mean() > 50)
'''


def test_peer_gets_the_frames_and_its_tracking_frames_are_counted(tmp_path):
    import sys

    pkg = tmp_path / "mediapipe"
    (pkg / "solutions").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from mediapipe import solutions\n__version__ = 'fake'\n")
    (pkg / "solutions" / "__init__.py").write_text("from mediapipe.solutions import face_mesh\n")
    (pkg / "solutions" / "face_mesh.py").write_text(_FAKE_MEDIAPIPE)
    wrapper = tmp_path / "python"   # the peer interpreter: this one, with the fake on its path
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={tmp_path} exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    model = pkg / "modules" / "face_landmark" / "face_landmark.tflite"
    bare = PeerTracker(wrapper)
    bare.close()
    assert bare.model_macs is None  # no model file where MediaPipe keeps it
    model.parent.mkdir(parents=True)
    model.write_bytes(tiny_tflite())
    peer = PeerTracker(wrapper)
    try:
        assert peer.version == "fake"
        assert peer.model_macs == 1728 + 576 + 640
        levels = [100, 100, 0, 100, 100, 100, 0, 0, 100]
        frames = [np.full((6, 8, 3), v, np.uint8) for v in levels]
        seconds, found = peer.run(frames)
        assert found.tolist() == [v > 50 for v in levels]
        assert seconds.shape == (9,) and (seconds >= 0).all()
        # tracking frames: a face out after a frame with a face -> frames 1, 4, 5
        np.testing.assert_array_equal(peer_tracking_seconds(seconds, found), seconds[[1, 4, 5]])
        assert peer.run(frames[:2])[1].tolist() == [True, True]   # next sequence, same process
    finally:
        peer.close()
    assert peer.proc.returncode == 0


def test_missing_peer_interpreter_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such interpreter"):
        PeerTracker(tmp_path / "nope" / "python")

