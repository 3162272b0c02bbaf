"""Tracker: detection, tracking across frames, loss and re-detection, ids, roll-free crops."""
import math

import numpy as np
import pytest

from tests.fakes import BlobDetector, SceneLandmarker, draw_scene, face_points, landmark_result
from tracker.tracking import Tracker


def run(tracker, landmarker, scenes):
    """Process one frame per scene (a list of true faces); returns the faces per frame."""
    results = []
    for truth in scenes:
        landmarker.truth = truth
        results.append(tracker.process(draw_scene(truth)))
    return results


@pytest.mark.parametrize("static", [False, True])
def test_blank_frame_gives_empty_list(static):
    lm, det = SceneLandmarker(), BlobDetector()
    with Tracker(lm, det, static_image_mode=static) as tracker:
        assert tracker.process(draw_scene([])) == []
        assert tracker.process(draw_scene([])) == []
    assert det.calls == 2 and lm.calls == 0


@pytest.mark.parametrize("static", [False, True])
def test_face_found_every_frame(static):
    lm, det = SceneLandmarker(), BlobDetector()
    scenes = [[face_points(150 + 3 * i, 120, 80)] for i in range(6)]
    results = run(Tracker(lm, det, static_image_mode=static, smoothing=False), lm, scenes)
    for faces, truth in zip(results, scenes):
        assert len(faces) == 1
        np.testing.assert_allclose(faces[0].landmarks, truth[0], atol=1e-4)
        assert faces[0].landmarks.dtype == np.float32 and faces[0].landmarks.shape == (68, 2)
        assert faces[0].score == pytest.approx(0.95)
    # streaming: detect once, then follow; static: detect every frame
    assert det.calls == (6 if static else 1)


def test_track_kept_through_motion_and_roll():
    lm, det = SceneLandmarker(), BlobDetector()
    scenes = [[face_points(120 + 4 * i, 110 + 2 * i, 70 + i, math.radians(2.5 * i))] for i in range(12)]
    tracker = Tracker(lm, det, smoothing=False)
    results = run(tracker, lm, scenes)
    assert all(len(f) == 1 for f in results)
    assert {f[0].track_id for f in results} == {1}
    assert det.calls == 1  # max_faces reached: no re-detection while tracked
    # crops after the first come from the previous landmarks, with the roll removed
    for i, crop in enumerate(lm.crops[1:], start=1):
        assert crop.angle == pytest.approx(math.radians(2.5 * (i - 1)), abs=1e-4)


def test_redetection_after_face_leaves_and_returns():
    lm, det = SceneLandmarker(), BlobDetector()
    face = [face_points(160, 120, 80)]
    scenes = [face] * 5 + [[]] * 4 + [face] * 5
    results = run(Tracker(lm, det), lm, scenes)
    assert all(len(f) == 1 for f in results[:5])
    assert results[5] == [] and results[8] == []
    back = next(i for i in range(9, 14) if results[i])
    assert back - 9 < 3
    assert results[back][0].track_id == 2  # a new track, new id
    assert all(len(f) == 1 and f[0].track_id == 2 for f in results[back:])


@pytest.mark.parametrize("jump, same_id", [(0.8, True), (2.2, False)])
def test_track_lost_by_a_fast_motion_and_found_in_the_same_frame_keeps_its_id(jump, same_id):
    """A jump of `jump` face sizes between two frames carries the face out of the crop taken
    from its previous landmarks (the model loses it) while it stays in view, as a fast pan does
    (the sample clip, frame 67): the detector finds it in that frame. Within a face size of
    where it was lost it is the same face; further away, another one."""
    lm, det = SceneLandmarker(), BlobDetector()
    size = 60
    scenes = [[face_points(70, 120, size)]] * 3 + [[face_points(70 + jump * size, 120, size)]] * 3
    results = run(Tracker(lm, det, smoothing=False), lm, scenes)
    assert all(len(faces) == 1 for faces in results)
    assert det.calls == 2  # the first frame, and the frame of the jump (the track was lost)
    assert [faces[0].track_id for faces in results] == [1] * 3 + [1 if same_id else 2] * 3


def test_second_face_found_by_periodic_redetection():
    lm, det = SceneLandmarker(), BlobDetector()
    a, b = face_points(80, 120, 60), face_points(240, 120, 60)
    scenes = [[a]] * 3 + [[a, b]] * 12
    tracker = Tracker(lm, det, max_faces=2, redetect_interval=5)
    results = run(tracker, lm, scenes)
    assert [len(f) for f in results[:3]] == [1, 1, 1]
    first_two = next(i for i, f in enumerate(results) if len(f) == 2)
    assert first_two <= 3 + 5
    assert [f.track_id for f in results[-1]] == [1, 2]
    assert det.calls == 1 + first_two // 5  # every 5 frames while below max_faces, then never


