"""Landmarker(flip_average=True): each crop also runs mirrored, points mapped back and averaged."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tools.landmarks.data import FLIP_68
from tracker.geometry import CropBox
from tracker.landmarks import Landmarker

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """The small random-weight model with the 68-point flip permutation in its config."""
    import h5py

    path = tmp_path_factory.mktemp("flip") / "model_flip.h5"
    shutil.copy(FIX / "model_small.h5", path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["config"])
        config["flip"] = FLIP_68.tolist()
        f.attrs["config"] = json.dumps(config)
    return path


def test_needs_the_permutation_in_the_file():
    with pytest.raises(ValueError, match="flip permutation"):
        Landmarker(FIX / "model_small.h5", flip_average=True)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_mirrored_frame_gives_mirrored_landmarks(weights, backend):
    """Averaging with the mirror makes the result mirror-equivariant: the same face in a
    horizontally mirrored frame gives the mirrored points, in mirrored order."""
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 256, (90, 121, 3), dtype=np.uint8)
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    lm = Landmarker(weights, backend=backend, flip_average=True)
    box = CropBox(50.0, 44.0, 60.0, 0.0)
    a = lm.run(frame, [box])[0]
    b = lm.run(mirrored, [CropBox(frame.shape[1] - 1 - box.cx, box.cy, box.side, 0.0)])[0]
    back = b.points[FLIP_68].copy()
    back[:, 0] = frame.shape[1] - 1 - back[:, 0]
    np.testing.assert_allclose(back, a.points, atol=2e-2)
    assert a.score == pytest.approx(b.score, abs=1e-4)


def test_plain_result_is_one_half_of_the_average(weights):
    """Without mirroring the points differ (a random model is not symmetric), and the
    flip-averaged points lie halfway between the plain ones and the mirrored pass's."""
    rng = np.random.default_rng(4)
    frame = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    box = CropBox(40.0, 40.0, 50.0, 0.0)
    plain = Landmarker(weights).run(frame, [box])[0].points
    avg = Landmarker(weights, flip_average=True).run(frame, [box])[0].points
    mirrored = np.ascontiguousarray(frame[:, ::-1])
    other = Landmarker(weights).run(mirrored, [CropBox(79 - 40.0, 40.0, 50.0, 0.0)])[0].points
    other = other[FLIP_68].copy()
    other[:, 0] = 79 - other[:, 0]
    assert np.abs(plain - avg).max() > 1e-3
    np.testing.assert_allclose(avg, (plain + other) / 2, atol=2e-2)


def test_run_pair_gives_the_plain_and_the_averaged_results_of_one_batch(weights):
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (80, 97, 3), dtype=np.uint8)
    boxes = [CropBox(40.0, 38.0, 50.0, 0.1), CropBox(55.5, 41.0, 37.0, -0.2)]
    plain, averaged = Landmarker(weights, flip_average=True).run_pair(frame, boxes)
    alone = Landmarker(weights).run(frame, boxes)
    flip = Landmarker(weights, flip_average=True).run(frame, boxes)
    for p, a, q, f in zip(plain, averaged, alone, flip):
        np.testing.assert_allclose(p.points, q.points, atol=1e-4)
        np.testing.assert_allclose(p.coarse, q.coarse, atol=1e-4)
        assert p.score == pytest.approx(q.score, abs=1e-5)
        np.testing.assert_array_equal(a.points, f.points)
        assert a.score == f.score
    assert not np.allclose(plain[0].points, averaged[0].points)
    with pytest.raises(ValueError, match="flip_average=True"):
        Landmarker(weights).run_pair(frame, boxes)
