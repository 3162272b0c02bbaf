"""``groups=1`` convolution (any k, stride, pad; 1x1 included) through the packed GEMM.

The weights are packed once (:func:`pack_conv2d`): the HWIO weights reshaped to the
im2col matrix (k*k*cin, cout), its columns zero-padded to ``C8``, a multiple of 8
(:func:`nnlite.kernels.gemm.pack_matrix`). Per output row the kernel gathers the
im2col patch (W_out, k*k*cin) (none for a 1x1 stride-1 conv, whose patch is the
input row itself) and runs one register-tiled GEMM with bias and activation
(:func:`nnlite.kernels.gemm.gemm_rows_nb`). Activations are NHWC float32.

:func:`conv2d_packed` takes checked, packed arguments and reusable scratch
(:func:`conv2d_scratch`, sized for :func:`conv2d_workers` workers); layers call it
directly. :func:`conv2d_gemm` packs and allocates per call, for the public
wrappers in :mod:`nnlite.kernels.conv`.
"""
import numpy as np

from nnlite import config
from nnlite.jit import get_num_threads, njit, prange
from nnlite.kernels.gemm import act_bounds, gemm_rows_nb, pack_matrix
from nnlite.kernels.simd import LANES, aligned_zeros, vload1, vstore1


def pack_conv2d(w, b=None):
    """Pack ``groups=1`` conv weights for :func:`conv2d_packed`.

    Parameters
    ----------
    w : float32 ndarray (k, k, cin, cout) HWIO, or (cin, cout) for a 1x1 conv
        Weights in the :func:`~nnlite.kernels.conv.conv2d` or
        :func:`~nnlite.kernels.conv.pointwise_conv2d` layout.
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.

    Returns
    -------
    wmat : float32 ndarray (k*k*cin, C8)
        The im2col weight matrix, row ``(ky*k + kx)*cin + ci``, zero-padded to
        ``C8 = padded(cout)`` columns (:func:`nnlite.kernels.gemm.pack_matrix`).
    b8 : float32 ndarray (C8,)
        Padded bias.
    """
    return pack_matrix(w.reshape(-1, w.shape[-1]), b)


def conv2d_scratch(x_shape, k, stride, pad, c8, workers):
    """Per-worker scratch rows of :func:`conv2d_packed` (reusable across calls).

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    k : int
        Kernel size.
    stride : int
        Stride.
    pad : int
        Zero padding.
    c8 : int
        Packed output channels (``wmat.shape[1]``).
    workers : int
        Parallel workers.

    Returns
    -------
    scratch : tuple of float32 ndarray
        ``(patch (workers, W_out, k*k*cin), rows (workers, W_out, C8))``; the patch
        is empty for a 1x1, stride-1, unpadded conv (it reads the input rows directly).
    """
    w_out = (x_shape[2] + 2 * pad - k) // stride + 1
    direct = k == 1 and stride == 1 and pad == 0
    n_patch = 0 if direct else k * k * x_shape[3]
    return (aligned_zeros((workers, w_out if n_patch else 0, n_patch)),
            aligned_zeros((workers, w_out, c8)))


def conv2d_macs(out_shape, wmat):
    """Multiply-adds of one :func:`conv2d_packed` call (padded output channels included).

    Parameters
    ----------
    out_shape : tuple of int
        Output shape (N, H_out, W_out, cout).
    wmat : float32 ndarray (k*k*cin, C8)
        Packed weights.

    Returns
    -------
    macs : int
        ``N * H_out * W_out * k*k*cin * C8``.
    """
    return out_shape[0] * out_shape[1] * out_shape[2] * wmat.shape[0] * wmat.shape[1]


def conv2d_workers(n_rows, work):
    """Parallel workers for :func:`conv2d_packed`.

    Parameters
    ----------
    n_rows : int
        Output rows N * H_out.
    work : int
        Multiply-adds of the call, N*H_out*W_out * k*k*cin * C8 (compared with
        ``nnlite.config.MIN_PARALLEL_MACS``).

    Returns
    -------
    workers : int
        ``min(threads, n_rows)``, or 1 for small layers.
    """
    n_threads = get_num_threads()
    if n_threads == 1 or work < config.MIN_PARALLEL_MACS:
        return 1
    return max(1, min(n_threads, n_rows))


