"""MobileNetV2 inverted residual block as one fused Numba kernel, alone or in chains.

Block: 1x1 expand + ReLU6 (absent for expansion 1), 3x3 depthwise (pad 1) + ReLU6,
1x1 linear project, plus the input when ``residual``. Batch-norm is folded into the
weights beforehand. Activations are NHWC float32 (channels-last: every kernel's
innermost work runs over contiguous channels).

Weight layouts are those of :mod:`nnlite.kernels.conv` (convert from PyTorch with
:mod:`nnlite.kernels.layout`):

=========  =============  ================================
argument   layout         conversion from PyTorch
=========  =============  ================================
w_expand   (cin, ce)      ``pointwise_weight_from_torch``
w_dw       (3, 3, ce)     ``depthwise_weight_from_torch``
w_project  (ce, cout)     ``pointwise_weight_from_torch``
=========  =============  ================================

The kernel runs on a packed copy (:func:`pack_inverted_residual`: channels padded
to multiples of 8, 64-byte aligned). It never materialises the expanded tensor:
each worker owns a band of output rows and keeps the three expanded input rows
that the current output row needs in a ring buffer (3 x (W + 2) x CE8 floats, the
zero padding columns included). Per output row: expand the one new input row (a
register-tiled GEMM, :mod:`nnlite.kernels.gemm`, with ReLU6), the 3x3 depthwise
row (:func:`_dw3x3_relu6_row_nb`, nine weight vectors held in registers), and the
projection GEMM straight into the output row (through a scratch row when ``cout``
is not a multiple of 8 or for the residual add). Neighbouring bands recompute the
one or two expanded rows they share. Scratch buffers are reusable across calls
(:func:`inverted_residual_scratch`).

A chain of blocks (:func:`inverted_residual_chain`) runs the same band core block after
block in one kernel call: each worker takes a band of the last block's output rows and
computes, block by block, the rows that band needs (one more on each side per 3x3
depthwise going back, the halo its neighbour computes too) into its own buffers. One
parallel call then wakes the workers once for the whole chain, where block by block each
call wakes them: on a 2-core VM that wake-up costs about as much as a 64x64 block of the
demo model saves by splitting.
"""
import numpy as np

from nnlite import config
from nnlite.jit import get_num_threads, njit, prange
from nnlite.kernels.activations import ACT_NONE, ACT_RELU6
from nnlite.kernels.checks import check_inverted_residual
from nnlite.kernels.conv import depthwise_np, pointwise_np
from nnlite.kernels.gemm import gemm_rows_nb, pack_matrix
from nnlite.kernels.simd import (LANES, aligned_zeros, padded, vadd, vclamp, vfma, vload,
                                 vload1, vmul, vsplat, vstore1)


