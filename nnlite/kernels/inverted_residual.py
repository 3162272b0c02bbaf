"""MobileNetV2 inverted residual block as one fused Numba kernel.

Block: 1x1 expand + ReLU6 (absent for expansion 1), 3x3 depthwise (pad 1) + ReLU6,
1x1 linear project, plus the input when ``residual``. Batch-norm is folded into the
weights beforehand. Activations are NHWC float32.

Weight layouts are those of :mod:`nnlite.kernels.conv` (convert from PyTorch with
the functions named there):

=========  =============  ==================================================
argument   layout         conversion from PyTorch
=========  =============  ==================================================
w_expand   (cin, ce)      :func:`~nnlite.kernels.conv.pointwise_weight_from_torch`
w_dw       (3, 3, ce)     :func:`~nnlite.kernels.conv.depthwise_weight_from_torch`
w_project  (ce, cout)     :func:`~nnlite.kernels.conv.pointwise_weight_from_torch`
=========  =============  ==================================================

The fused kernel never materialises the expanded tensor: each thread owns a band
of output rows and keeps the three expanded input rows that the current output row
needs in a small ring buffer (3 x W x ce floats), so expand, depthwise and project
all work on data in cache. Neighbouring bands recompute the one or two expanded
rows they share.
"""
import numpy as np
from nnlite._jit import get_num_threads, njit, prange

from nnlite import config
from nnlite.kernels.activations import ACT_NONE, ACT_RELU6
from nnlite.kernels.conv import (_check_array, _check_bias, _check_int, _depthwise_np,
                                 _out_size, _pointwise_np, _pw_rows_nb)
from nnlite.kernels.gemm import gemm_rows_nb, pack_matrix
from nnlite.kernels.simd import (LANES, aligned_zeros, padded, vadd, vclamp, vfma, vload,
                                 vload1, vmul, vsplat, vstore1)


def _check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project,
                             stride, residual, where):
    """Validate :func:`inverted_residual` arguments; return them ready for a core.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input.
    w_expand : float32 ndarray (cin, ce) or None
        Expand weights.
    b_expand : float32 ndarray (ce,) or None
        Expand bias.
    w_dw : float32 ndarray (3, 3, ce)
        Depthwise weights.
    b_dw : float32 ndarray (ce,) or None
        Depthwise bias.
    w_project : float32 ndarray (ce, cout)
        Project weights.
    b_project : float32 ndarray (cout,) or None
        Project bias.
    stride : int
        Depthwise stride.
    residual : bool
        Whether to add the input.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    args : tuple
        ``(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride,
        residual, out_hw)``; ``w_expand`` is None for expansion 1.
    """
    x = _check_array("x", x, 4, where)
    cin = x.shape[3]
    if w_expand is not None:
        w_expand = _check_array("w_expand", w_expand, 2, where)
        if w_expand.shape[0] != cin:
            raise ValueError(f"{where}: x {x.shape} has {cin} channels but w_expand "
                             f"{w_expand.shape} (cin, ce) expects {w_expand.shape[0]}")
        ce = w_expand.shape[1]
        b_expand = _check_bias(b_expand, ce, w_expand.shape, where)
    else:
        if b_expand is not None:
            raise ValueError(f"{where}: b_expand given (shape {np.shape(b_expand)}) "
                             "but w_expand is None")
        ce = cin
    w_dw = _check_array("w_dw", w_dw, 3, where)
    if w_dw.shape != (3, 3, ce):
        raise ValueError(f"{where}: w_dw {w_dw.shape} must be (3, 3, {ce}) to follow "
                         f"x {x.shape} and w_expand "
                         f"{None if w_expand is None else w_expand.shape}")
    b_dw = _check_bias(b_dw, ce, w_dw.shape, where)
    w_project = _check_array("w_project", w_project, 2, where)
    if w_project.shape[0] != ce:
        raise ValueError(f"{where}: w_project {w_project.shape} (ce, cout) must have "
                         f"ce = {ce} to follow w_dw {w_dw.shape}")
    cout = w_project.shape[1]
    b_project = _check_bias(b_project, cout, w_project.shape, where)
    stride = _check_int("stride", stride, 1, where)
    if not isinstance(residual, (bool, np.bool_)):
        raise ValueError(f"{where}: residual must be a bool, got {residual!r}")
    residual = bool(residual)
    out_hw = _out_size(x.shape, 3, stride, 1, where)
    if residual and (stride != 1 or cout != cin):
        raise ValueError(f"{where}: residual needs output shape == input shape, but x "
                         f"{x.shape} gives {(x.shape[0],) + out_hw + (cout,)} "
                         f"(stride {stride}, w_project {w_project.shape})")
    return (x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
            out_hw)


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
     out_hw) = _check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project,
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
    bands, workers = inverted_residual_workers(x.shape, out.shape[1])
    if scratch is None or scratch[0].shape[0] < workers:
        scratch = inverted_residual_scratch(x.shape, packed, stride, workers)
    geom = (stride, int(residual), int(packed[0].shape[0] > 0), bands)
    if workers == 1:
        _inverted_residual_serial_nb(x, packed, geom, scratch, out)
    else:
        _inverted_residual_nb(x, packed, geom, scratch, out, workers)
    return out


