"""soft_argmax, heatmap_peak and softmax_peak: Numba vs NumPy reference, rendered Gaussians.

Tolerances: soft-argmax coordinates atol 1e-4 (pixels), peaks atol 1e-6.
"""
import numpy as np
import pytest

from nnlite.kernels.soft_argmax import (heatmap_peak, heatmap_peak_reference, soft_argmax,
                                        soft_argmax_reference, softmax_peak, softmax_peak_reference)
from tests.helpers import assert_matches_reference, random_arrays

ATOL = 1e-4


def _gaussian_logits(h, w, centres, sigma):
    """(1, h, w, C) log of Gaussians centred at ``centres`` [(x, y), ...]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    maps = [-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2) for cx, cy in centres]
    return np.stack(maps, axis=-1)[None].astype(np.float32)


@pytest.mark.parametrize("n, h, w, c, beta", [(1, 7, 9, 5, 1.0), (3, 13, 9, 68, 4.0),
                                              (2, 9, 13, 3, 0.5)])
def test_soft_argmax_matches_reference(n, h, w, c, beta):
    (x,) = random_arrays([(n, h, w, c)], seed=c, scale=2.0)
    out = assert_matches_reference(soft_argmax, soft_argmax_reference, (x, beta), ATOL, 0)
    assert out.shape == (n, c, 2)
    assert np.all(out[..., 0] >= 0) and np.all(out[..., 0] <= w - 1)
    assert np.all(out[..., 1] >= 0) and np.all(out[..., 1] <= h - 1)


def test_gaussian_centre_is_recovered():
    """A rendered Gaussian (as logits, so softmax gives it back) returns its centre.

    Centres stay >= 4 sigma inside the 17 x 19 grid, so the truncated tails are negligible.
    """
    centres = [(4.0, 6.0), (14.0, 12.0), (7.3, 5.6), (9.5, 8.25), (11.9, 4.1)]
    hm = _gaussian_logits(17, 19, centres, sigma=1.0)
    for fn in (soft_argmax, soft_argmax_reference):
        np.testing.assert_allclose(fn(hm)[0], centres, atol=1e-3)


def test_uniform_heatmap_gives_the_middle_and_axes_are_x_then_y():
    np.testing.assert_allclose(soft_argmax(np.zeros((1, 7, 12, 1), np.float32))[0, 0],
                               [5.5, 3.0], atol=1e-6)
    one_hot = np.full((1, 7, 12, 1), -1e4, np.float32)
    one_hot[0, 2, 9, 0] = 0.0  # row 2, column 9
    np.testing.assert_allclose(soft_argmax(one_hot)[0, 0], [9.0, 2.0], atol=1e-6)


def test_large_logits_are_stable():
    (x,) = random_arrays([(1, 9, 9, 4)], seed=1, scale=1000.0)
    out = assert_matches_reference(soft_argmax, soft_argmax_reference, (x, 10.0), ATOL, 0)
    flat = x[0].reshape(-1, 4).argmax(axis=0)
    np.testing.assert_allclose(out[0], np.stack([flat % 9, flat // 9], axis=1), atol=1e-4)


@pytest.mark.parametrize("n, h, w, c", [(1, 7, 9, 5), (3, 9, 7, 68)])
def test_heatmap_peak_matches_reference(n, h, w, c):
    (x,) = random_arrays([(n, h, w, c)], seed=h, scale=3.0)
    out = assert_matches_reference(heatmap_peak, heatmap_peak_reference, (x,), 1e-6, 1e-6)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-x.max(axis=(1, 2)).astype(np.float64))),
                               atol=1e-6)
    big = np.array([-200.0, -5.0, 0.0, 5.0, 200.0], np.float32).reshape(1, 1, 1, 5)
    np.testing.assert_allclose(heatmap_peak(big)[0], [0, 1 / (1 + np.exp(5)), 0.5,
                                                      1 / (1 + np.exp(-5)), 1], atol=1e-7)


@pytest.mark.parametrize("n, h, w, c, beta", [(1, 7, 9, 5, 1.0), (3, 9, 7, 68, 2.5), (2, 5, 11, 3, 0.3)])
def test_softmax_peak_matches_reference(n, h, w, c, beta):
    (x,) = random_arrays([(n, h, w, c)], seed=w, scale=3.0)
    out = assert_matches_reference(softmax_peak, softmax_peak_reference, (x, beta), 1e-6, 1e-5)
    assert out.shape == (n, c) and np.all(out >= 1 / (h * w) - 1e-7) and np.all(out <= 1)


@pytest.mark.parametrize("n, h, w, c, beta", [(1, 7, 9, 5, 1.0), (3, 9, 7, 68, 2.5), (2, 5, 11, 3, 0.3)])
def test_soft_argmax_writes_the_softmax_peak_from_the_same_pass(n, h, w, c, beta):
    """Numba kernel and NumPy op: ``peak=`` holds softmax_peak's values, the points are unchanged."""
    from nnlite.kernels import numpy_ops

    (x,) = random_arrays([(n, h, w, c)], seed=w + 1, scale=3.0)
    want = softmax_peak_reference(x, beta)
    for op in (soft_argmax, numpy_ops.soft_argmax):
        peak = np.full((n, c), np.nan, np.float32)
        xy = op(x, beta, peak=peak)
        np.testing.assert_allclose(peak, want, atol=1e-6, rtol=1e-5)
        np.testing.assert_array_equal(xy, op(x, beta))
        with pytest.raises(ValueError, match="out must be"):
            op(x, beta, peak=np.empty((n, c + 1), np.float32))


def test_softmax_peak_of_flat_spiked_and_steep_maps():
    flat = np.zeros((1, 7, 12, 1), np.float32)
    np.testing.assert_allclose(softmax_peak(flat)[0], [1 / 84], rtol=1e-6)
    spike = np.full((1, 5, 5, 2), -1e4, np.float32)
    spike[0, 2, 3] = 0.0
    np.testing.assert_allclose(softmax_peak(spike)[0], [1, 1], atol=1e-7)
    two = np.zeros((1, 1, 4, 1), np.float32)
    two[0, 0, :2] = 1.0  # two pixels e times the other two: peak e / (2e + 2)
    np.testing.assert_allclose(softmax_peak(two)[0], [np.e / (2 * np.e + 2)], rtol=1e-6)
    np.testing.assert_allclose(softmax_peak(two, 2.0)[0], [np.e ** 2 / (2 * np.e ** 2 + 2)], rtol=1e-6)
    (big,) = random_arrays([(1, 9, 9, 4)], seed=2, scale=1000.0)  # stable for huge logits
    assert_matches_reference(softmax_peak, softmax_peak_reference, (big, 10.0), 1e-6, 1e-5)


def test_validation_errors():
    with pytest.raises(ValueError, match="float32"):
        soft_argmax(np.zeros((1, 3, 3, 2)))
    with pytest.raises(ValueError, match=r"\(3, 3, 2\)"):
        heatmap_peak(np.zeros((3, 3, 2), np.float32))
    with pytest.raises(ValueError, match="beta"):
        soft_argmax(np.zeros((1, 3, 3, 2), np.float32), beta=float("nan"))
    with pytest.raises(ValueError, match="beta"):
        softmax_peak(np.zeros((1, 3, 3, 2), np.float32), beta=float("inf"))
    with pytest.raises(ValueError, match=">= 0"):
        softmax_peak(np.zeros((1, 3, 3, 2), np.float32), beta=-1.0)
