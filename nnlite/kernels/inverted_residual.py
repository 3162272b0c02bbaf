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
import numba
import numpy as np
from numba import njit, prange

from nnlite import config
from nnlite.kernels.activations import ACT_NONE, ACT_RELU6
from nnlite.kernels.conv import (_check_array, _check_bias, _check_int, _depthwise_np,
                                 _out_size, _pointwise_np, _pw_rows_nb)


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
    Parallel over bands of output rows (one band per thread per image, see
    ``nnlite.config.MIN_BAND_ROWS``). The result is bit-identical for any number of
    threads: every band computes each expanded row the same way.
    """
    (x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
     out_hw) = _check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project,
                                        b_project, stride, residual, "inverted_residual")
    has_expand = w_expand is not None
    if not has_expand:
        w_expand = np.zeros((0, 0), np.float32)
        b_expand = np.zeros(0, np.float32)
    n_img = x.shape[0]
    bands = _bands_per_image(n_img, out_hw[0], numba.get_num_threads())
    ce, cout = w_project.shape
    transposed = ce > cout  # see conv._pw_rows_nb: dot products when reducing channels
    w_core = np.ascontiguousarray(w_project.T) if transposed else w_project
    out = np.empty((n_img, out_hw[0], out_hw[1], cout), np.float32)
    _inverted_residual_nb(x, (w_expand, b_expand, w_dw, b_dw, w_core, b_project),
                          (stride, int(residual), int(has_expand), bands, int(transposed)),
                          out)
    return out


@njit(cache=config.CACHE, parallel=config.PARALLEL, fastmath=config.FASTMATH)
def _inverted_residual_nb(x, weights, geom, out):
    """Fused inverted residual core, parallel over (image, band of output rows).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    weights : tuple of float32 ndarray
        ``(w_expand, b_expand, w_dw, b_dw, w_project, b_project)`` with shapes
        (cin, ce), (ce,), (3, 3, ce), (ce,), then (ce, cout) or, when
        ``project_transposed``, (cout, ce), and (cout,). ``w_expand`` and
        ``b_expand`` are ignored when ``has_expand`` is 0.
    geom : tuple of int
        ``(stride, residual, has_expand, bands_per_image, project_transposed)``.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    """
    bands = geom[3]
    h_out = out.shape[1]
    band_rows = (h_out + bands - 1) // bands
    for task in prange(x.shape[0] * bands):
        n = task // bands
        oy0 = (task - n * bands) * band_rows
        _inverted_residual_band_nb(x, weights, geom, n, oy0, min(oy0 + band_rows, h_out), out)


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _inverted_residual_band_nb(x, weights, geom, n, oy0, oy1, out):
    """Serial fused block for output rows ``oy0 .. oy1-1`` of image ``n``.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    weights : tuple of float32 ndarray
        As in :func:`_inverted_residual_nb`.
    geom : tuple of int
        As in :func:`_inverted_residual_nb`.
    n : int
        Image index.
    oy0 : int
        First output row of the band.
    oy1 : int
        One past the last output row of the band.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output; rows ``oy0 .. oy1-1`` of image ``n`` are written.
    """
    w_expand, b_expand, w_dw, b_dw, w_project, b_project = weights
    stride, residual, has_expand, _, project_transposed = geom
    h_in, w_in = x.shape[1], x.shape[2]
    ce = w_dw.shape[2]
    w_out, cout = out.shape[2], out.shape[3]
    # Non-literal ints, so numba reuses the one compiled _pw_rows_nb instead of
    # compiling a specialisation for each constant argument.
    relu6 = np.int64(ACT_RELU6)
    no_act = np.int64(ACT_NONE)
    outer = np.int64(0)
    # ring[iy % 3, 1 + ix] = expanded (post-ReLU6) input pixel (iy, ix); columns 0 and
    # W + 1 stay zero (the depthwise padding), ``tag`` says which row a slot holds.
    ring = np.zeros((3, w_in + 2, ce), np.float32)
    zero_row = np.zeros((w_in + 2, ce), np.float32)
    tag = np.full(3, -10, np.int64)
    dw = np.empty((w_out, ce), np.float32)
    for oy in range(oy0, oy1):
        iy0 = oy * stride - 1  # first of the 3 input rows; iy0 + 1 <= H - 1 always
        for iy in range(max(iy0, 0), min(iy0 + 3, h_in)):
            slot = iy % 3
            if tag[slot] != iy:
                tag[slot] = iy
                dst = ring[slot][1:w_in + 1]
                if has_expand:
                    _pw_rows_nb(x[n, iy], w_expand, b_expand, relu6, outer, dst)
                else:
                    xr = x[n, iy]
                    for ix in range(w_in):
                        for c in range(ce):
                            dst[ix, c] = xr[ix, c]
        r0 = ring[iy0 % 3] if iy0 >= 0 else zero_row
        r1 = ring[(iy0 + 1) % 3]
        r2 = ring[(iy0 + 2) % 3] if iy0 + 2 < h_in else zero_row
        _dw3x3_relu6_row_nb(r0, r1, r2, w_dw, b_dw, stride, dw)
        # 1x1 linear projection (+ residual) straight into the output row.
        o = out[n, oy]
        _pw_rows_nb(dw, w_project, b_project, no_act, project_transposed, o)
        if residual:
            xr = x[n, oy]
            for ox in range(w_out):
                for co in range(cout):
                    o[ox, co] += xr[ox, co]


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _dw3x3_relu6_row_nb(r0, r1, r2, w_dw, b_dw, stride, dw):
    """One output row of a 3x3 depthwise conv + ReLU6 from three padded input rows.

    Parameters
    ----------
    r0 : float32 ndarray (W + 2, ce)
        Input row ``oy*stride - 1`` with one zero column on each side (all zeros
        for a padding row); column ``i`` is input column ``i - 1``.
    r1 : float32 ndarray (W + 2, ce)
        Input row ``oy*stride``, padded likewise.
    r2 : float32 ndarray (W + 2, ce)
        Input row ``oy*stride + 1``, padded likewise.
    w_dw : float32 ndarray (3, 3, ce)
        Depthwise weights.
    b_dw : float32 ndarray (ce,)
        Depthwise bias.
    stride : int
        Stride along the row.
    dw : float32 ndarray (W_out, ce)
        Output row, overwritten.
    """
    w00, w01, w02 = w_dw[0, 0], w_dw[0, 1], w_dw[0, 2]
    w10, w11, w12 = w_dw[1, 0], w_dw[1, 1], w_dw[1, 2]
    w20, w21, w22 = w_dw[2, 0], w_dw[2, 1], w_dw[2, 2]
    zero = np.float32(0.0)
    six = np.float32(6.0)
    ce = dw.shape[1]
    for ox in range(dw.shape[0]):
        i = ox * stride
        d = dw[ox]
        # All nine taps in one expression: 18 loads and one store per 9 FMAs.
        for c in range(ce):
            v = (b_dw[c]
                 + r0[i, c] * w00[c] + r0[i + 1, c] * w01[c] + r0[i + 2, c] * w02[c]
                 + r1[i, c] * w10[c] + r1[i + 1, c] * w11[c] + r1[i + 2, c] * w12[c]
                 + r2[i, c] * w20[c] + r2[i + 1, c] * w21[c] + r2[i + 2, c] * w22[c])
            d[c] = min(max(v, zero), six)


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