def inverted_residual_workers(x_shape, h_out):
    """Bands per image and parallel workers the fused kernel uses now.

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, cin).
    h_out : int
        Output rows per image.

    Returns
    -------
    bands : int
        Row bands per image (:func:`_bands_per_image` of Numba's current thread count;
        1 when the block is too small to pay for threads, see
        ``nnlite.config.MIN_PARALLEL_WORK``).
    workers : int
        Threads that share the ``N * bands`` tasks; 1 means the serial core runs.
    """
    n_threads = get_num_threads()
    n_img, h, w = x_shape[0], x_shape[1], x_shape[2]
    if n_threads == 1 or n_img * h * w * x_shape[3] < config.MIN_PARALLEL_WORK:
        return 1, 1
    bands = _bands_per_image(n_img, h_out, n_threads)
    return bands, min(n_threads, n_img * bands)


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
        r0 = ring[iy0 % 3] if iy0 >= 0 else ring[3]
        r1 = ring[(iy0 + 1) % 3]
        r2 = ring[(iy0 + 2) % 3] if iy0 + 2 < h_in else ring[3]
        _dw3x3_relu6_row_nb(r0, r1, r2, w_dw, b_dw, stride, dw_row)
        # 1x1 linear projection (+ residual) into the output row.
        gemm_rows_nb(dw_row, w_project, b_project, -inf, inf, p_row)
        o = out[n, oy]
        if residual:
            xr = x[n, oy]
            for ox in range(w_out):
                for co in range(cout):
                    o[ox, co] = p_row[ox, co] + xr[ox, co]
        else:
            for ox in range(w_out):
                for co in range(cout):
                    o[ox, co] = p_row[ox, co]


@njit(cache=config.CACHE)
def _dw3x3_relu6_row_nb(r0, r1, r2, w_dw, b_dw, stride, dw):
    """One output row of a 3x3 depthwise conv + ReLU6 from three padded input rows.

    Parameters
    ----------
    r0 : float32 ndarray (W + 2, CE8)
        Input row ``oy*stride - 1`` with one zero column on each side (all zeros
        for a padding row); column ``i`` is input column ``i - 1``.
    r1 : float32 ndarray (W + 2, CE8)
        Input row ``oy*stride``, padded likewise.
    r2 : float32 ndarray (W + 2, CE8)
        Input row ``oy*stride + 1``, padded likewise.
    w_dw : float32 ndarray (9, CE8)
        Packed depthwise weights, tap ``ky*3 + kx``.
    b_dw : float32 ndarray (CE8,)
        Packed depthwise bias.
    stride : int
        Stride along the row.
    dw : float32 ndarray (W_out, CE8)
        Output row, overwritten.

    Notes
    -----
    The row goes in tiles of a few output pixels whose input columns (3 rows x
    ``tile * stride + 2`` pixels x CE8 channels, ~12 KB) stay in L1; within a tile,
    per 8 channels, the nine weight vectors and the bias stay in registers while the
    loop walks the tile's pixels: 9 loads and 9 FMAs per 8 outputs.
    """
    vlo = vsplat(np.float32(0.0))
    vhi = vsplat(np.float32(6.0))
    ce8 = w_dw.shape[1]
    w_out = dw.shape[0]
    # Flat views: one index per pixel, the taps at fixed offsets (few integer registers).
    f0 = r0.reshape(-1)
    f1 = r1.reshape(-1)
    f2 = r2.reshape(-1)
    fo = dw.reshape(-1)
    step = stride * ce8
    tile = max(2, min(16, (3072 // ce8 - 2) // stride))
    for ox0 in range(0, w_out, tile):
        ox1 = min(ox0 + tile, w_out)
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
            for ox in range(ox0, ox1):
                s = vfma(vload1(f0, j), k0, bias)
                t = vmul(vload1(f1, j), k3)
                s = vfma(vload1(f0, j + ce8), k1, s)
                t = vfma(vload1(f1, j + ce8), k4, t)
                s = vfma(vload1(f0, j + 2 * ce8), k2, s)
                t = vfma(vload1(f1, j + 2 * ce8), k5, t)
                s = vfma(vload1(f2, j), k6, s)
                t = vfma(vload1(f2, j + ce8), k7, t)
                s = vfma(vload1(f2, j + 2 * ce8), k8, s)
                vstore1(fo, ox * ce8 + c, vclamp(vadd(s, t), vlo, vhi))
                j += step


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
     _) = _check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project,
                                   b_project, stride, residual,
                                   "inverted_residual_reference")
    y = x if w_expand is None else _pointwise_np(x, w_expand, b_expand, ACT_RELU6)
    y = _depthwise_np(y, w_dw, b_dw, stride, 1, ACT_RELU6)
    y = _pointwise_np(y, w_project, b_project, ACT_NONE)
    if residual:
        y += x
    return y
