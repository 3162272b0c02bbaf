"""conv2d, pointwise_conv2d, depthwise_conv2d: Numba vs NumPy reference vs PyTorch.

Tolerance: atol 1e-4, rtol 1e-4 for float32 sums of up to ~100 N(0, 1) products
(kernel and reference sum in different orders). PyTorch fixtures are exact
(multiples of 1/256), compared with atol 1e-5.
"""
from pathlib import Path

import numpy as np
import pytest

from nnlite import config
from nnlite.kernels import conv, gemm_conv, layout
from nnlite.kernels.activations import act_code
from tests.helpers import assert_matches_reference, numba_threads, random_arrays

ATOL = 1e-4
RTOL = 1e-4
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kernels_conv.npz"

# (N, H, W, C, cout, k, stride, pad, groups, act)
CONV_CASES = [
    (1, 7, 9, 6, 6, 3, 1, 1, 6, "relu6"),   # depthwise -> fast path
    (3, 9, 7, 6, 6, 3, 2, 1, 6, "none"),    # depthwise, stride 2, batch 3
    (1, 7, 7, 3, 6, 3, 2, 1, 3, "relu"),    # depthwise, channel multiplier 2
    (1, 13, 9, 6, 9, 3, 2, 0, 3, "relu"),   # grouped, in between
    (1, 5, 7, 12, 4, 3, 1, 1, 4, "none"),   # grouped head, one output per group
    (3, 7, 7, 5, 8, 3, 1, 0, 1, "none"),    # regular, batch 3
    (1, 9, 9, 3, 4, 3, 2, 1, 1, "relu6"),   # regular stem-like, stride 2
    (1, 9, 13, 4, 8, 1, 1, 0, 1, "relu6"),  # 1x1 -> pointwise fast path
    (3, 9, 9, 4, 8, 1, 2, 0, 1, "none"),    # 1x1 stride 2, general path
]