def conv2d_packed(x, wmat, b8, k, stride, pad, code, out, scratch=None):
    """``groups=1`` convolution on packed weights into ``out`` (no argument checks).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), C-contiguous
        Input.
    wmat : float32 ndarray (k*k*cin, C8)
        Packed weights (:func:`pack_conv2d`).
    b8 : float32 ndarray (C8,)
        Packed bias.
    k : int
        Kernel size.
    stride : int
        Stride.
    pad : int
        Zero padding.
    code : int
        Activation code.
    out : float32 ndarray (N, H_out, W_out, cout), C-contiguous
        Output, overwritten; ``cout <= C8``.
    scratch : tuple of float32 ndarray or None
        From :func:`conv2d_scratch` with at least :func:`conv2d_workers` workers;
        None allocates it.

    Returns
    -------
    out : float32 ndarray
        ``out``.

    Notes
    -----
    Per output row: gather the im2col patch (W_out, k*k*cin) (skipped for a 1x1
    stride-1 conv, whose patch is the input row itself), one register-tiled GEMM
    (:func:`nnlite.kernels.gemm.gemm_rows_nb`) with bias and activation into a
    scratch row, copy the ``cout`` real channels out. Rows are split in contiguous
    chunks across workers.
    """
    n_rows = out.shape[0] * out.shape[1]
    workers = conv2d_workers(n_rows, conv2d_macs(out.shape, wmat))
    if scratch is None or scratch[1].shape[0] < workers:
        scratch = conv2d_scratch(x.shape, k, stride, pad, wmat.shape[1], workers)
    lo, hi = act_bounds(code)
    if workers == 1:
        _conv2d_gemm_serial_nb(x, wmat, b8, (k, stride, pad), lo, hi, scratch, out)
    else:
        _conv2d_gemm_nb(x, wmat, b8, (k, stride, pad), lo, hi, scratch, out, workers)
    return out


def conv2d_gemm(x, w, b, k, stride, pad, code, out_hw):
    """Pack, allocate and run :func:`conv2d_packed` (the public conv wrappers' path).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, checked.
    w : float32 ndarray (k, k, cin, cout) or (cin, cout)
        Weights.
    b : float32 ndarray (cout,)
        Bias.
    k : int
        Kernel size.
    stride : int
        Stride.
    pad : int
        Zero padding.
    code : int
        Activation code.
    out_hw : tuple of int
        Output height and width.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout)
        Output.
    """
    wmat, b8 = pack_conv2d(w, b)
    out = np.empty((x.shape[0],) + tuple(out_hw) + (w.shape[-1],), np.float32)
    return conv2d_packed(x, wmat, b8, k, stride, pad, code, out)


@njit(cache=config.CACHE, parallel=config.PARALLEL)
def _conv2d_gemm_nb(x, wmat, b8, geom, lo, hi, scratch, out, workers):
    """GEMM convolution core, ``workers`` threads over contiguous chunks of rows.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input.
    wmat : float32 ndarray (k*k*cin, C8)
        Packed weights.
    b8 : float32 ndarray (C8,)
        Packed bias.
    geom : tuple of int
        ``(k, stride, pad)``.
    lo : float32
        Lower clamp of the activation.
    hi : float32
        Upper clamp.
    scratch : tuple of float32 ndarray
        Per-worker ``(patch, rows)`` buffers.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    workers : int
        Number of parallel workers.
    """
    patch, rows = scratch
    h_out = out.shape[1]
    n_rows = out.shape[0] * h_out
    chunk = (n_rows + workers - 1) // workers
    for wk in prange(workers):
        for row in range(wk * chunk, min((wk + 1) * chunk, n_rows)):
            n = row // h_out
            _conv2d_gemm_row_nb(x, wmat, b8, geom, lo, hi, n, row - n * h_out, patch[wk],
                                rows[wk], out)


