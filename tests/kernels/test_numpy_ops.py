"""The NumPy backend's fast ops (nnlite.kernels.numpy_ops) vs the kernels' NumPy references.

Random inputs with odd sizes, stride 1 and 2, padding, batch > 1, boxes partly off
the map. Each case runs twice through one Workspace (and once with a fresh one), so
a buffer reused across calls, shapes and layers cannot leak into a result.
Tolerance: atol 1e-4, rtol 1e-4 (the same float32 sums in a different order).
"""
import numpy as np
import pytest

from nnlite.kernels import numpy_ops as fast
from nnlite.kernels.conv import conv2d_reference, pointwise_conv2d_reference
from nnlite.kernels.inverted_residual import inverted_residual_reference
from nnlite.kernels.roi_align import roi_align_reference
from nnlite.kernels.roi_conv import roi_group_conv_reference
from nnlite.kernels.soft_argmax import heatmap_peak_reference, soft_argmax_reference
from tests.helpers import assert_matches_reference, random_arrays

ATOL = RTOL = 1e-4


def _rois(rng, n_img, per_img, lo, hi, half):
    c = rng.uniform(lo, hi, (n_img * per_img, 2))
    return np.concatenate([np.repeat(np.arange(n_img), per_img)[:, None], c - half, c + half],
                          axis=1).astype(np.float32)


def _cases():
    rng = np.random.default_rng(11)
    cases = []
    # conv2d: stem-like (3 input channels, stride 2), odd sizes, pad 0/1/2, depthwise, groups.
    for shape, wshape, stride, pad, groups, act in [
            ((1, 17, 15, 3), (3, 3, 3, 8), 2, 1, 1, "relu6"),
            ((2, 9, 7, 6), (3, 3, 6, 5), 1, 1, 1, "none"),
            ((3, 8, 11, 4), (5, 5, 4, 6), 2, 2, 1, "relu"),
            ((2, 7, 9, 5), (3, 3, 5, 4), 3, 0, 1, "none"),
            ((2, 9, 8, 12), (3, 3, 1, 12), 1, 1, 12, "relu6"),   # depthwise
            ((1, 10, 7, 12), (3, 3, 1, 12), 2, 1, 12, "relu6"),  # depthwise, stride 2
            ((2, 8, 9, 6), (5, 5, 1, 6), 2, 2, 6, "none"),       # depthwise 5x5
            ((2, 7, 7, 6), (3, 3, 2, 9), 1, 1, 3, "relu"),       # grouped
            ((2, 5, 7, 12), (1, 1, 12, 5), 1, 0, 1, "relu6")]:   # 1x1
        x, w, b = random_arrays([shape, wshape, (wshape[3],)], seed=len(cases))
        cases.append((fast.conv2d, conv2d_reference, (x, w, b, stride, pad, groups, act)))
    x, w, b = random_arrays([(2, 5, 7, 12), (12, 5), (5,)], seed=30)
    cases.append((fast.pointwise_conv2d, pointwise_conv2d_reference, (x, w, b, "relu6")))
    cases.append((fast.pointwise_conv2d, pointwise_conv2d_reference, (x, w, None, "none")))
    # inverted_residual: (N, H, W, cin, ce or None, cout, stride, residual)
    for n, h, w, cin, ce, cout, stride, residual in [
            (1, 9, 7, 4, 24, 4, 1, True), (3, 13, 9, 4, 24, 6, 2, False),
            (2, 8, 10, 6, 12, 6, 2, False), (1, 9, 9, 8, None, 8, 1, True),
            (3, 7, 9, 8, None, 4, 2, False)]:
        c = ce or cin
        arrays = random_arrays([(n, h, w, cin), ce and (cin, ce), ce and (ce,), (3, 3, c), (c,),
                                (c, cout), (cout,)], seed=h * w + stride, scale=0.5)
        cases.append((fast.inverted_residual, inverted_residual_reference,
                      (*arrays, stride, residual)))
    # roi_align and roi_group_conv: boxes partly off the map, sampling ratio 1 and 2.
    (feat,) = random_arrays([(2, 11, 13, 5)], seed=40)
    rois = _rois(rng, 2, 4, -3, 14, 2.5)
    cases.append((fast.roi_align, roi_align_reference, (feat, rois, 4, 1.0, 1, True)))
    cases.append((fast.roi_align, roi_align_reference, (feat, rois, (3, 5), 0.5, 2, False)))
    w, b = random_arrays([(3, 3, 5, 4), (4,)], seed=41)
    cases.append((fast.roi_group_conv, roi_group_conv_reference,
                  (feat, rois, w, b, 5, 1.0, 1, True)))
    cases.append((fast.roi_group_conv, roi_group_conv_reference,
                  (feat, rois, w, None, (4, 6), 0.5, 2, False)))
    (w5,) = random_arrays([(5, 5, 5, 8)], seed=42)
    cases.append((fast.roi_group_conv, roi_group_conv_reference,
                  (feat, _rois(rng, 2, 8, 0, 12, 4.0), w5, None, 8, 1.0, 1, True)))
    (heat,) = random_arrays([(3, 9, 11, 68)], seed=43, scale=3.0)
    cases.append((fast.soft_argmax, soft_argmax_reference, (heat, 1.0)))
    cases.append((fast.soft_argmax, soft_argmax_reference, (heat[:, :4, :7, :5], 2.5)))
    cases.append((fast.heatmap_peak, heatmap_peak_reference, (heat * 20,)))
    return cases


