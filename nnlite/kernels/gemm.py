"""Register-tiled matrix product with bias and clamp: the engine's 1x1 / im2col workhorse.

``out[p, :] = clamp(a[p, :K] @ w + b, lo, hi)`` for the rows ``p`` of ``a``. Every
pointwise product (expand, project, 1x1 conv) and every ``groups=1`` convolution
(after an im2col of one output row) runs through :func:`gemm_rows_nb`.

Layouts
-------
``a`` (P, >= K), float32, rows with a contiguous last axis (NHWC pixel rows are
exactly that: one row per pixel, channels contiguous); ``w`` (K, C8) and ``b``
(C8,) are *packed*: ``C8 = padded(cout)`` columns, a multiple of 8, with zero
weights and bias in the padding columns (:func:`pack_matrix`); ``out`` (P, C8).

Micro-kernel
------------
Output channels go in blocks of 3, 2 or 1 vectors of 8 (24, 16 or 8 channels),
pixels in tiles of 4. A 4 x 3 tile keeps 12 accumulators in registers for the
whole reduction over K, loading 3 weight vectors and broadcasting 4 inputs per
step: 12 FMAs per 7 loads, which keeps an AVX2 core's two FMA units busy (see
:mod:`nnlite.kernels.simd`). A last partial pixel tile recomputes its last row
and stores only the valid rows. Serial: callers parallelise over rows.
"""
import numpy as np

from nnlite import config
from nnlite.jit import njit
from nnlite.kernels.activations import ACT_NONE, ACT_RELU, ACT_RELU6, act_code, act_inplace_np
from nnlite.kernels.checks import check_array, check_bias
from nnlite.kernels.simd import (LANES, aligned_zeros, padded, vclamp, vfma, vload, vload1,
                                 vsplat, vstore)

__all__ = ["act_bounds", "gemm_rows", "gemm_rows_reference", "pack_matrix"]


def act_bounds(code):
    """Clamp bounds ``(lo, hi)`` of an activation code, as float32.

    Parameters
    ----------
    code : int
        ``ACT_NONE``, ``ACT_RELU`` or ``ACT_RELU6``.

    Returns
    -------
    lo, hi : numpy.float32
        ``(-inf, inf)``, ``(0, inf)`` or ``(0, 6)``; clamping to them is the activation.
    """
    inf = np.float32(np.inf)
    return {ACT_NONE: (-inf, inf), ACT_RELU: (np.float32(0.0), inf),
            ACT_RELU6: (np.float32(0.0), np.float32(6.0))}[code]


def pack_matrix(w, b=None):
    """Zero-pad a (K, cout) weight matrix and its bias to ``padded(cout)`` columns.

    Parameters
    ----------
    w : float32 ndarray (K, cout)
        Weights, e.g. :func:`~nnlite.kernels.layout.pointwise_weight_from_torch` output or
        an HWIO conv weight reshaped to (k*k*cin, cout).
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.

    Returns
    -------
    w8 : float32 ndarray (K, C8), C-contiguous, 64-byte aligned
        ``w`` with zero columns appended, ``C8 = padded(cout)``.
    b8 : float32 ndarray (C8,)
        ``b`` with zeros appended.
    """
    k, cout = w.shape
    c8 = padded(cout)
    w8 = aligned_zeros((k, c8))
    w8[:, :cout] = w
    b8 = aligned_zeros(c8)
    if b is not None:
        b8[:cout] = b
    return w8, b8


def gemm_rows(a, w, b=None, act="none"):
    """``act(a @ w + b)`` through the packed, register-tiled Numba kernel.

    Parameters
    ----------
    a : float32 ndarray (P, K)
        Rows (pixels).
    w : float32 ndarray (K, cout)
        Weights (unpacked; packed here).
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    act : {"none", "relu", "relu6"}
        Activation.

    Returns
    -------
    out : float32 ndarray (P, cout)
        The product. A convenience and test entry; kernels call :func:`gemm_rows_nb`
        on packed weights directly.
    """
    a = check_array("a", a, 2, "gemm_rows")
    w = check_array("w", w, 2, "gemm_rows")
    if a.shape[1] != w.shape[0]:
        raise ValueError(f"gemm_rows: a {a.shape} and w {w.shape} do not chain")
    b = check_bias(b, w.shape[1], w.shape, "gemm_rows")
    lo, hi = act_bounds(act_code(act))
    w8, b8 = pack_matrix(w, b)
    out = np.empty((a.shape[0], w8.shape[1]), np.float32)
    gemm_rows_nb(a, w8, b8, lo, hi, out)
    return np.ascontiguousarray(out[:, :w.shape[1]])


