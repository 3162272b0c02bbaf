"""inverted_residual: fused Numba kernel vs composition of conv references.

Tolerance: atol 1e-4, rtol 1e-4 (three chained float32 sums of N(0, 0.5) values).
"""
import numba
import numpy as np
import pytest

from nnlite.kernels import inverted_residual as ir
from tests.helpers import assert_matches_reference, numba_threads, random_arrays

ATOL = 1e-4
RTOL = 1e-4

# (N, H, W, cin, ce or None for expansion 1, cout, stride, residual)
CASES = [
    (1, 9, 7, 4, 24, 4, 1, True),
    (3, 13, 9, 4, 24, 6, 2, False),
    (1, 7, 13, 6, 12, 6, 1, False),
    (1, 9, 9, 8, None, 8, 1, True),
    (3, 7, 9, 8, None, 4, 2, False),
]


def _args(case, seed):
    n, h, w, cin, ce, cout, stride, residual = case
    c = ce or cin
    x, we, be, wd, bd, wp, bp = random_arrays(
        [(n, h, w, cin), ce and (cin, ce), ce and (ce,), (3, 3, c), (c,), (c, cout), (cout,)],
        seed=seed, scale=0.5)
    return (x, we, be, wd, bd, wp, bp, stride, residual)


@pytest.mark.parametrize("case", CASES)
def test_inverted_residual_matches_reference(case):
    out = assert_matches_reference(ir.inverted_residual, ir.inverted_residual_reference,
                                   _args(case, seed=case[1] * case[2]), ATOL, RTOL)
    n, h, w, _, _, cout, stride, _ = case
    assert out.shape == (n, (h - 1) // stride + 1, (w - 1) // stride + 1, cout)


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[4]])
@pytest.mark.parametrize("bands, workers", [(1, 1), (2, 2), (3, 2), (5, 3)])
def test_any_band_split_gives_the_same_result(case, bands, workers):
    """Band boundaries (recomputed expanded rows) and workers do not change the output."""
    x, we, be, wd, bd, wp, bp, stride, residual = _args(case, seed=11)
    want = ir.inverted_residual_reference(x, we, be, wd, bd, wp, bp, stride, residual)
    packed = ir.pack_inverted_residual(we, be, wd, bd, wp, bp)
    scratch = ir.inverted_residual_scratch(x.shape, packed, stride, workers)
    for s in scratch:  # the kernel must not depend on what the reused buffers hold
        s[...] = np.nan
    got = np.empty_like(want)
    ir._inverted_residual_nb(x, packed, (stride, int(residual), int(we is not None), bands),
                             scratch, got, workers)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)
    serial = np.empty_like(want)
    ir._inverted_residual_serial_nb(x, packed, (stride, int(residual), int(we is not None), 1),
                                    scratch, serial)
    np.testing.assert_array_equal(got, serial)


def test_serial_and_threaded_agree(monkeypatch):
    monkeypatch.setattr(ir.config, "MIN_PARALLEL_MACS", 0)
    args = _args(CASES[2], seed=5)
    with numba_threads(1):
        serial = ir.inverted_residual(*args)
    with numba_threads():
        threaded = ir.inverted_residual(*args)
    np.testing.assert_array_equal(serial, threaded)


def test_no_biases_means_zero_biases():
    x, we, be, wd, bd, wp, bp, stride, residual = _args(CASES[2], seed=2)
    zeros = [np.zeros_like(a) for a in (be, bd, bp)]
    np.testing.assert_array_equal(
        ir.inverted_residual(x, we, None, wd, None, wp, None, stride, residual),
        ir.inverted_residual(x, we, zeros[0], wd, zeros[1], wp, zeros[2], stride, residual))


def test_validation_errors():
    x, we, be, wd, bd, wp, bp, _, _ = _args(CASES[2], seed=1)
    with pytest.raises(ValueError, match=r"residual.*\(1, 7, 13, 6\).*\(1, 4, 7, 6\)"):
        ir.inverted_residual(x, we, be, wd, bd, wp, bp, 2, True)
    with pytest.raises(ValueError, match=r"w_dw \(3, 3, 11\)"):
        ir.inverted_residual(x, we, be, wd[:, :, :11], bd, wp, bp, 1, False)
    with pytest.raises(ValueError, match=r"\(1, 7, 13, 6\).*\(5, 12\)"):
        ir.inverted_residual(x, we[:5], be, wd, bd, wp, bp, 1, False)
    with pytest.raises(ValueError, match="float32"):
        ir.inverted_residual(x, we.astype(np.float64), be, wd, bd, wp, bp, 1, False)


def test_workers_follow_the_work():
    """Blocks under MIN_PARALLEL_MACS run serially; big ones use every allowed thread."""
    small = _args((1, 16, 16, 32, 192, 32, 1, True), seed=1)
    big = _args((1, 64, 64, 16, 96, 16, 1, True), seed=1)
    with numba_threads():
        for args, parallel in ((small, False), (big, True)):
            x, we, be, wd, bd, wp, bp, stride, _ = args
            packed = ir.pack_inverted_residual(we, be, wd, bd, wp, bp)
            out_shape = (x.shape[0], (x.shape[1] - 1) // stride + 1,
                         (x.shape[2] - 1) // stride + 1, wp.shape[1])
            macs = ir.inverted_residual_macs(x.shape, out_shape, packed)
            assert (macs >= ir.config.MIN_PARALLEL_MACS) == parallel
            _, workers = ir.inverted_residual_workers(x.shape, out_shape, packed)
            # one band per thread, at most ceil(64 / MIN_BAND_ROWS) bands
            assert workers == (min(numba.get_num_threads(), -(-64 // ir.config.MIN_BAND_ROWS))
                               if parallel else 1)