def _bands_per_image(n_img, h_out, n_threads):
    """Number of row bands per image for the fused kernel.

    Parameters
    ----------
    n_img : int
        Batch size N.
    h_out : int
        Output rows per image.
    n_threads : int
        Numba threads available.

    Returns
    -------
    bands : int
        ``ceil(n_threads / n_img)``, at most ``ceil(h_out / MIN_BAND_ROWS)``, at least 1.
    """
    want = -(-n_threads // n_img)
    most = -(-h_out // config.MIN_BAND_ROWS)
    return max(1, min(want, most))


def pack_inverted_residual(w_expand, b_expand, w_dw, b_dw, w_project, b_project):
    """Weights of a block in the fused kernel's packed layout (channels padded to 8).

    Parameters
    ----------
    w_expand : float32 ndarray (cin, ce) or None
        1x1 expand weights; None for expansion 1.
    b_expand : float32 ndarray (ce,) or None
        Expand bias (None: zeros).
    w_dw : float32 ndarray (3, 3, ce)
        Depthwise weights.
    b_dw : float32 ndarray (ce,) or None
        Depthwise bias (None: zeros).
    w_project : float32 ndarray (ce, cout)
        Projection weights.
    b_project : float32 ndarray (cout,) or None
        Projection bias (None: zeros).

    Returns
    -------
    packed : tuple of float32 ndarray
        ``(w_expand (cin, CE8) or (0, CE8), b_expand (CE8,), w_dw (9, CE8), b_dw (CE8,),
        w_project (ce, COUT8), b_project (COUT8,))`` with ``CE8 = padded(ce)``,
        ``COUT8 = padded(cout)``, zeros in every padding lane (see
        :func:`nnlite.kernels.gemm.pack_matrix`). Arguments are assumed checked.
    """
    ce = w_dw.shape[2]
    ce8 = padded(ce)
    if w_expand is None:
        we8, be8 = aligned_zeros((0, ce8)), aligned_zeros(ce8)
    else:
        we8, be8 = pack_matrix(w_expand, b_expand)
    wd8 = aligned_zeros((9, ce8))
    wd8[:, :ce] = w_dw.reshape(9, ce)
    bd8 = aligned_zeros(ce8)
    if b_dw is not None:
        bd8[:ce] = b_dw
    wp8, bp8 = pack_matrix(w_project, b_project)
    return (we8, be8, wd8, bd8, wp8, bp8)


def inverted_residual_scratch(x_shape, packed, stride, workers):
    """Per-worker scratch buffers of the fused kernel (reusable across calls).

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    packed : tuple of float32 ndarray
        From :func:`pack_inverted_residual`.
    stride : int
        Depthwise stride.
    workers : int
        Parallel workers (threads) that will use them.

    Returns
    -------
    scratch : tuple of float32 ndarray
        ``(ring (workers, 4, W + 2, CE8), dw_rows (workers, W_out, CE8),
        project_rows (workers, W_out, COUT8))``.
    """
    w_in = x_shape[2]
    w_out = (w_in - 1) // stride + 1
    ce8, cout8 = packed[2].shape[1], packed[4].shape[1]
    return (aligned_zeros((workers, 4, w_in + 2, ce8)), aligned_zeros((workers, w_out, ce8)),
            aligned_zeros((workers, w_out, cout8)))


def inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride,
                      residual):
    """MobileNetV2 inverted residual block on NHWC input, fused Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w_expand : float32 ndarray (cin, ce) or None
        1x1 expand weights (BN folded); None for expansion 1 (then ``ce = cin`` and
        the depthwise conv reads ``x`` directly).
    b_expand : float32 ndarray (ce,) or None
        Expand bias; None means zeros. Must be None when ``w_expand`` is None.
    w_dw : float32 ndarray (3, 3, ce)
        3x3 depthwise weights (pad 1).
    b_dw : float32 ndarray (ce,) or None
        Depthwise bias; None means zeros.
    w_project : float32 ndarray (ce, cout)
        1x1 linear projection weights.
    b_project : float32 ndarray (cout,) or None
        Projection bias; None means zeros.
    stride : int
        Depthwise stride (1 or 2 in MobileNetV2; any >= 1 works).
    residual : bool
        Add ``x`` to the output; requires ``stride == 1`` and ``cout == cin``
        (checked, ValueError otherwise).

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        ``project(relu6(dw(relu6(expand(x))))) [+ x]``.

    Notes
    -----
    ``H_out = (H + 2 - 3) // stride + 1 = (H - 1) // stride + 1``, same for ``W_out``.
    Packs the weights on every call; layers pack once and call
    :func:`inverted_residual_packed`. Parallel over bands of output rows (see
    ``nnlite.config.MIN_BAND_ROWS``). The result is bit-identical for any number of
    threads: every band computes each expanded row the same way.
    """
    (x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
     out_hw) = check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project,
                                        b_project, stride, residual, "inverted_residual")
    packed = pack_inverted_residual(w_expand, b_expand, w_dw, b_dw, w_project, b_project)
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], w_project.shape[1]), np.float32)
    return inverted_residual_packed(x, packed, stride, residual, out)


def inverted_residual_packed(x, packed, stride, residual, out, scratch=None):
    """Run the fused block on packed weights into ``out`` (no argument checks).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), C-contiguous
        Input.
    packed : tuple of float32 ndarray
        From :func:`pack_inverted_residual`.
    stride : int
        Depthwise stride.
    residual : bool
        Add ``x`` (shapes already checked).
    out : float32 ndarray (N, H_out, W_out, cout), C-contiguous
        Output, overwritten.
    scratch : tuple of float32 ndarray or None
        From :func:`inverted_residual_scratch` with at least as many workers as this
        call uses (:func:`inverted_residual_workers`); None allocates it.

    Returns
    -------
    out : float32 ndarray
        ``out``.
    """
    bands, workers = inverted_residual_workers(x.shape, out.shape, packed)
    if scratch is None or scratch[0].shape[0] < workers:
        scratch = inverted_residual_scratch(x.shape, packed, stride, workers)
    geom = (stride, int(residual), int(packed[0].shape[0] > 0), bands)
    if workers == 1:
        _inverted_residual_serial_nb(x, packed, geom, scratch, out)
    else:
        _inverted_residual_nb(x, packed, geom, scratch, out, workers)
    return out


def inverted_residual_workers(x_shape, out_shape, packed):
    """Bands per image and parallel workers the fused kernel uses now.

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    out_shape : tuple of int
        Output shape (N, H_out, W_out, cout).
    packed : tuple of float32 ndarray
        From :func:`pack_inverted_residual` (its shapes give the multiply-adds).

    Returns
    -------
    bands : int
        Row bands per image (:func:`_bands_per_image` of Numba's current thread count;
        1 when the block is too small to pay for threads, see
        ``nnlite.config.MIN_PARALLEL_MACS``).
    workers : int
        Threads that share the ``N * bands`` tasks; 1 means the serial core runs.
    """
    n_threads = get_num_threads()
    if n_threads == 1 or inverted_residual_macs(x_shape, out_shape, packed) < config.MIN_PARALLEL_MACS:
        return 1, 1
    n_img, h_out = x_shape[0], out_shape[1]
    bands = _bands_per_image(n_img, h_out, n_threads)
    return bands, min(n_threads, n_img * bands)


