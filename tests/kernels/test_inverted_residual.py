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


# Chains: (N, H, W, cin) and blocks (cin, ce or None, cout, stride, residual); odd sizes,
# strides at the start and in the middle, expansion 1, channels not a multiple of 8.
CHAINS = [
    ((3, 13, 11, 4), [(4, 24, 4, 1, True), (4, 12, 6, 2, False), (6, None, 6, 1, True),
                      (6, 18, 5, 1, False), (5, 10, 5, 2, False), (5, 20, 5, 1, True)]),
    ((1, 17, 9, 8), [(8, 16, 8, 2, False), (8, 48, 8, 1, True), (8, 48, 8, 1, True)]),
    ((2, 7, 7, 3), [(3, 9, 3, 1, True)]),
]


def _chain_args(case, seed):
    shape, specs = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 0.5).astype(np.float32)
    blocks = []
    for i, spec in enumerate(specs):
        cin, ce, cout, stride, residual = spec
        arrays = _args((1, 1, 1, cin, ce, cout, stride, residual), seed=seed * 7 + i)
        blocks.append(arrays[1:])
    return x, blocks


@pytest.mark.parametrize("case", CHAINS)
def test_chain_matches_reference_and_the_blocks_one_by_one(case, monkeypatch):
    x, blocks = _chain_args(case, seed=3)
    want = ir.inverted_residual_chain_reference(x, blocks)
    one_by_one = x
    for args in blocks:
        one_by_one = ir.inverted_residual(one_by_one, *args)
    monkeypatch.setattr(ir.config, "MIN_PARALLEL_MACS", 0)  # threaded even on tiny shapes
    for threads in (1, None):
        with numba_threads(threads):
            got = ir.inverted_residual_chain(x, blocks)
        np.testing.assert_allclose(got, want, atol=ATOL * len(blocks), rtol=RTOL * len(blocks))
        np.testing.assert_array_equal(got, one_by_one)


@pytest.mark.parametrize("case", CHAINS[:2])
@pytest.mark.parametrize("bands, workers", [(2, 2), (3, 2), (5, 3)])
def test_chain_band_split_gives_the_same_result(case, bands, workers):
    """Halo rows recomputed by neighbouring bands and reused buffers change nothing."""
    x, blocks = _chain_args(case, seed=5)
    spec = [(ir.pack_inverted_residual(*args[:6]), args[6], args[7], args[4].shape[1])
            for args in blocks]
    chain = ir.pack_chain(spec)
    out_shape = ir.chain_shapes(x.shape, chain)[-1]
    scratch = ir.chain_scratch(x.shape, chain, workers)
    scratch[0][...] = np.nan
    got = np.full(out_shape, np.nan, np.float32)
    ir._chain_nb(x, chain[0], chain[1], chain[2], scratch[0], scratch[1], got, bands, workers)
    serial = np.empty(out_shape, np.float32)
    ir.inverted_residual_chain_packed(x, chain, serial, scratch, (1, 1))
    np.testing.assert_array_equal(got, serial)
    np.testing.assert_allclose(serial, ir.inverted_residual_chain_reference(x, blocks),
                               atol=ATOL * len(blocks), rtol=RTOL * len(blocks))


def test_chain_rows_are_what_the_next_block_reads():
    # 16 -> 8 rows (stride 2) -> 8 -> 8; the last block's rows 0..3 of 8
    lo, hi = ir._chain_rows([8, 8, 8], [2, 1, 1], 0, 4)
    assert (lo, hi) == ([0, 0, 0], [6, 5, 4])
    lo, hi = ir._chain_rows([16, 8, 8], [1, 2, 1], 4, 8)
    assert (lo, hi) == ([5, 3, 4], [16, 8, 8])


def test_chain_errors_and_plan():
    x, blocks = _chain_args(CHAINS[0], seed=1)
    with pytest.raises(ValueError, match="at least one block"):
        ir.inverted_residual_chain(x, [])
    with pytest.raises(ValueError, match="block 1"):  # block 1 expects 4 channels, gets 6
        ir.inverted_residual_chain(x, [blocks[1], blocks[1]])
    spec = [(ir.pack_inverted_residual(*a[:6]), a[6], a[7], a[4].shape[1]) for a in blocks]
    chain = ir.pack_chain(spec)
    out_shape = ir.chain_shapes(x.shape, chain)[-1]
    with numba_threads(1):
        bands, workers, cost = ir.chain_plan(x.shape, out_shape, chain)
    assert (bands, workers) == (1, 1)
    assert cost == x.shape[0] * ir._chain_band_macs(x.shape, chain, 0, out_shape[1])
    with numba_threads():  # tiny: waking a worker costs more than the split saves
        assert ir.chain_plan(x.shape, out_shape, chain)[:2] == (1, 1)
