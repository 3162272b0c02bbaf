"""One Euro filter: less jitter when still, converges after a step, same behaviour at any face size."""
import numpy as np
import pytest

from tests.fakes import face_points
from tracker.smoothing import OneEuroFilter, face_scale

FPS = 30.0


def filtered(filt, frames):
    return np.stack([filt(p, i / FPS) for i, p in enumerate(frames)])


def test_still_input_jitter_reduced():
    rng = np.random.default_rng(0)
    base = face_points(320, 240, 120)
    noisy = base + rng.normal(0, 1.0, (90, 68, 2)).astype(np.float32)
    out = filtered(OneEuroFilter(), noisy)
    raw_jitter = np.abs(np.diff(noisy[30:], axis=0)).mean()
    out_jitter = np.abs(np.diff(out[30:], axis=0)).mean()
    assert out_jitter < 0.3 * raw_jitter
    assert np.abs(out[30:] - base).mean() < 0.5 * np.abs(noisy[30:] - base).mean()


def test_step_input_converges():
    a, b = face_points(300, 240, 120), face_points(360, 250, 120)
    out = filtered(OneEuroFilter(), [a] * 5 + [b] * 40)
    np.testing.assert_allclose(out[0], a, atol=1e-4)  # first frame passes through
    assert np.abs(out[5 + 10] - b).max() < 0.5  # fast motion: within half a pixel in 10 frames
    np.testing.assert_allclose(out[-1], b, atol=1e-2)


def test_scale_invariant():
    """The same motion relative to face size is smoothed the same at 1x and 4x size."""
    rng = np.random.default_rng(1)
    shift = np.cumsum(rng.normal(0, 0.02, (60, 2)), axis=0) + np.linspace(0, 1, 60)[:, None]
    small = np.stack([face_points(100, 100, 50) + s * 50 for s in shift])
    large = np.stack([face_points(400, 400, 200) + s * 200 for s in shift])
    out_small = filtered(OneEuroFilter(), small)
    out_large = filtered(OneEuroFilter(), large)
    err_small = (out_small - small) / 50
    err_large = (out_large - large) / 200
    np.testing.assert_allclose(err_small, err_large, atol=1e-4)


def test_reset_and_repeated_time():
    filt = OneEuroFilter()
    a, b = face_points(300, 240, 120), face_points(360, 250, 120)
    filt(a, 0.0)
    np.testing.assert_allclose(filt(b, 0.0), a, atol=1e-4)  # no time passed: no update
    filt.reset()
    np.testing.assert_allclose(filt(b, 1.0), b, atol=1e-4)


def test_face_scale_is_interocular_distance():
    pts = face_points(0, 0, 100)
    assert face_scale(pts) == pytest.approx(np.linalg.norm(pts[36] - pts[45]))


def test_bad_parameters():
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0)