def inverted_residual_macs(x_shape, out_shape, packed):
    """Multiply-adds of one fused block call (padded channels included).

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    out_shape : tuple of int
        Output shape (N, H_out, W_out, cout).
    packed : tuple of float32 ndarray
        From :func:`pack_inverted_residual`.

    Returns
    -------
    macs : int
        Expand ``N*H*W * cin * CE8`` (0 without expansion) + depthwise
        ``N*H_out*W_out * 9 * CE8`` + project ``N*H_out*W_out * CE8 * COUT8``.
    """
    ce8, cout8 = packed[2].shape[1], packed[4].shape[1]
    pix_in = x_shape[0] * x_shape[1] * x_shape[2]
    pix_out = out_shape[0] * out_shape[1] * out_shape[2]
    return pix_in * packed[0].shape[0] * ce8 + pix_out * ce8 * (9 + cout8)


@njit(cache=config.CACHE, parallel=config.PARALLEL)
def _inverted_residual_nb(x, weights, geom, scratch, out, workers):
    """Fused inverted residual core, ``workers`` threads over (image, band) tasks.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    weights : tuple of float32 ndarray
        Packed weights (:func:`pack_inverted_residual`).
    geom : tuple of int
        ``(stride, residual, has_expand, bands_per_image)``.
    scratch : tuple of float32 ndarray
        Per-worker buffers (:func:`inverted_residual_scratch`).
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    workers : int
        Number of parallel workers; task ``t`` runs on worker ``t % workers``.
    """
    bands = geom[3]
    h_out = out.shape[1]
    band_rows = (h_out + bands - 1) // bands
    n_tasks = x.shape[0] * bands
    ring, dw_rows, p_rows = scratch
    for wk in prange(workers):
        for task in range(wk, n_tasks, workers):
            n = task // bands
            oy0 = (task - n * bands) * band_rows
            _inverted_residual_band_nb(x, weights, geom, n, oy0, min(oy0 + band_rows, h_out),
                                       ring[wk], dw_rows[wk], p_rows[wk], out, n)


@njit(cache=config.CACHE)
def _inverted_residual_serial_nb(x, weights, geom, scratch, out):
    """Serial fused inverted residual core: every image in one band.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    weights : tuple of float32 ndarray
        Packed weights.
    geom : tuple of int
        ``(stride, residual, has_expand, bands_per_image)``; bands is ignored.
    scratch : tuple of float32 ndarray
        Buffers; worker 0's are used.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    """
    ring, dw_rows, p_rows = scratch
    for n in range(x.shape[0]):
        _inverted_residual_band_nb(x, weights, geom, n, 0, out.shape[1], ring[0], dw_rows[0],
                                   p_rows[0], out, n)


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _inverted_residual_band_nb(x, weights, geom, n, oy0, oy1, ring, dw_row, p_row, out, n_out):
    """Fused block for output rows ``oy0 .. oy1-1`` of image ``n``.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    weights : tuple of float32 ndarray
        Packed weights.
    geom : tuple of int
        As in :func:`_inverted_residual_nb`.
    n : int
        Image index.
    oy0 : int
        First output row of the band.
    oy1 : int
        One past the last output row of the band.
    ring : float32 ndarray (4, W + 2, CE8)
        Slots 0-2: expanded (post-ReLU6) input rows, ``ring[iy % 3, 1 + ix]`` is pixel
        ``(iy, ix)``; columns 0 and W + 1 are the depthwise zero padding. Slot 3 is
        the all-zero padding row. Zeroed here where needed, so the buffer may hold
        anything on entry.
    dw_row : float32 ndarray (W_out, CE8)
        Depthwise output row (scratch).
    p_row : float32 ndarray (W_out, COUT8)
        Projection output row (scratch).
    out : float32 ndarray (N', H_out, W_out, cout)
        Output; rows ``oy0 .. oy1-1`` of image ``n_out`` are written.
    n_out : int
        Image index in ``out`` (a block chain's per-worker buffers hold one image).
    """
    w_expand, b_expand, w_dw, b_dw, w_project, b_project = weights
    stride, residual, has_expand = geom[0], geom[1], geom[2]
    h_in, w_in, cin = x.shape[1], x.shape[2], x.shape[3]
    ce8 = w_dw.shape[1]
    cout8 = w_project.shape[1]
    w_out, cout = out.shape[2], out.shape[3]
    zero = np.float32(0.0)
    six = np.float32(6.0)
    inf = np.float32(np.inf)
    for s in range(3):
        for c in range(ce8):
            ring[s, 0, c] = zero
            ring[s, w_in + 1, c] = zero
    if oy0 * stride - 1 < 0 or (oy1 - 1) * stride + 1 >= h_in:
        ring[3, :, :] = zero
    tag = np.full(3, -10, np.int64)
    ring_f = ring.reshape(-1)
    slot_size = (w_in + 2) * ce8
    dw_f = dw_row.reshape(-1)
    for oy in range(oy0, oy1):
        iy0 = oy * stride - 1  # first of the 3 input rows; iy0 + 1 <= H - 1 always
        for iy in range(max(iy0, 0), min(iy0 + 3, h_in)):
            slot = iy % 3
            if tag[slot] != iy:
                tag[slot] = iy
                dst = ring[slot, 1:w_in + 1]
                if has_expand:
                    gemm_rows_nb(x[n, iy], w_expand, b_expand, zero, six, dst)
                else:
                    xr = x[n, iy]
                    for ix in range(w_in):
                        for c in range(cin):
                            dst[ix, c] = xr[ix, c]
                        for c in range(cin, ce8):
                            dst[ix, c] = zero
        s0 = iy0 % 3 if iy0 >= 0 else 3
        s2 = (iy0 + 2) % 3 if iy0 + 2 < h_in else 3
        _dw3x3_relu6_row_nb(ring_f, s0 * slot_size, ((iy0 + 1) % 3) * slot_size,
                            s2 * slot_size, w_dw, b_dw, stride, dw_f, w_out)
        # 1x1 linear projection (+ residual) into the output row: straight into it
        # when cout is a multiple of 8, else through p_row.
        direct = cout == cout8 and not residual
        gemm_rows_nb(dw_row, w_project, b_project, -inf, inf, out[n_out, oy] if direct else p_row)
        if not direct:
            of = out[n_out, oy].reshape(-1)
            pf = p_row.reshape(-1)
            if residual:
                _add_rows_nb(of, pf, x[n, oy].reshape(-1), w_out, cout, cout8)
            else:
                for ox in range(w_out):
                    for co in range(cout):
                        of[ox * cout + co] = pf[ox * cout8 + co]