def test_low_tracking_score_drops_track_and_ids_increase_over_reset():
    lm, det = SceneLandmarker(), BlobDetector()
    tracker = Tracker(lm, det)
    run(tracker, lm, [[face_points(160, 120, 80)]])
    tracker.reset()
    faces = run(tracker, lm, [[face_points(160, 120, 80)]])[0]
    assert faces[0].track_id == 2
    tracker2 = Tracker(lm, det, min_tracking_score=0.99)
    assert run(tracker2, lm, [[face_points(160, 120, 80)]]) == [[]]


def test_smoothing_reduces_jitter_on_still_face():
    truth = face_points(160, 120, 80)

    def jitter(smoothing):
        lm, det = SceneLandmarker(noise=1.0, seed=3), BlobDetector()
        results = run(Tracker(lm, det, smoothing=smoothing), lm, [[truth]] * 60)
        pts = np.stack([f[0].landmarks for f in results[20:]])
        return np.abs(np.diff(pts, axis=0)).mean()

    assert jitter(True) < 0.5 * jitter(False)


def test_rejects_bad_frame_and_arguments():
    lm, det = SceneLandmarker(), BlobDetector()
    tracker = Tracker(lm, det)
    with pytest.raises(ValueError, match="uint8"):
        tracker.process(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="max_faces"):
        Tracker(lm, det, max_faces=0)


def test_min_tracking_score_default_comes_from_the_landmark_model():
    lm, det = SceneLandmarker(), BlobDetector()
    assert Tracker(lm, det).min_tracking_score == 0.5  # nothing given anywhere
    lm.model = type("Model", (), {"config": {}, "confidence": "softmax_peak"})()
    assert Tracker(lm, det).min_tracking_score == pytest.approx(0.15)  # the default of its kind of score
    lm.model = type("Model", (), {"config": {"tracking": {"min_score": 0.3}}})()
    assert Tracker(lm, det).min_tracking_score == pytest.approx(0.3)  # weights config
    lm.min_score = 0.4
    assert Tracker(lm, det).min_tracking_score == pytest.approx(0.4)  # the model's attribute
    assert Tracker(lm, det, min_tracking_score=0.7).min_tracking_score == pytest.approx(0.7)


def test_crop_deadband_holds_the_crop_of_a_still_face_but_follows_motion():
    still = [[face_points(160, 120, 80)]] * 8
    moving = [[face_points(100 + 8 * i, 120, 80)] for i in range(8)]
    for scenes, held in ((still, True), (moving, False)):
        lm, det = SceneLandmarker(noise=0.3, seed=1), BlobDetector()
        run(Tracker(lm, det, crop_deadband=0.05, smoothing=False), lm, scenes)
        tracking_crops = lm.crops[2:]  # crop 0: the detection; crop 1: the first tracking crop
        same = [a == b for a, b in zip(tracking_crops, tracking_crops[1:])]
        assert all(same) if held else not any(same)
    with pytest.raises(ValueError, match="crop_deadband"):
        Tracker(SceneLandmarker(), BlobDetector(), crop_deadband=0.6)


class _RunawayLandmarker:
    """Confident landmarks 1.5x larger than each crop expects: its own crops grow without end."""

    crop_scale = 1.5

    def run(self, frame_bgr, crops):
        return [landmark_result(face_points(c.cx, c.cy, 1.5 * c.side / self.crop_scale, c.angle), 0.9)
                for c in crops]


def test_track_that_outgrows_the_frame_is_dropped():
    det = BlobDetector()
    tracker = Tracker(_RunawayLandmarker(), det, smoothing=False)
    frame = draw_scene([face_points(160, 120, 60)])
    sizes, ids = [], set()
    for _ in range(12):
        faces = tracker.process(frame)
        sizes += [f.box.width for f in faces]
        ids |= {f.track_id for f in faces}
    assert max(sizes) <= 2.0 * 320  # MAX_FACE_SIZE x the frame's longer side
    assert len(ids) >= 2 and det.calls >= 2  # dropped, then found again by the detector


def test_sample_clip_keeps_one_id_while_the_face_is_in_view():
    """The shipped model on the bundled clip: the fast pan of frames 62-69 loses the track at
    frame 67 (the face moves most of its width in a frame); found again in that frame, it keeps
    id 1 through every frame until it leaves the view (frame 68)."""
    from tracker.sources import open_source
    from tracker.video import SAMPLE

    ids = []
    with Tracker.from_weights(threads=1) as tracker, open_source(SAMPLE) as frames:
        for i, frame in enumerate(frames):
            if i == 68:
                break
            ids.append([face.track_id for face in tracker.process(frame)])
    assert ids == [[1]] * 68
