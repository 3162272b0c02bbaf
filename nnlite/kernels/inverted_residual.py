"""MobileNetV2 inverted residual block as one fused Numba kernel.

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
                                       ring[wk], dw_rows[wk], p_rows[wk], out)


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
                                   p_rows[0], out)


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _inverted_residual_band_nb(x, weights, geom, n, oy0, oy1, ring, dw_row, p_row, out):
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
    out : float32 ndarray (N, H_out, W_out, cout)
        Output; rows ``oy0 .. oy1-1`` of image ``n`` are written.
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
        gemm_rows_nb(dw_row, w_project, b_project, -inf, inf, out[n, oy] if direct else p_row)
        if not direct:
            of = out[n, oy].reshape(-1)
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