def _conv_args(case, seed):
    n, h, w, c, cout, k, stride, pad, groups, act = case
    x, wt, b = random_arrays([(n, h, w, c), (k, k, c // groups, cout), (cout,)], seed=seed)
    return (x, wt, b, stride, pad, groups, act)


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_reference(case):
    out = assert_matches_reference(conv.conv2d, conv.conv2d_reference,
                                   _conv_args(case, seed=sum(case[:9])), ATOL, RTOL)
    n, h, w, _, cout, k, stride, pad = case[:8]
    assert out.shape == (n, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1, cout)


@pytest.mark.parametrize("case", CONV_CASES[:5:2] + CONV_CASES[7:8])
def test_general_paths_match_fast_paths(case):
    """The general Numba and NumPy cores agree with the dispatched fast paths."""
    x, w, b, stride, pad, groups, act = _conv_args(case, seed=7)
    want = conv.conv2d(x, w, b, stride, pad, groups, act)
    got_nb = conv._conv2d_general(x, w, b, stride, pad, groups, act_code(act), want.shape[1:3])
    got_np = conv.conv2d_np(x, w, b, stride, pad, groups, act_code(act))
    np.testing.assert_allclose(got_nb, want, atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(got_np, want, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("n, h, w, cin, cout, act", [(1, 7, 9, 5, 11, "relu"),
                                                     (3, 13, 7, 16, 8, "none")])
def test_pointwise_matches_reference(n, h, w, cin, cout, act):
    x, wt, b = random_arrays([(n, h, w, cin), (cin, cout), (cout,)], seed=cin)
    assert_matches_reference(conv.pointwise_conv2d, conv.pointwise_conv2d_reference,
                             (x, wt, b, act), ATOL, RTOL)
    assert_matches_reference(conv.pointwise_conv2d, conv.pointwise_conv2d_reference,
                             (x, wt, None, act), ATOL, RTOL)


@pytest.mark.parametrize("n, h, w, c, k, stride, pad", [(1, 9, 7, 5, 3, 1, 1),
                                                       (3, 13, 9, 8, 3, 2, 0),
                                                       (1, 7, 7, 4, 1, 2, 1)])
def test_depthwise_matches_reference(n, h, w, c, k, stride, pad):
    x, wt, b = random_arrays([(n, h, w, c), (k, k, c), (c,)], seed=h * w)
    assert_matches_reference(conv.depthwise_conv2d, conv.depthwise_conv2d_reference,
                             (x, wt, b, stride, pad, "relu6"), ATOL, RTOL)
    assert_matches_reference(conv.depthwise_conv2d, conv.depthwise_conv2d_reference,
                             (x, wt, None, stride, pad, "none"), ATOL, RTOL)


def _fixture_cases():
    data = np.load(FIXTURES)
    ints, ys = data["ints"], data["y"]
    i_pos = y_pos = 0
    for name, row in zip(data["names"], data["meta"]):
        n, h, w, c, cout, k, stride, pad, groups, has_bias = (int(v) for v in row)
        sizes = [n * h * w * c, cout * (c // groups) * k * k, cout]
        x, wt, b = (ints[i_pos + s0:i_pos + s0 + s].astype(np.float32) / 16
                    for s0, s in zip(np.cumsum([0] + sizes[:2]), sizes))
        i_pos += sum(sizes)
        h_out, w_out = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        y_size = n * h_out * w_out * cout
        y = ys[y_pos:y_pos + y_size].astype(np.float32) / 256
        y_pos += y_size
        yield pytest.param(x.reshape(n, h, w, c), wt.reshape(cout, c // groups, k, k),
                           b if has_bias else None, stride, pad, groups,
                           y.reshape(n, h_out, w_out, cout), id=str(name))


@pytest.mark.parametrize("x, w_torch, b, stride, pad, groups, want", list(_fixture_cases()))
def test_conv2d_matches_torch(x, w_torch, b, stride, pad, groups, want):
    w = layout.conv_weight_from_torch(w_torch)
    for fn in (conv.conv2d, conv.conv2d_reference):
        np.testing.assert_allclose(fn(x, w, b, stride, pad, groups), want, atol=1e-5, rtol=0)
    if w_torch.shape[2] == 1 and stride == 1 and groups == 1:
        w_pw = layout.pointwise_weight_from_torch(w_torch)
        np.testing.assert_allclose(conv.pointwise_conv2d(x, w_pw, b), want, atol=1e-5, rtol=0)
    if groups == x.shape[3] == w_torch.shape[0]:
        w_dw = layout.depthwise_weight_from_torch(w_torch)
        np.testing.assert_allclose(conv.depthwise_conv2d(x, w_dw, b, stride, pad), want,
                                   atol=1e-5, rtol=0)


def test_validation_errors_name_shapes():
    x, w, b = random_arrays([(1, 7, 7, 4), (3, 3, 4, 8), (8,)])
    with pytest.raises(ValueError, match="float32"):
        conv.conv2d(x.astype(np.float64), w, b)
    with pytest.raises(ValueError, match=r"\(1, 7, 7, 4\).*\(3, 3, 2, 8\)"):
        conv.conv2d(x, w[:, :, :2], b)
    with pytest.raises(ValueError, match=r"\(7,\).*\(3, 3, 4, 8\)"):
        conv.conv2d(x, w, b[:7])
    with pytest.raises(ValueError, match="act"):
        conv.conv2d(x, w, b, act="gelu")
    with pytest.raises(ValueError, match="smaller than kernel"):
        conv.conv2d(x[:, :2], w, b)
    with pytest.raises(ValueError, match="groups"):
        conv.conv2d(x, w, b, groups=3)
    with pytest.raises(ValueError, match=r"\(5, 8\)"):
        conv.pointwise_conv2d(x, np.zeros((5, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(3, 3, 5\)"):
        conv.depthwise_conv2d(x, np.zeros((3, 3, 5), np.float32))


def test_non_contiguous_input_is_accepted():
    x, w, b = random_arrays([(1, 9, 9, 8), (3, 3, 1, 4), (4,)], seed=3)
    xs = x[:, ::2, :, ::2]  # non-contiguous view, 4 channels
    np.testing.assert_allclose(conv.conv2d(xs, w, b, 1, 1, 4),
                               conv.conv2d(np.ascontiguousarray(xs), w, b, 1, 1, 4), atol=0)


@pytest.mark.parametrize("n, h, w, cin, cout, k, stride, pad", [
    (1, 9, 7, 5, 13, 3, 1, 1),
    (2, 11, 5, 3, 8, 3, 2, 1),
    (3, 1, 9, 7, 4, 1, 1, 0),   # fewer rows per image than threads
])
def test_conv2d_packed_threaded_equals_serial(monkeypatch, n, h, w, cin, cout, k, stride, pad):
    """The row-split parallel core gives bit-identical results to the serial one (odd shapes)."""
    monkeypatch.setattr(config, "MIN_PARALLEL_MACS", 0)  # split even these tiny calls
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, h, w, cin), dtype=np.float32)
    wt = rng.standard_normal((k, k, cin, cout), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    wmat, b8 = gemm_conv.pack_conv2d(wt, b)
    shape = (n, (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1, cout)
    with numba_threads(1):
        serial = gemm_conv.conv2d_packed(x, wmat, b8, k, stride, pad, act_code("relu6"),
                                         np.empty(shape, np.float32))
    with numba_threads():
        macs = gemm_conv.conv2d_macs(shape, wmat)
        assert gemm_conv.conv2d_workers(shape[0] * shape[1], macs) > 1
        threaded = gemm_conv.conv2d_packed(x, wmat, b8, k, stride, pad, act_code("relu6"),
                                           np.empty(shape, np.float32))
    np.testing.assert_array_equal(serial, threaded)
    np.testing.assert_allclose(serial, conv.conv2d_reference(x, wt, b, stride, pad, 1, "relu6"),
                               atol=ATOL, rtol=RTOL)


def test_small_calls_stay_serial():
    """Calls under MIN_PARALLEL_MACS run on one worker whatever the thread count."""
    import numba
    wmat, _ = gemm_conv.pack_conv2d(np.zeros((3, 3, 24, 24), np.float32))
    with numba_threads():
        small = (1, 16, 16, 24)
        assert gemm_conv.conv2d_macs(small, wmat) < config.MIN_PARALLEL_MACS
        assert gemm_conv.conv2d_workers(16, gemm_conv.conv2d_macs(small, wmat)) == 1
        big = (1, 64, 64, 24)
        assert gemm_conv.conv2d_workers(64, gemm_conv.conv2d_macs(big, wmat)) == min(
            numba.get_num_threads(), 64)
