"""roi_align: hand-computed bilinear values, border rules, Numba vs NumPy reference.

Tolerance: atol 1e-5, rtol 1e-5 (both do the same float32 coordinate arithmetic
and the same summation order; only the final sums may round differently).
"""
import numpy as np
import pytest

from nnlite.kernels.roi_align import roi_align, roi_align_reference
from tests.helpers import assert_matches_reference, random_arrays

ATOL = 1e-5
RTOL = 1e-5
H, W = 4, 5


def _ramp():
    """(2, 4, 5, 2) features: image 0 channel 0 is 100 + 10*y + x, image 1 channel 0
    is 1100 + 10*y + x; channel 1 is the negative of channel 0."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    f = 100 + 10 * yy + xx
    return np.stack([np.stack([f, -f], axis=-1),
                     np.stack([f + 1000, -f - 1000], axis=-1)]).astype(np.float32)


def _both(x, rois, *args, **kwargs):
    rois = np.asarray(rois, np.float32)
    got = roi_align(x, rois, *args, **kwargs)
    want = roi_align_reference(x, rois, *args, **kwargs)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)
    return got


@pytest.mark.parametrize("roi, size, kwargs, expected", [
    # aligned: box [1, 3] -> [0.5, 2.5], bins of 1, samples at 1 and 2.
    ([0, 1, 1, 3, 3], 2, {}, [[111, 112], [121, 122]]),
    # not aligned: samples at 1.5 and 2.5.
    ([0, 1, 1, 3, 3], 2, {"aligned": False}, [[116.5, 117.5], [126.5, 127.5]]),
    # 2x2 samples per bin, averaged: (111 + 112 + 121 + 122) / 4.
    ([0, 1, 1, 3, 3], 1, {"sampling_ratio": 2}, [[116.5]]),
    # spatial_scale halves the box.
    ([0, 2, 2, 6, 6], 2, {"spatial_scale": 0.5}, [[111, 112], [121, 122]]),
    # second image of the batch.
    ([1, 1, 1, 3, 3], 2, {}, [[1111, 1112], [1121, 1122]]),
    # non-square output: 1 x 2 bins.
    ([0, 1, 1, 3, 3], (1, 2), {}, [[116, 117]]),
    # sub-pixel box, not aligned: forced to 1x1, sample at (1.5, 1.5).
    ([0, 1, 1, 1.2, 1.2], 1, {"aligned": False}, [[116.5]]),
    # sub-pixel box, aligned: start 0.5, size 0.2, sample at 0.6.
    ([0, 1, 1, 1.2, 1.2], 1, {}, [[106.6]]),
])
def test_hand_computed_values(roi, size, kwargs, expected):
    out = _both(_ramp(), [roi], size, **kwargs)
    np.testing.assert_allclose(out[0, :, :, 0], expected, atol=1e-4)
    np.testing.assert_allclose(out[0, :, :, 1], -np.asarray(expected), atol=1e-4)


def test_bilinear_of_a_product():
    """f = 4xy on a 2x2 image: 0 except f(1, 1) = 4; bins of 0.5 sample at 0.25, 0.75."""
    x = np.array([[0, 0], [0, 4]], np.float32).reshape(1, 2, 2, 1)
    out = _both(x, [[0, 0, 0, 1, 1]], 2, aligned=False)
    np.testing.assert_allclose(out[0, :, :, 0], [[0.25, 0.75], [0.75, 2.25]], atol=1e-6)


@pytest.mark.parametrize("centre, expected", [
    ((-2.0, -2.0), 0.0),          # x, y < -1: outside, contributes 0
    ((-1.0, -1.0), 100.0),        # exactly -1: inside, clamped to pixel (0, 0)
    ((-0.5, 1.5), 115.0),         # x in (-1, 0]: clamped to 0, y interpolated
    ((5.0, 4.0), 134.0),          # exactly (W, H): inside, clamped to (W-1, H-1)
    ((4.5, 3.5), 134.0),          # between last pixel and border: clamped
    ((5.25, 1.0), 0.0),           # x > W: outside
    ((2.0, 4.5), 0.0),            # y > H: outside
])
def test_border_rules(centre, expected):
    cx, cy = centre  # 1x1 box, not aligned, one sample at its centre
    out = _both(_ramp(), [[0, cx - 0.5, cy - 0.5, cx + 0.5, cy + 0.5]], 1, aligned=False)
    np.testing.assert_allclose(out[0, 0, 0, 0], expected, atol=1e-4)


def test_samples_outside_count_in_the_average():
    # y from -3 to 1 (samples at -2: outside, 0: inside), x from 0 to 2 (0.5, 1.5).
    out = _both(_ramp(), [[0, 0, -3, 2, 1]], 1, sampling_ratio=2, aligned=False)
    np.testing.assert_allclose(out[0, 0, 0, 0], (100.5 + 101.5) / 4, atol=1e-4)


@pytest.mark.parametrize("n, h, w, c, size, scale, sr, aligned", [
    (1, 9, 13, 5, 3, 1.0, 1, True),
    (3, 7, 9, 4, (3, 5), 0.5, 2, True),
    (2, 13, 7, 3, 4, 0.25, 2, False),
])
def test_matches_reference_on_random_boxes(n, h, w, c, size, scale, sr, aligned):
    (x,) = random_arrays([(n, h, w, c)], seed=h + w)
    rng = np.random.default_rng(n)
    k = 9
    pts = rng.uniform(-4, max(h, w) + 4, size=(k, 4)) / scale
    rois = np.concatenate([rng.integers(0, n, (k, 1)), pts], axis=1).astype(np.float32)
    rois[0, 1:] = [0, 0, (w - 1) / scale, (h - 1) / scale]  # whole image
    rois[1, 1:] = [-3 / scale, -3 / scale, -2 / scale, -2 / scale]  # fully outside
    assert_matches_reference(roi_align, roi_align_reference, (x, rois, size),
                             ATOL, RTOL, kwargs=dict(spatial_scale=scale, sampling_ratio=sr,
                                                     aligned=aligned))


def test_no_boxes_gives_empty_output():
    out = _both(_ramp(), np.zeros((0, 5)), 3)
    assert out.shape == (0, 3, 3, 2)


def test_validation_errors():
    x = _ramp()
    rois = np.array([[0, 1, 1, 3, 3]], np.float32)
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(x, rois, 2, sampling_ratio=0)
    with pytest.raises(ValueError, match=r"\(1, 4\).*\(2, 4, 5, 2\)"):
        roi_align(x, rois[:, :4], 2)
    with pytest.raises(ValueError, match="batch indices"):
        roi_align(x, np.array([[2, 1, 1, 3, 3]], np.float32), 2)
    with pytest.raises(ValueError, match="float32"):
        roi_align(x, rois.astype(np.float64), 2)