def gemm_rows_reference(a, w, b=None, act="none"):
    """NumPy reference of :func:`gemm_rows`: ``act(a @ w + b)``.

    Parameters
    ----------
    a : float32 ndarray (P, K)
        Rows.
    w : float32 ndarray (K, cout)
        Weights.
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    act : {"none", "relu", "relu6"}
        Activation.

    Returns
    -------
    out : float32 ndarray (P, cout)
        The product.
    """
    y = (a @ w).astype(np.float32)
    if b is not None:
        y += b
    return act_inplace_np(y, act_code(act))


@njit(cache=config.CACHE)
def gemm_rows_nb(a, w, b, lo, hi, out):
    """``out[p] = clamp(a[p, :K] @ w + b, lo, hi)`` for every row, packed weights.

    Parameters
    ----------
    a : float32 ndarray (P, >= K)
        Input rows; last axis contiguous. Only the first K columns are read.
    w : float32 ndarray (K, C8)
        Packed weights, C8 a multiple of 8.
    b : float32 ndarray (C8,)
        Packed bias.
    lo : float32
        Lower clamp (``-inf``, or 0 for ReLU/ReLU6).
    hi : float32
        Upper clamp (``inf``, or 6 for ReLU6).
    out : float32 ndarray (P, >= C8)
        Output rows; last axis contiguous; columns ``:C8`` are written.
    """
    n_rows = a.shape[0]
    nv = w.shape[1] // LANES
    vlo = vsplat(lo)
    vhi = vsplat(hi)
    v = 0
    while v < nv:
        left = nv - v
        c = v * LANES
        if left >= 3 and left != 4:
            for p in range(0, n_rows, 4):
                _tile4x3(a, p, n_rows, w, b, c, vlo, vhi, out)
            v += 3
        elif left >= 2:
            for p in range(0, n_rows, 4):
                _tile4x2(a, p, n_rows, w, b, c, vlo, vhi, out)
            v += 2
        else:
            for p in range(0, n_rows, 4):
                _tile4x1(a, p, n_rows, w, b, c, vlo, vhi, out)
            v += 1


@njit(cache=config.CACHE, inline="always")
def _tile4x3(a, p, n_rows, w, b, c, vlo, vhi, out):
    """Rows ``p .. p+3`` (clamped to ``n_rows``), channels ``c .. c+23``; see module doc.

    Parameters
    ----------
    a : float32 ndarray (P, >= K)
        Input rows.
    p : int
        First row of the tile.
    n_rows : int
        Number of rows P; rows past it are computed as row P-1 and not stored.
    w : float32 ndarray (K, C8)
        Packed weights.
    b : float32 ndarray (C8,)
        Packed bias.
    c : int
        First output channel (a multiple of 8).
    vlo : f32x8
        Lower clamp.
    vhi : f32x8
        Upper clamp.
    out : float32 ndarray (P, >= C8)
        Output rows.
    """
    p1 = min(p + 1, n_rows - 1)
    p2 = min(p + 2, n_rows - 1)
    p3 = min(p + 3, n_rows - 1)
    b0 = vload1(b, c)
    b1 = vload1(b, c + 8)
    b2 = vload1(b, c + 16)
    a00, a01, a02 = b0, b1, b2
    a10, a11, a12 = b0, b1, b2
    a20, a21, a22 = b0, b1, b2
    a30, a31, a32 = b0, b1, b2
    for k in range(w.shape[0]):
        w0 = vload(w, k, c)
        w1 = vload(w, k, c + 8)
        w2 = vload(w, k, c + 16)
        x = vsplat(a[p, k])
        a00 = vfma(x, w0, a00)
        a01 = vfma(x, w1, a01)
        a02 = vfma(x, w2, a02)
        x = vsplat(a[p1, k])
        a10 = vfma(x, w0, a10)
        a11 = vfma(x, w1, a11)
        a12 = vfma(x, w2, a12)
        x = vsplat(a[p2, k])
        a20 = vfma(x, w0, a20)
        a21 = vfma(x, w1, a21)
        a22 = vfma(x, w2, a22)
        x = vsplat(a[p3, k])
        a30 = vfma(x, w0, a30)
        a31 = vfma(x, w1, a31)
        a32 = vfma(x, w2, a32)
    vstore(out, p, c, vclamp(a00, vlo, vhi))
    vstore(out, p, c + 8, vclamp(a01, vlo, vhi))
    vstore(out, p, c + 16, vclamp(a02, vlo, vhi))
    if p + 1 < n_rows:
        vstore(out, p1, c, vclamp(a10, vlo, vhi))
        vstore(out, p1, c + 8, vclamp(a11, vlo, vhi))
        vstore(out, p1, c + 16, vclamp(a12, vlo, vhi))
    if p + 2 < n_rows:
        vstore(out, p2, c, vclamp(a20, vlo, vhi))
        vstore(out, p2, c + 8, vclamp(a21, vlo, vhi))
        vstore(out, p2, c + 16, vclamp(a22, vlo, vhi))
    if p + 3 < n_rows:
        vstore(out, p3, c, vclamp(a30, vlo, vhi))
        vstore(out, p3, c + 8, vclamp(a31, vlo, vhi))
        vstore(out, p3, c + 16, vclamp(a32, vlo, vhi))