CASES = _cases()


@pytest.mark.parametrize("fn, ref, args", CASES,
                         ids=[f"{fn.__name__}-{i}" for i, (fn, _, _) in enumerate(CASES)])
def test_fast_numpy_op_matches_reference(fn, ref, args):
    assert_matches_reference(fn, ref, args, ATOL, RTOL)


def test_one_workspace_across_ops_shapes_and_calls():
    work = fast.Workspace()
    for _ in range(2):  # second round: every buffer is reused, none may leak
        for fn, ref, args in CASES:
            kwargs = {} if fn is fast.heatmap_peak else {"work": work}
            np.testing.assert_allclose(fn(*args, **kwargs), ref(*args), atol=ATOL, rtol=RTOL,
                                       err_msg=fn.__name__)


def test_out_is_written_and_checked():
    x, w, b = random_arrays([(2, 9, 7, 6), (3, 3, 6, 5), (5,)], seed=50)
    out = np.full((2, 9, 7, 5), np.nan, np.float32)
    assert fast.conv2d(x, w, b, 1, 1, 1, "relu", out=out) is out
    np.testing.assert_allclose(out, conv2d_reference(x, w, b, 1, 1, 1, "relu"), atol=ATOL,
                               rtol=RTOL)
    with pytest.raises(ValueError, match="out must be"):
        fast.conv2d(x, w, b, 1, 1, 1, out=np.empty((2, 9, 7, 4), np.float32))
    with pytest.raises(ValueError, match="out must be"):
        fast.pointwise_conv2d(x, w[0, 0], b, out=np.empty((2, 9, 7, 5), np.float64))


def test_float32_in_float32_out_and_same_errors_as_references():
    x, w, b = random_arrays([(1, 9, 9, 8), (3, 3, 8, 4), (4,)], seed=51)
    with pytest.raises(ValueError, match="float32"):
        fast.conv2d(x.astype(np.float64), w, b, 1, 1)
    with pytest.raises(ValueError, match="bias shape"):
        fast.conv2d(x, w, b[:3], 1, 1)
    view = x[:, ::2, :, ::2]  # non-contiguous input
    np.testing.assert_allclose(fast.conv2d(view, w[:, :, :4], b, 1, 1),
                               conv2d_reference(np.ascontiguousarray(view), w[:, :, :4], b, 1, 1),
                               atol=ATOL, rtol=RTOL)


def test_workspace_reuses_buffers_and_derived_arrays():
    work = fast.Workspace()
    a = work.buffer("t", (2, 3), zero=True)
    assert a.dtype == np.float32 and not a.any() and work.buffer("t", (2, 3)) is a
    assert work.buffer("t", (3, 2)) is not a and work.buffer("u", (2, 3)) is not a
    v = np.arange(3, dtype=np.float32)
    t1 = work.tiled(v, 4)
    assert work.tiled(v, 4) is t1 and np.array_equal(t1, np.tile(v, 4))
    assert not np.shares_memory(work.tiled(v.copy(), 4), t1)
