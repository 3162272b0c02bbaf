"""roi_group_conv: fused RoI align + per-keypoint conv vs the unfused reference path.

Tolerance: atol 1e-4, rtol 1e-4 (the same bilinear samples; the conv sums up to
k*k*C ~ 100 N(0, 1) products in a different order than the reference matmul).
"""
import numpy as np
import pytest

from nnlite.kernels import roi_conv
from nnlite.kernels.conv import conv2d
from nnlite.kernels.roi_align import roi_align
from tests.helpers import assert_matches_reference, numba_threads, random_arrays

ATOL = 1e-4
RTOL = 1e-4


def _case(n, h, w, c, k_pts, size, kernel, scale, seed):
    x, wt, b = random_arrays([(n, h, w, c), (kernel, kernel, c, k_pts), (k_pts,)], seed=seed)
    rng = np.random.default_rng(seed)
    pts = rng.uniform(-3, max(h, w) + 3, size=(n * k_pts, 2)) / scale
    ext = rng.uniform(0.5, 6, size=(n * k_pts, 2)) / scale
    rois = np.concatenate([np.repeat(np.arange(n), k_pts)[:, None], pts, pts + ext], axis=1)
    rois = rois.astype(np.float32)
    rois[0, 1:] = [-9 / scale, -9 / scale, -7 / scale, -7 / scale]  # fully outside
    return x, rois, wt, b


# (N, H, W, C, K, output_size, kernel, spatial_scale, sampling_ratio, aligned)
CASES = [
    (1, 9, 11, 5, 3, 4, 3, 1.0, 1, True),
    (2, 7, 13, 24, 7, (3, 5), 3, 0.5, 2, True),
    (3, 11, 9, 9, 2, 5, 5, 0.25, 1, False),
    (1, 32, 32, 24, 68, 8, 3, 1.0, 1, True),  # the demo model's head
]


@pytest.mark.parametrize("case", CASES)
def test_matches_reference(case):
    n, h, w, c, k_pts, size, kernel, scale, sr, aligned = case
    x, rois, wt, b = _case(n, h, w, c, k_pts, size, kernel, scale, seed=h * w + c)
    kwargs = dict(spatial_scale=scale, sampling_ratio=sr, aligned=aligned)
    got = assert_matches_reference(roi_conv.roi_group_conv, roi_conv.roi_group_conv_reference,
                                   (x, rois, wt, b, size), ATOL, RTOL, kwargs=kwargs)
    oh, ow = (size, size) if isinstance(size, int) else size
    assert got.shape == (n, oh, ow, k_pts)
    # The unfused path on the Numba kernels agrees too.
    unfused = roi_conv.roi_group_conv_unfused(x, rois, wt, b, size, scale, sr, aligned,
                                              roi_align, conv2d)
    np.testing.assert_allclose(got, unfused, atol=ATOL, rtol=RTOL)


def test_no_bias_means_zero_bias():
    x, rois, wt, b = _case(1, 9, 9, 6, 4, 3, 3, 1.0, seed=3)
    np.testing.assert_array_equal(roi_conv.roi_group_conv(x, rois, wt, None, 3),
                                  roi_conv.roi_group_conv(x, rois, wt, np.zeros_like(b), 3))


def test_threads_and_reused_scratch_do_not_change_the_result(monkeypatch):
    monkeypatch.setattr(roi_conv.config, "MIN_PARALLEL_MACS", 0)
    x, rois, wt, b = _case(2, 13, 11, 10, 5, 4, 3, 1.0, seed=5)
    wk, bk = roi_conv.pack_roi_group_conv(wt, b)
    scratch = roi_conv.roi_group_conv_scratch(3, (4, 4), wk.shape[2], 2)
    scratch[...] = np.nan  # whatever the buffer held before
    with numba_threads(1):
        serial = roi_conv.roi_group_conv_packed(x, rois, wk, bk, 3, 1.0, 1, True,
                                                np.empty((2, 4, 4, 5), np.float32), scratch)
    with numba_threads():
        threaded = roi_conv.roi_group_conv_packed(x, rois, wk, bk, 3, 1.0, 1, True,
                                                  np.empty((2, 4, 4, 5), np.float32), scratch)
    np.testing.assert_array_equal(serial, threaded)
    np.testing.assert_allclose(serial, roi_conv.roi_group_conv_reference(x, rois, wt, b, 4),
                               atol=ATOL, rtol=RTOL)


def test_validation_errors():
    x, rois, wt, b = _case(2, 9, 9, 6, 4, 3, 3, 1.0, seed=1)
    with pytest.raises(ValueError, match="image-major"):
        roi_conv.roi_group_conv(x, rois[::-1].copy(), wt, b, 3)
    with pytest.raises(ValueError, match=r"\(3, 3, 5, 4\)"):
        roi_conv.roi_group_conv(x, rois, wt[:, :, :5], b, 3)
    with pytest.raises(ValueError, match=r"odd k"):
        roi_conv.roi_group_conv(x, rois, np.zeros((2, 2, 6, 4), np.float32), b, 3)
    with pytest.raises(ValueError, match="float32"):
        roi_conv.roi_group_conv(x.astype(np.float64), rois, wt, b, 3)