@njit(cache=config.CACHE, inline="always")
def _tile4x2(a, p, n_rows, w, b, c, vlo, vhi, out):
    """As :func:`_tile4x3` for channels ``c .. c+15``.

    Parameters
    ----------
    a : float32 ndarray (P, >= K)
        Input rows.
    p : int
        First row of the tile.
    n_rows : int
        Number of rows P.
    w : float32 ndarray (K, C8)
        Packed weights.
    b : float32 ndarray (C8,)
        Packed bias.
    c : int
        First output channel.
    vlo : f32x8
        Lower clamp.
    vhi : f32x8
        Upper clamp.
    out : float32 ndarray (P, >= C8)
        Output rows.
    """
    p1 = min(p + 1, n_rows - 1)
    p2 = min(p + 2, n_rows - 1)
    p3 = min(p + 3, n_rows - 1)
    b0 = vload1(b, c)
    b1 = vload1(b, c + 8)
    a00, a01 = b0, b1
    a10, a11 = b0, b1
    a20, a21 = b0, b1
    a30, a31 = b0, b1
    for k in range(w.shape[0]):
        w0 = vload(w, k, c)
        w1 = vload(w, k, c + 8)
        x = vsplat(a[p, k])
        a00 = vfma(x, w0, a00)
        a01 = vfma(x, w1, a01)
        x = vsplat(a[p1, k])
        a10 = vfma(x, w0, a10)
        a11 = vfma(x, w1, a11)
        x = vsplat(a[p2, k])
        a20 = vfma(x, w0, a20)
        a21 = vfma(x, w1, a21)
        x = vsplat(a[p3, k])
        a30 = vfma(x, w0, a30)
        a31 = vfma(x, w1, a31)
    vstore(out, p, c, vclamp(a00, vlo, vhi))
    vstore(out, p, c + 8, vclamp(a01, vlo, vhi))
    if p + 1 < n_rows:
        vstore(out, p1, c, vclamp(a10, vlo, vhi))
        vstore(out, p1, c + 8, vclamp(a11, vlo, vhi))
    if p + 2 < n_rows:
        vstore(out, p2, c, vclamp(a20, vlo, vhi))
        vstore(out, p2, c + 8, vclamp(a21, vlo, vhi))
    if p + 3 < n_rows:
        vstore(out, p3, c, vclamp(a30, vlo, vhi))
        vstore(out, p3, c + 8, vclamp(a31, vlo, vhi))


@njit(cache=config.CACHE, inline="always")
def _tile4x1(a, p, n_rows, w, b, c, vlo, vhi, out):
    """As :func:`_tile4x3` for channels ``c .. c+7``.

    Parameters
    ----------
    a : float32 ndarray (P, >= K)
        Input rows.
    p : int
        First row of the tile.
    n_rows : int
        Number of rows P.
    w : float32 ndarray (K, C8)
        Packed weights.
    b : float32 ndarray (C8,)
        Packed bias.
    c : int
        First output channel.
    vlo : f32x8
        Lower clamp.
    vhi : f32x8
        Upper clamp.
    out : float32 ndarray (P, >= C8)
        Output rows.
    """
    p1 = min(p + 1, n_rows - 1)
    p2 = min(p + 2, n_rows - 1)
    p3 = min(p + 3, n_rows - 1)
    b0 = vload1(b, c)
    a0, a1, a2, a3 = b0, b0, b0, b0
    for k in range(w.shape[0]):
        w0 = vload(w, k, c)
        a0 = vfma(vsplat(a[p, k]), w0, a0)
        a1 = vfma(vsplat(a[p1, k]), w0, a1)
        a2 = vfma(vsplat(a[p2, k]), w0, a2)
        a3 = vfma(vsplat(a[p3, k]), w0, a3)
    vstore(out, p, c, vclamp(a0, vlo, vhi))
    if p + 1 < n_rows:
        vstore(out, p1, c, vclamp(a1, vlo, vhi))
    if p + 2 < n_rows:
        vstore(out, p2, c, vclamp(a2, vlo, vhi))
    if p + 3 < n_rows:
        vstore(out, p3, c, vclamp(a3, vlo, vhi))