@njit(cache=config.CACHE)
def _conv2d_gemm_serial_nb(x, wmat, b8, geom, lo, hi, scratch, out):
    """Serial GEMM convolution core (worker 0's scratch).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input.
    wmat : float32 ndarray (k*k*cin, C8)
        Packed weights.
    b8 : float32 ndarray (C8,)
        Packed bias.
    geom : tuple of int
        ``(k, stride, pad)``.
    lo : float32
        Lower clamp of the activation.
    hi : float32
        Upper clamp.
    scratch : tuple of float32 ndarray
        ``(patch, rows)`` buffers.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    """
    patch, rows = scratch
    for n in range(out.shape[0]):
        for oy in range(out.shape[1]):
            _conv2d_gemm_row_nb(x, wmat, b8, geom, lo, hi, n, oy, patch[0], rows[0], out)


@njit(cache=config.CACHE)
def _conv2d_gemm_row_nb(x, wmat, b8, geom, lo, hi, n, oy, patch, rows, out):
    """One output row: im2col gather, register-tiled GEMM, copy of the real channels.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input.
    wmat : float32 ndarray (k*k*cin, C8)
        Packed weights.
    b8 : float32 ndarray (C8,)
        Packed bias.
    geom : tuple of int
        ``(k, stride, pad)``.
    lo : float32
        Lower clamp of the activation.
    hi : float32
        Upper clamp.
    n : int
        Image.
    oy : int
        Output row.
    patch : float32 ndarray (W_out, k*k*cin)
        im2col scratch (unused, may be empty, for a direct 1x1 conv).
    rows : float32 ndarray (W_out, C8)
        GEMM output scratch (unused when ``cout == C8``: the GEMM writes ``out``).
    out : float32 ndarray (N, H_out, W_out, cout)
        Output; row ``oy`` of image ``n`` is written.
    """
    k, stride, pad = geom
    h_in, w_in, cin = x.shape[1], x.shape[2], x.shape[3]
    w_out, cout = out.shape[2], out.shape[3]
    # With cout a multiple of 8 the GEMM writes the output row itself.
    dst = out[n, oy] if cout == wmat.shape[1] else rows
    if k == 1 and stride == 1 and pad == 0:
        gemm_rows_nb(x[n, oy], wmat, b8, lo, hi, dst)
    else:
        # patch[ox, (ky*k + kx)*cin + ci] = x[n, oy*s - pad + ky, ox*s - pad + kx, ci]; for
        # each ky the k*cin values are one contiguous run of x unless a column is padding.
        zero = np.float32(0.0)
        xf = x[n].reshape(-1)
        pf = patch.reshape(-1)
        span = k * cin
        n_patch = k * span
        for ox in range(w_out):
            ix0 = ox * stride - pad
            inside = ix0 >= 0 and ix0 + k <= w_in
            for ky in range(k):
                iy = oy * stride - pad + ky
                j0 = ox * n_patch + ky * span
                if iy < 0 or iy >= h_in:
                    for t in range(span):
                        pf[j0 + t] = zero
                elif inside:
                    _copy_run_nb(pf, j0, xf, (iy * w_in + ix0) * cin, span)
                else:
                    for kx in range(k):
                        ix = ix0 + kx
                        j1 = j0 + kx * cin
                        if ix < 0 or ix >= w_in:
                            for ci in range(cin):
                                pf[j1 + ci] = zero
                        else:
                            _copy_run_nb(pf, j1, xf, (iy * w_in + ix) * cin, cin)
        gemm_rows_nb(patch, wmat, b8, lo, hi, dst)
    if cout != wmat.shape[1]:
        of = out[n, oy].reshape(-1)
        rf = rows.reshape(-1)
        c8 = wmat.shape[1]
        for ox in range(w_out):
            _copy_run_nb(of, ox * cout, rf, ox * c8, cout)


@njit(cache=config.CACHE, inline="always")
def _copy_run_nb(dst, d0, src, s0, count):
    """``dst[d0:d0 + count] = src[s0:s0 + count]``, 8 floats per vector move.

    Parameters
    ----------
    dst : float32 ndarray, 1-D, contiguous
        Destination.
    d0 : int
        First destination index.
    src : float32 ndarray, 1-D, contiguous
        Source.
    s0 : int
        First source index.
    count : int
        Number of floats; both ranges must be in bounds.
    """
    c8 = count - count % LANES
    for t in range(0, c8, LANES):
        vstore1(dst, d0 + t, vload1(src, s0 + t))
    for t in range(c8, count):
        dst[d0 + t] = src[s0 + t]
