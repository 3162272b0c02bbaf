"""gemm: the packed, register-tiled GEMM vs its NumPy reference; the SIMD intrinsics.

Tolerance: atol 1e-4, rtol 1e-4 (float32 sums of up to ~300 N(0, 1) products,
fused multiply-adds in the kernel, a BLAS matmul in the reference).
"""
from pathlib import Path

import numpy as np
import pytest
from numba import njit

from nnlite.kernels import gemm, simd
from tests.helpers import assert_matches_reference, random_arrays

ATOL = 1e-4
RTOL = 1e-4


# (rows P, K, cout): every tile width (3, 2, 1 vectors, and 4 = 2 + 2), partial pixel
# tiles (P % 4 != 0), cout not a multiple of 8, K = 1.
@pytest.mark.parametrize("p, k, cout", [(1, 3, 5), (7, 13, 17), (9, 16, 96), (6, 96, 16),
                                        (5, 27, 68), (3, 1, 32), (13, 40, 24), (2, 7, 8)])
@pytest.mark.parametrize("act", ["none", "relu", "relu6"])
def test_gemm_rows_matches_reference(p, k, cout, act):
    a, w, b = random_arrays([(p, k), (k, cout), (cout,)], seed=p * k + cout)
    out = assert_matches_reference(gemm.gemm_rows, gemm.gemm_rows_reference, (a, w, b, act),
                                   ATOL, RTOL)
    assert out.shape == (p, cout)


def test_gemm_reads_only_k_columns_and_writes_only_packed_columns():
    """Extra input columns are ignored; output columns past C8 are left alone."""
    a, w, b = random_arrays([(6, 12), (9, 11), (11,)], seed=4)
    w8, b8 = gemm.pack_matrix(w, b)
    assert w8.shape == (9, 16) and w8.ctypes.data % 64 == 0
    np.testing.assert_array_equal(w8[:, 11:], 0)
    out = np.full((6, 20), 7.0, np.float32)
    lo, hi = gemm.act_bounds(0)
    gemm.gemm_rows_nb(a, w8, b8, lo, hi, out)
    np.testing.assert_allclose(out[:, :11], a[:, :9] @ w + b, atol=ATOL, rtol=RTOL)
    np.testing.assert_array_equal(out[:, 11:16], 0)
    np.testing.assert_array_equal(out[:, 16:], 7.0)


def test_clamp_keeps_nan():
    a = np.array([[np.nan, 1.0]], np.float32)
    w = np.ones((2, 8), np.float32)
    out = gemm.gemm_rows(a, w, None, "relu6")
    assert np.isnan(out).all()


@njit
def _apply(fn_id, x, y):
    for i in range(0, x.shape[0], simd.LANES):
        v = simd.vload1(x, i)
        if fn_id == 0:
            r = simd.vexp(v)
        elif fn_id == 1:
            r = simd.vclamp(v, simd.vsplat(np.float32(0.0)), simd.vsplat(np.float32(6.0)))
        else:
            r = simd.vmax(v, simd.vsplat(np.float32(0.5)))
        simd.vstore1(y, i, r)


def test_vexp_is_within_two_ulp():
    x = np.concatenate([np.linspace(-87, 88, 4000),
                        np.random.default_rng(0).uniform(-30, 0, 4000)]).astype(np.float32)
    y = np.empty_like(x)
    _apply(0, x, y)
    want = np.exp(x.astype(np.float64))
    assert np.max(np.abs(y - want) / want) < 2 * 2.0 ** -23


def test_vexp_edges():
    x = np.array([np.nan, -np.inf, -200.0, -87.0, 0.0, 1.0, -1.0, 10.0], np.float32)
    y = np.empty_like(x)
    _apply(0, x, y)
    assert np.isnan(y[0])
    assert 0 < y[1] <= 1.2e-38 and 0 < y[2] <= 1.2e-38  # flushed to ~the smallest normal
    np.testing.assert_allclose(y[3:], np.exp(x[3:].astype(np.float64)), rtol=2e-7)


def test_vclamp_and_vmax_propagate_nan():
    x = np.array([np.nan, -1.0, 3.0, 9.0, np.nan, 0.25, 0.75, -np.inf], np.float32)
    y = np.empty_like(x)
    _apply(1, x, y)
    np.testing.assert_array_equal(y, [np.nan, 0, 3, 6, np.nan, 0.25, 0.75, 0])
    _apply(2, x, y)
    np.testing.assert_array_equal(y, [np.nan, 0.5, 3, 9, np.nan, 0.5, 0.75, 0.5])


@njit
def _every_intrinsic(x, y, out):
    """Each intrinsic on every 8 lanes of x and y, into 9 rows of out."""
    for i in range(0, x.shape[0], simd.LANES):
        v, w = simd.vload1(x, i), simd.vload1(y, i)
        simd.vstore(out, 0, i, simd.vexp(v))
        simd.vstore(out, 1, i, simd.vfma(v, w, simd.vsplat(x[i])))
        simd.vstore(out, 2, i, simd.vadd(v, w))
        simd.vstore(out, 3, i, simd.vsub(v, w))
        simd.vstore(out, 4, i, simd.vmul(v, w))
        simd.vstore(out, 5, i, simd.vmax(v, w))
        simd.vstore(out, 6, i, simd.vclamp(v, simd.vsplat(np.float32(-1.0)), simd.vload1(y, i)))
        simd.vstore(out, 7, i, simd.vload(out, 6, i))
        out[8, i] = simd.vsum(v)


def _intrinsic_inputs():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal(64) * 40).astype(np.float32)
    x[[3, 17]] = np.nan
    x[[5, 30, 41]] = [-np.inf, np.inf, -120.0]
    return x, rng.standard_normal(64).astype(np.float32)


def test_python_stand_ins_match_the_intrinsics_bit_for_bit(tmp_path):
    """The NumPy stand-ins (NUMBA_DISABLE_JIT=1, or no numba) compute what the intrinsics do."""
    import os
    import subprocess
    import sys

    from nnlite.jit import JIT_DISABLED

    if JIT_DISABLED:
        pytest.skip("the JIT is off here: there are no intrinsics to compare the stand-ins with")
    x, y = _intrinsic_inputs()
    want = np.zeros((9, 64), np.float32)
    _every_intrinsic(x, y, want)
    code = ("import sys, numpy as np; from tests.kernels.test_gemm import _every_intrinsic, "
            "_intrinsic_inputs; x, y = _intrinsic_inputs(); out = np.zeros((9, 64), np.float32); "
            "_every_intrinsic(x, y, out); np.save(sys.argv[1], out)")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "py.npy")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = np.load(tmp_path / "py.npy")
    for row, name in enumerate(("vexp", "vfma", "vadd", "vsub", "vmul", "vmax", "vclamp",
                                "vload/vstore", "vsum")):
        np.testing.assert_array_equal(got[row], want[row], err_msg=name)


def test_aligned_zeros():
    for shape in [(3, 5), 7, (2, 0, 8)]:
        a = simd.aligned_zeros(shape)
        assert a.dtype == np.float32 and a.flags.c_contiguous
        assert a.size == 0 or a.ctypes.data % 64 == 0
        assert a.shape == ((shape,) if isinstance(shape, int) else shape) and not a.any()
    assert simd.padded(1) == 8 and simd.padded(16) == 16 and simd.padded(17) == 24