@njit(cache=config.CACHE, inline="always")
def _add_rows_nb(of, pf, xf, w_out, cout, cout8):
    """``of[ox, :cout] = pf[ox, :cout] + xf[ox, :cout]`` on flat rows (the residual add).

    Parameters
    ----------
    of : float32 ndarray (W_out * cout,)
        Output row, flat.
    pf : float32 ndarray (W_out * COUT8,)
        Projection row, flat, padded channels.
    xf : float32 ndarray (W_out * cout,)
        Input row, flat.
    w_out : int
        Pixels.
    cout : int
        Channels.
    cout8 : int
        Padded channels of ``pf``.
    """
    c8 = cout - cout % LANES
    for ox in range(w_out):
        o = ox * cout
        q = ox * cout8
        for c in range(0, c8, LANES):
            vstore1(of, o + c, vadd(vload1(pf, q + c), vload1(xf, o + c)))
        for c in range(c8, cout):
            of[o + c] = pf[q + c] + xf[o + c]


@njit(cache=config.CACHE)
def _dw3x3_relu6_row_nb(ring, o0, o1, o2, w_dw, b_dw, stride, dw, w_out):
    """One output row of a 3x3 depthwise conv + ReLU6 from three padded input rows.

    Parameters
    ----------
    ring : float32 ndarray, 1-D
        The ring buffer, flat; each input row is ``(W + 2) * CE8`` floats with one
        zero pixel on each side (all zeros for a padding row): pixel ``i`` of a row
        is input column ``i - 1``.
    o0 : int
        Offset in ``ring`` of input row ``oy*stride - 1``.
    o1 : int
        Offset of input row ``oy*stride``.
    o2 : int
        Offset of input row ``oy*stride + 1``.
    w_dw : float32 ndarray (9, CE8)
        Packed depthwise weights, tap ``ky*3 + kx``.
    b_dw : float32 ndarray (CE8,)
        Packed depthwise bias.
    stride : int
        Stride along the row.
    dw : float32 ndarray (W_out * CE8,)
        Output row, flat, overwritten.
    w_out : int
        Output pixels.

    Notes
    -----
    The row goes in tiles of a few output pixels whose input columns (3 rows x
    ``tile * stride + 2`` pixels x CE8 channels, ~12 KB) stay in L1; within a tile,
    per 8 channels, the nine weight vectors and the bias stay in registers while the
    loop walks the tile's pixels two at a time, the pair sharing the input columns
    they both read (stride 1: 12 loads per 18 FMAs).
    """
    vlo = vsplat(np.float32(0.0))
    vhi = vsplat(np.float32(6.0))
    ce8 = w_dw.shape[1]
    step = stride * ce8
    c1 = ce8
    c2 = 2 * ce8
    c3 = 3 * ce8
    c4 = 4 * ce8
    tile = max(2, min(16, (3072 // ce8 - 2) // stride))
    tile += tile % 2
    for ox0 in range(0, w_out, tile):
        ox1 = min(ox0 + tile, w_out)
        pairs = ox0 + (ox1 - ox0) // 2 * 2
        for c in range(0, ce8, LANES):
            k0 = vload(w_dw, 0, c)
            k1 = vload(w_dw, 1, c)
            k2 = vload(w_dw, 2, c)
            k3 = vload(w_dw, 3, c)
            k4 = vload(w_dw, 4, c)
            k5 = vload(w_dw, 5, c)
            k6 = vload(w_dw, 6, c)
            k7 = vload(w_dw, 7, c)
            k8 = vload(w_dw, 8, c)
            bias = vload1(b_dw, c)
            j = ox0 * step + c
            # Two outputs per step share the input columns they both read.
            for ox in range(ox0, pairs, 2):
                if stride == 1:
                    # Per output two partial sums (rows 0 + 2, row 1) halve the FMA chain.
                    a = vload1(ring, o0 + j)
                    b = vload1(ring, o0 + j + c1)
                    s = vfma(a, k0, bias)
                    u = vfma(b, k0, bias)
                    a = vload1(ring, o0 + j + c2)
                    s = vfma(b, k1, s)
                    u = vfma(a, k1, u)
                    s = vfma(a, k2, s)
                    u = vfma(vload1(ring, o0 + j + c3), k2, u)
                    a = vload1(ring, o1 + j)
                    b = vload1(ring, o1 + j + c1)
                    s2 = vmul(a, k3)
                    u2 = vmul(b, k3)
                    a = vload1(ring, o1 + j + c2)
                    s2 = vfma(b, k4, s2)
                    u2 = vfma(a, k4, u2)
                    s2 = vfma(a, k5, s2)
                    u2 = vfma(vload1(ring, o1 + j + c3), k5, u2)
                    a = vload1(ring, o2 + j)
                    b = vload1(ring, o2 + j + c1)
                    s = vfma(a, k6, s)
                    u = vfma(b, k6, u)
                    a = vload1(ring, o2 + j + c2)
                    s = vfma(b, k7, s)
                    u = vfma(a, k7, u)
                    s = vadd(vfma(a, k8, s), s2)
                    u = vadd(vfma(vload1(ring, o2 + j + c3), k8, u), u2)
                else:
                    # stride 2: the second output starts two columns later.
                    a = vload1(ring, o0 + j + c2)
                    s = vfma(vload1(ring, o0 + j + c1), k1, vfma(vload1(ring, o0 + j), k0, bias))
                    s = vfma(a, k2, s)
                    u = vfma(vload1(ring, o0 + j + c4), k2,
                             vfma(vload1(ring, o0 + j + c3), k1, vfma(a, k0, bias)))
                    a = vload1(ring, o1 + j + c2)
                    s2 = vfma(vload1(ring, o1 + j + c1), k4, vmul(vload1(ring, o1 + j), k3))
                    s2 = vfma(a, k5, s2)
                    u2 = vfma(vload1(ring, o1 + j + c4), k5,
                              vfma(vload1(ring, o1 + j + c3), k4, vmul(a, k3)))
                    a = vload1(ring, o2 + j + c2)
                    s = vfma(vload1(ring, o2 + j + c1), k7, vfma(vload1(ring, o2 + j), k6, s))
                    s = vadd(vfma(a, k8, s), s2)
                    u = vfma(vload1(ring, o2 + j + c4), k8,
                             vfma(vload1(ring, o2 + j + c3), k7, vfma(a, k6, u)))
                    u = vadd(u, u2)
                vstore1(dw, ox * ce8 + c, vclamp(s, vlo, vhi))
                vstore1(dw, (ox + 1) * ce8 + c, vclamp(u, vlo, vhi))
                j += 2 * step
            if pairs < ox1:
                s = vfma(vload1(ring, o0 + j), k0, bias)
                s = vfma(vload1(ring, o0 + j + c1), k1, s)
                s = vfma(vload1(ring, o0 + j + c2), k2, s)
                s = vfma(vload1(ring, o1 + j), k3, s)
                s = vfma(vload1(ring, o1 + j + c1), k4, s)
                s = vfma(vload1(ring, o1 + j + c2), k5, s)
                s = vfma(vload1(ring, o2 + j), k6, s)
                s = vfma(vload1(ring, o2 + j + c1), k7, s)
                s = vfma(vload1(ring, o2 + j + c2), k8, s)
                vstore1(dw, pairs * ce8 + c, vclamp(s, vlo, vhi))


#: Floats between the starts of a chain's arrays in its flat buffers (64 bytes: every array
#: starts on a cache line, as :func:`~nnlite.kernels.simd.aligned_zeros` gives single blocks).
_ALIGN = 16


def _layout(shapes):
    """Offsets of arrays of ``shapes`` laid end to end, each at a multiple of ``_ALIGN`` floats.

    -> (int64 (len(shapes), 5) table of ``[offset, d0, d1, d2, d3]`` (unused dims 1), total floats).
    """
    tab = np.ones((len(shapes), 5), np.int64)
    at = 0
    for j, shape in enumerate(shapes):
        tab[j, 0] = at
        tab[j, 1:1 + len(shape)] = shape
        at += -(-int(np.prod(shape, dtype=np.int64)) // _ALIGN) * _ALIGN
    return tab, max(at, _ALIGN)


def pack_chain(blocks, weights=True):
    """Several fused blocks that run one after another, as one chain.

    Parameters
    ----------
    blocks : sequence of (packed, stride, residual, cout)
        At least one block, in order, each ``packed`` from
        :func:`pack_inverted_residual` with its output channels ``cout``; a block's
        ``cin`` is its predecessor's ``cout``.
    weights : bool
        False: leave ``flat`` None, a layout that :func:`chain_shapes`,
        :func:`chain_plan` and :func:`chain_scratch` can plan with, without a copy of
        the weights.

    Returns
    -------
    chain : tuple
        ``(flat, table, geoms, couts)``: every block's six packed arrays laid end to end
        in one aligned float32 array ``flat`` (a handful of plain arrays, not tuples of
        tuples, is what keeps the kernel quick to compile), ``table`` int64 (k, 6, 5)
        ``[offset, d0, d1, d2, d3]`` of array ``j`` of block ``i``, ``geoms`` int64
        (k, 4) ``(stride, residual, has_expand, 1)`` per block, and the blocks' output
        channels.
    """
    if len(blocks) < 1:
        raise ValueError("a chain has at least one block")
    arrays = [a for b in blocks for a in b[0]]
    tab, size = _layout([a.shape for a in arrays])
    flat = aligned_zeros(size) if weights else None
    for a, row in zip(arrays, tab if weights else ()):
        flat[row[0]:row[0] + a.size] = a.reshape(-1)
    geoms = np.array([(int(b[1]), int(b[2]), int(b[0][0].shape[0] > 0), 1) for b in blocks],
                     np.int64)
    return flat, tab.reshape(len(blocks), 6, 5), geoms, tuple(int(b[3]) for b in blocks)


def chain_shapes(x_shape, chain):
    """Output shape of every block of a chain for an input of shape ``x_shape``.

    Parameters
    ----------
    x_shape : tuple of int
        (N, H, W, cin).
    chain : tuple
        From :func:`pack_chain`.

    Returns
    -------
    shapes : list of tuple of int
        One (N, H_out, W_out, cout) per block, the last one the chain's output.
    """
    _, _, geoms, couts = chain
    shapes, (n, h, w) = [], x_shape[:3]
    for i, cout in enumerate(couts):
        s = int(geoms[i, 0])
        h, w = (h - 1) // s + 1, (w - 1) // s + 1
        shapes.append((n, h, w, cout))
    return shapes


def chain_plan(x_shape, out_shape, chain):
    """How a chain call splits its work, and what it costs.

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    out_shape : tuple of int
        Output shape of the chain's last block.
    chain : tuple
        From :func:`pack_chain`.

    Returns
    -------
    bands : int
        Row bands per image of the last block's output.
    workers : int
        Threads sharing the ``N * bands`` tasks; 1 means the serial core runs.
    cost : int
        Multiply-adds of the busiest worker, halo rows included, plus
        ``nnlite.config.MIN_PARALLEL_MACS // 2`` for waking the workers when parallel
        (splitting one call of ``MIN_PARALLEL_MACS`` in two saves as much as that).

    Notes
    -----
    The call goes parallel when that costs less than running serially.
    """
    serial = _chain_band_macs(x_shape, chain, 0, out_shape[1]) * x_shape[0]
    n_threads = get_num_threads()
    if n_threads == 1:
        return 1, 1, serial
    bands = _bands_per_image(x_shape[0], out_shape[1], n_threads)
    workers = min(n_threads, x_shape[0] * bands)
    rows = -(-out_shape[1] // bands)
    busiest = max(_chain_band_macs(x_shape, chain, a, min(a + rows, out_shape[1]))
                  for a in range(0, out_shape[1], rows))
    tasks = -(-(x_shape[0] * bands) // workers)  # (image, band) tasks of the busiest worker
    cost = tasks * busiest + config.MIN_PARALLEL_MACS // 2
    if workers == 1 or cost >= serial:
        return 1, 1, serial
    return bands, workers, cost


def _chain_rows(heights, strides, oy0, oy1):
    """Rows ``[lo, hi)`` each block of a chain computes for rows ``oy0 .. oy1-1`` of its output.

    heights: output rows of each block; strides: each block's stride. The same rule as
    :func:`_chain_task_nb`: block ``i`` computes what block ``i + 1``'s 3x3 depthwise reads.
    """
    k = len(heights)
    lo, hi = [0] * k, [0] * k
    lo[-1], hi[-1] = oy0, oy1
    for i in range(k - 1, 0, -1):
        lo[i - 1] = max(0, lo[i] * strides[i] - 1)
        hi[i - 1] = min(heights[i - 1], (hi[i] - 1) * strides[i] + 2)
    return lo, hi


def _chain_dims(chain, i):
    """(has-expand cin, CE8, COUT8) of block ``i`` of a chain, from its table."""
    tab = chain[1]
    return int(tab[i, 0, 1]), int(tab[i, 2, 2]), int(tab[i, 4, 2])


def _chain_band_macs(x_shape, chain, oy0, oy1):
    """Multiply-adds of one image's output rows ``oy0 .. oy1-1`` through a chain, halos included."""
    shapes = chain_shapes(x_shape, chain)
    strides = [int(s) for s in chain[2][:, 0]]
    lo, hi = _chain_rows([sh[1] for sh in shapes], strides, oy0, oy1)
    macs, h_in, w_in = 0, x_shape[1], x_shape[2]
    for i, s in enumerate(strides):
        cin_expand, ce8, cout8 = _chain_dims(chain, i)
        rows_in = min(h_in, (hi[i] - 1) * s + 2) - max(0, lo[i] * s - 1)
        w_out = shapes[i][2]
        macs += rows_in * w_in * cin_expand * ce8 + (hi[i] - lo[i]) * w_out * ce8 * (9 + cout8)
        h_in, w_in = shapes[i][1], w_out
    return macs


def chain_scratch(x_shape, chain, workers):
    """Per-worker buffers of a chain call (reusable across calls with this input shape).

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    chain : tuple
        From :func:`pack_chain`.
    workers : int
        Parallel workers that will use them.

    Returns
    -------
    scratch : tuple
        ``(flat, table)``: ``flat`` float32 (workers, S), a row per worker, aligned;
        ``table`` int64 (k, 4, 5) ``[offset, d0, d1, d2, d3]`` in a row of, per block,
        its output for the rows a worker computes (1, H_i, W_i, cout_i) (unused for the
        last block, which writes the caller's ``out``) and :func:`inverted_residual_scratch`'s
        ring (4, W + 2, CE8), depthwise row (W_out, CE8) and projection row (W_out, COUT8).
    """
    shapes, h_w = [], x_shape[1:3]
    for i, s in enumerate(chain_shapes(x_shape, chain)):
        _, ce8, cout8 = _chain_dims(chain, i)
        act = (1,) + s[1:] if i < len(chain[3]) - 1 else (1, 1, 1, 1)
        shapes += [act, (4, h_w[1] + 2, ce8), (s[2], ce8), (s[2], cout8)]
        h_w = s[1:3]
    tab, size = _layout(shapes)
    return aligned_zeros((workers, size)), tab.reshape(-1, 4, 5)


def inverted_residual_chain(x, blocks):
    """Several inverted residual blocks one after another, as one fused Numba chain.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input of the first block.
    blocks : sequence of tuple
        At least one block, each ``(w_expand, b_expand, w_dw, b_dw, w_project, b_project,
        stride, residual)`` as the arguments of :func:`inverted_residual`.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        The last block's output; bit-identical to calling :func:`inverted_residual` block
        by block.

    Notes
    -----
    Packs the weights on every call; layers pack once (``nnlite.layers.BlockChain``).
    """
    if len(blocks) < 1:
        raise ValueError("inverted_residual_chain: a chain has at least one block")
    spec, probe = [], x
    for i, args in enumerate(blocks):
        # Each block is checked against an (uninitialised) array of its predecessor's output shape.
        (checked, we, be, wd, bd, wp, bp, stride, residual,
         out_hw) = check_inverted_residual(probe, *args, f"inverted_residual_chain block {i}")
        if i == 0:
            x = checked
        spec.append((pack_inverted_residual(we, be, wd, bd, wp, bp), stride, residual,
                     wp.shape[1]))
        probe = np.empty((x.shape[0], out_hw[0], out_hw[1], wp.shape[1]), np.float32)
    out = probe
    return inverted_residual_chain_packed(x, pack_chain(spec), out)


def inverted_residual_chain_packed(x, chain, out, scratch=None, plan=None):
    """Run a chain of fused blocks on packed weights into ``out`` (no argument checks).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), C-contiguous
        Input of the first block.
    chain : tuple
        From :func:`pack_chain`, with its weights.
    out : float32 ndarray (N, H_out, W_out, cout), C-contiguous
        Output of the last block, overwritten.
    scratch : tuple or None
        From :func:`chain_scratch` with at least as many workers as this call uses
        (:func:`chain_plan`); None allocates it.
    plan : tuple of int or None
        ``(bands, workers)`` from :func:`chain_plan` for these shapes and the current
        thread count (a layer keeps it); None works it out.

    Returns
    -------
    out : float32 ndarray
        ``out``, bit-identical to running the blocks one by one with
        :func:`inverted_residual_packed`, for any number of threads.

    Notes
    -----
    One parallel call for the whole chain: each worker takes a band of the last
    block's output rows and runs every block of the chain over the rows that band
    needs (its rows grow by one per 3x3 depthwise going back, the halo shared with
    the neighbouring band, which computes those rows too), keeping the intermediate
    activations in its own buffers. Waking the workers is paid once per chain
    instead of once per block, at the price of the halo rows.
    """
    flat, tab, geoms, _ = chain
    bands, workers = chain_plan(x.shape, out.shape, chain)[:2] if plan is None else plan
    if scratch is None or scratch[0].shape[0] < workers:
        scratch = chain_scratch(x.shape, chain, workers)
    if workers == 1:
        # Called from here rather than from a serial Numba loop: compiling that loop would
        # optimise the whole inlined task once more (about a second of start-up).
        for n in range(x.shape[0]):
            _chain_task_nb(x, flat, tab, geoms, scratch[0][0], scratch[1], out, n, 0, out.shape[1])
    else:
        _chain_nb(x, flat, tab, geoms, scratch[0], scratch[1], out, bands, workers)
    return out


@njit(cache=config.CACHE, parallel=config.PARALLEL)
def _chain_nb(x, flat, tab, geoms, work, work_tab, out, bands, workers):
    """Block chain core, ``workers`` threads over (image, band) tasks.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    flat, tab, geoms : ndarray
        The chain (:func:`pack_chain`).
    work, work_tab : ndarray
        The per-worker buffers (:func:`chain_scratch`).
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    bands : int
        Row bands per image of ``out``.
    workers : int
        Parallel workers; task ``t`` runs on worker ``t % workers``.
    """
    h_out = out.shape[1]
    band_rows = (h_out + bands - 1) // bands
    n_tasks = x.shape[0] * bands
    for wk in prange(workers):
        for task in range(wk, n_tasks, workers):
            n = task // bands
            oy0 = (task - n * bands) * band_rows
            # int64, as a call from Python passes them: one specialisation of the task
            _chain_task_nb(x, flat, tab, geoms, work[wk], work_tab, out, np.int64(n),
                           np.int64(oy0), np.int64(min(oy0 + band_rows, h_out)))


@njit(cache=config.CACHE)
def _view2(flat, row):
    """The 2-D array ``row`` = [offset, d0, d1, ...] of a chain table describes in ``flat``."""
    return flat[row[0]:row[0] + row[1] * row[2]].reshape((row[1], row[2]))


@njit(cache=config.CACHE)
def _view1(flat, row):
    """The 1-D array ``row`` = [offset, d0, ...] of a chain table describes in ``flat``."""
    return flat[row[0]:row[0] + row[1]].reshape((row[1],))


@njit(cache=config.CACHE)
def _chain_task_nb(x, flat, tab, geoms, work, work_tab, out, n, oy0, oy1):
    """Output rows ``oy0 .. oy1-1`` of image ``n`` through the whole chain, in one worker's buffers.

    Going back from the last block, block ``i``'s rows are those block ``i + 1``'s
    3x3 depthwise reads: ``[lo * s - 1, (hi - 1) * s + 2)`` clipped to the image for
    the stride ``s`` of block ``i + 1``. Each block then runs forward over its rows
    with the same band core as single blocks, so every row is computed exactly as
    the block-by-block path computes it. ``work`` is the worker's row of the scratch.
    """
    k = geoms.shape[0]
    lo = np.empty(k, np.int64)
    hi = np.empty(k, np.int64)
    lo[k - 1] = oy0
    hi[k - 1] = oy1
    for i in range(k - 1, 0, -1):
        s = geoms[i, 0]
        lo[i - 1] = max(0, lo[i] * s - 1)
        hi[i - 1] = min(work_tab[i - 1, 0, 2], (hi[i] - 1) * s + 2)
    src = x
    n_src = n
    for i in range(k):
        t = tab[i]
        weights = (_view2(flat, t[0]), _view1(flat, t[1]), _view2(flat, t[2]),
                   _view1(flat, t[3]), _view2(flat, t[4]), _view1(flat, t[5]))
        geom = (geoms[i, 0], geoms[i, 1], geoms[i, 2], geoms[i, 3])
        w = work_tab[i]
        ring = work[w[1, 0]:w[1, 0] + w[1, 1] * w[1, 2] * w[1, 3]].reshape((w[1, 1], w[1, 2], w[1, 3]))
        last = i == k - 1
        a = w[0]
        act = work[a[0]:a[0] + a[1] * a[2] * a[3] * a[4]].reshape((a[1], a[2], a[3], a[4]))
        dst = out if last else act
        n_dst = n if last else np.int64(0)
        _inverted_residual_band_nb(src, weights, geom, n_src, lo[i], hi[i], ring,
                                   _view2(work, w[2]), _view2(work, w[3]), dst, n_dst)
        src = act
        n_src = np.int64(0)


def inverted_residual_reference(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project,
                                stride, residual):
    """MobileNetV2 inverted residual block, NumPy reference of :func:`inverted_residual`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w_expand : float32 ndarray (cin, ce) or None
        1x1 expand weights; None for expansion 1.
    b_expand : float32 ndarray (ce,) or None
        Expand bias; None means zeros.
    w_dw : float32 ndarray (3, 3, ce)
        3x3 depthwise weights (pad 1).
    b_dw : float32 ndarray (ce,) or None
        Depthwise bias; None means zeros.
    w_project : float32 ndarray (ce, cout)
        1x1 linear projection weights.
    b_project : float32 ndarray (cout,) or None
        Projection bias; None means zeros.
    stride : int
        Depthwise stride.
    residual : bool
        Add ``x`` to the output (requires matching shapes).

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        Block output.

    Notes
    -----
    ``H_out = (H - 1) // stride + 1``. Composition of the pointwise and depthwise
    references of :mod:`nnlite.kernels.conv`.
    """
    (x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
     _) = check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project,
                                   b_project, stride, residual,
                                   "inverted_residual_reference")
    y = x if w_expand is None else pointwise_np(x, w_expand, b_expand, ACT_RELU6)
    y = depthwise_np(y, w_dw, b_dw, stride, 1, ACT_RELU6)
    y = pointwise_np(y, w_project, b_project, ACT_NONE)
    if residual:
        y += x
    return y


def inverted_residual_chain_reference(x, blocks):
    """Blocks one after another, NumPy reference of :func:`inverted_residual_chain`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input of the first block.
    blocks : sequence of tuple
        Each ``(w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual)``.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        :func:`inverted_residual_reference` applied block by block.
    """
    for args in blocks:
        x = inverted_residual_reference(x, *args)
    return x
