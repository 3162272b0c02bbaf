"""2-D convolution kernels on channels-last (NHWC) float32 activations.

Three public kernels, each a plain-Python wrapper that validates its arguments and
calls a private ``@njit`` core, with its vectorised NumPy reference directly below:

- :func:`conv2d`: general convolution (regular, grouped, depthwise), square kernel,
  symmetric zero padding, dilation 1. ``groups=1`` runs the packed GEMM
  (:func:`nnlite.kernels.gemm_conv.conv2d_packed`).
- :func:`pointwise_conv2d`: 1x1 convolution, stride 1 (a matmul over pixels).
- :func:`depthwise_conv2d`: one k x k filter per channel (groups = C, multiplier 1).

Weight layouts (kernel side)
----------------------------
All kernel layouts are PyTorch's ``(cout, cin/groups, kh, kw)`` transposed to
"HWIO", ``(k, k, cin/groups, cout)``, with size-1 axes dropped for the fast paths
(the conversions live in :mod:`nnlite.kernels.layout`):

===================  ============================  ===============================
kernel               weight layout                 conversion from PyTorch
===================  ============================  ===============================
conv2d               (k, k, cin/groups, cout)      ``conv_weight_from_torch``
pointwise_conv2d     (cin, cout)                   ``pointwise_weight_from_torch``
depthwise_conv2d     (k, k, C)                     ``depthwise_weight_from_torch``
===================  ============================  ===============================

Output channel ``o`` belongs to group ``g = o // (cout/groups)`` and reads input
channels ``g*cin/groups ... (g+1)*cin/groups - 1``, exactly as in PyTorch.

``groups=1`` convolutions (1x1 included) run on *packed* weights (the im2col
matrix (k*k*cin, C8), columns zero-padded to a multiple of 8): per output row, an
im2col gather (none for 1x1 stride 1) and one register-tiled GEMM, in
:mod:`nnlite.kernels.gemm_conv`. The public wrappers pack per call; layers pack
once (``pack_conv2d``) and call ``conv2d_packed`` with reused scratch. Other
grouped convolutions use per-group transposed im2col matrices
(groups, cout/groups, k*k*cin/groups), copied per call. The depthwise core runs
its innermost loop over contiguous channels of both the weights and the NHWC data.
"""
import numpy as np

from nnlite import config
from nnlite.jit import njit, prange
from nnlite.kernels.activations import act_inplace_nb, act_inplace_np
from nnlite.kernels.checks import (check_conv2d, check_depthwise_conv2d, check_pointwise_conv2d,
                                   conv_out_size)
from nnlite.kernels.gemm_conv import conv2d_gemm


# ---------------------------------------------------------------------------
# conv2d: general convolution.
# ---------------------------------------------------------------------------


def conv2d(x, w, b=None, stride=1, pad=0, groups=1, act="none"):
    """2-D convolution (regular, grouped or depthwise) on NHWC input, Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C/groups, cout), HWIO
        Weights; convert PyTorch ``(cout, C/groups, k, k)`` with
        :func:`~nnlite.kernels.layout.conv_weight_from_torch`.
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    stride : int
        Stride along both axes.
    pad : int
        Symmetric zero padding on both spatial axes.
    groups : int
        Number of groups; must divide ``C`` and ``cout``. ``groups = C = cout`` is a
        depthwise convolution.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        Convolution output.

    Notes
    -----
    ``H_out = (H + 2*pad - k) // stride + 1``, same for ``W_out``; dilation 1.
    Cross-correlation as in ``torch.nn.functional.conv2d``: output pixel ``(oy, ox)``
    reads input rows ``oy*stride - pad + ky``, ``ky = 0..k-1``.
    ``groups=1`` (1x1 included) runs :func:`~nnlite.kernels.gemm_conv.conv2d_packed`:
    per output row an im2col gather and a register-tiled GEMM. ``groups = C = cout``
    dispatches to :func:`depthwise_conv2d`; other grouped cases run a general kernel
    (im2col and dot products per group) parallel over output rows.
    """
    x, w, b, stride, pad, groups, code, out_hw = check_conv2d(
        x, w, b, stride, pad, groups, act, "conv2d")
    k, cin, cout = w.shape[0], x.shape[3], w.shape[3]
    if groups == 1:
        return conv2d_gemm(x, w, b, k, stride, pad, code, out_hw)
    if groups == cin and cout == cin:
        out = np.empty((x.shape[0], out_hw[0], out_hw[1], cout), np.float32)
        _depthwise_conv2d_nb(x, w.reshape(k, k, cin), b, (stride, pad, code), out)
        return out
    return _conv2d_general(x, w, b, stride, pad, groups, code, out_hw)


def _conv2d_general(x, w, b, stride, pad, groups, code, out_hw):
    """Run the general conv core on checked arguments (any groups, k, stride).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input, C-contiguous.
    w : float32 ndarray (k, k, C/groups, cout)
        Weights, HWIO.
    b : float32 ndarray (cout,)
        Bias.
    stride : int
        Stride.
    pad : int
        Zero padding.
    groups : int
        Number of groups.
    code : int
        Activation code.
    out_hw : tuple of int
        Output height and width.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout)
        Output.

    Notes
    -----
    HWIO reshaped to (k*k*C/groups, cout) is the im2col weight matrix, row
    ``(ky*k + kx)*cin_g + ci``. It is split per group and transposed to
    (groups, cout/groups, k*k*C/groups), so each output is a dot product over a
    contiguous patch (a copy of the weights per call, small next to the work).
    """
    k, cin_g, cout = w.shape[0], w.shape[2], w.shape[3]
    cout_g = cout // groups
    n_patch = k * k * cin_g
    wg = np.ascontiguousarray(w.reshape(n_patch, groups, cout_g).transpose(1, 2, 0))
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], cout), np.float32)
    _conv2d_nb(x, wg, b, (stride, pad, k, code), out)
    return out


@njit(cache=config.CACHE, parallel=config.PARALLEL, fastmath=config.FASTMATH)
def _conv2d_nb(x, wg, b, geom, out):
    """General grouped convolution core (im2col per output row), parallel over rows.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input, C-contiguous.
    wg : float32 ndarray (groups, cout/groups, k*k*C/groups)
        Per-group transposed im2col weight matrices (see :func:`_conv2d_general`).
    b : float32 ndarray (cout,)
        Bias.
    geom : tuple of int
        ``(stride, pad, k, act_code)``.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output, overwritten.
    """
    stride, pad, k, act = geom
    n_img, h_out = x.shape[0], out.shape[1]
    for row in prange(n_img * h_out):
        n = row // h_out
        _conv2d_row_nb(x, wg, b, (stride, pad, k, act, n, row - n * h_out), out)


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _conv2d_row_nb(x, wg, b, geom, out):
    """One output row of the general convolution: gather patches, then dot products.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input, C-contiguous.
    wg : float32 ndarray
        Per-group weights as in :func:`_conv2d_nb`.
    b : float32 ndarray (cout,)
        Bias.
    geom : tuple of int
        ``(stride, pad, k, act_code, n, oy)``.
    out : float32 ndarray (N, H_out, W_out, cout)
        Output; row ``oy`` of image ``n`` is written.
    """
    stride, pad, k, act, n, oy = geom
    h_in, w_in, cin = x.shape[1], x.shape[2], x.shape[3]
    groups, cout_g, n_patch = wg.shape
    w_out = out.shape[2]
    cin_g = cin // groups
    patch = np.empty((w_out, n_patch), np.float32)
    o = out[n, oy]
    for g in range(groups):
        c0 = g * cin_g
        # patch[ox, (ky*k + kx)*cin_g + ci] = x[n, iy, ix, c0 + ci], zero outside.
        for ox in range(w_out):
            pr = patch[ox]
            for ky in range(k):
                iy = oy * stride - pad + ky
                for kx in range(k):
                    ix = ox * stride - pad + kx
                    j0 = (ky * k + kx) * cin_g
                    if iy < 0 or iy >= h_in or ix < 0 or ix >= w_in:
                        for ci in range(cin_g):
                            pr[j0 + ci] = 0.0
                    else:
                        xr = x[n, iy, ix]
                        for ci in range(cin_g):
                            pr[j0 + ci] = xr[c0 + ci]
        # Dot products over the contiguous patch, 2 pixels per weight load.
        wgg = wg[g]
        for ox in range(0, w_out, 2):
            p0 = patch[ox]
            p1 = patch[min(ox + 1, w_out - 1)]
            for j in range(cout_g):
                wr = wgg[j]
                a0 = b[g * cout_g + j]
                a1 = a0
                for q in range(n_patch):
                    a0 += p0[q] * wr[q]
                    a1 += p1[q] * wr[q]
                o[ox, g * cout_g + j] = a0
                if ox + 1 < w_out:
                    o[ox + 1, g * cout_g + j] = a1
    for ox in range(w_out):
        act_inplace_nb(o[ox], act)


def conv2d_reference(x, w, b=None, stride=1, pad=0, groups=1, act="none"):
    """2-D convolution on NHWC input, vectorised NumPy reference of :func:`conv2d`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C/groups, cout), HWIO
        Weights (see :func:`~nnlite.kernels.layout.conv_weight_from_torch`).
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    stride : int
        Stride along both axes.
    pad : int
        Symmetric zero padding.
    groups : int
        Number of groups.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        Convolution output.

    Notes
    -----
    ``H_out = (H + 2*pad - k) // stride + 1``. Same dispatch as :func:`conv2d`;
    the general case gathers k*k shifted slices (im2col) and does one batched
    matmul per group.
    """
    x, w, b, stride, pad, groups, code, _ = check_conv2d(
        x, w, b, stride, pad, groups, act, "conv2d_reference")
    k, cin, cout = w.shape[0], x.shape[3], w.shape[3]
    if k == 1 and stride == 1 and pad == 0 and groups == 1:
        return pointwise_np(x, w.reshape(cin, cout), b, code)
    if groups == cin and cout == cin:
        return depthwise_np(x, w.reshape(k, k, cin), b, stride, pad, code)
    return conv2d_np(x, w, b, stride, pad, groups, code)


def conv2d_np(x, w, b, stride, pad, groups, code):
    """General grouped convolution by im2col + batched matmul (NumPy).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input.
    w : float32 ndarray (k, k, C/groups, cout)
        Weights, HWIO.
    b : float32 ndarray (cout,)
        Bias.
    stride : int
        Stride.
    pad : int
        Zero padding.
    groups : int
        Number of groups.
    code : int
        Activation code.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout)
        Convolution output.
    """
    n = x.shape[0]
    k, cin_g, cout = w.shape[0], w.shape[2], w.shape[3]
    cout_g = cout // groups
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x
    # (N, H', W', C, k, k) view -> strided output positions.
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))
    win = win[:, ::stride, ::stride]
    h_out, w_out = win.shape[1], win.shape[2]
    # patches[g, p, (ky, kx, ci)] = xp[n, oy*s+ky, ox*s+kx, g*cin_g+ci]
    patches = win.reshape(n, h_out, w_out, groups, cin_g, k, k)
    patches = patches.transpose(3, 0, 1, 2, 5, 6, 4).reshape(groups, -1, k * k * cin_g)
    wmat = w.reshape(k, k, cin_g, groups, cout_g).transpose(3, 0, 1, 2, 4)
    wmat = wmat.reshape(groups, k * k * cin_g, cout_g)
    y = np.matmul(patches, wmat)  # (groups, P, cout_g)
    y = y.transpose(1, 0, 2).reshape(n, h_out, w_out, cout)
    y += b
    return act_inplace_np(y, code)


# ---------------------------------------------------------------------------
# pointwise_conv2d: 1x1 convolution, stride 1.
# ---------------------------------------------------------------------------


def pointwise_conv2d(x, w, b=None, act="none"):
    """1x1 convolution, stride 1, on NHWC input, Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w : float32 ndarray (cin, cout)
        Weights; convert PyTorch ``(cout, cin, 1, 1)`` with
        :func:`~nnlite.kernels.layout.pointwise_weight_from_torch`.
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.

    Returns
    -------
    out : float32 ndarray (N, H, W, cout), channels-last
        ``act(x @ w + b)`` per pixel.

    Notes
    -----
    Output size equals input size (``k = 1``, stride 1, no padding). Runs
    :func:`~nnlite.kernels.gemm_conv.conv2d_packed` (weights packed per call): each
    image row is one register-tiled GEMM, rows parallel across threads.
    """
    x, w, b, code = check_pointwise_conv2d(x, w, b, act, "pointwise_conv2d")
    return _pointwise_run(x, w, b, code)


def _pointwise_run(x, w, b, code):
    """Run the pointwise conv on checked arguments (``conv2d_packed`` with k = 1).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input, C-contiguous.
    w : float32 ndarray (cin, cout)
        Weights.
    b : float32 ndarray (cout,)
        Bias.
    code : int
        Activation code.

    Returns
    -------
    out : float32 ndarray (N, H, W, cout)
        Output.
    """
    return conv2d_gemm(x, w, b, 1, 1, 0, code, x.shape[1:3])


def pointwise_conv2d_reference(x, w, b=None, act="none"):
    """1x1 convolution on NHWC input, NumPy reference of :func:`pointwise_conv2d`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w : float32 ndarray (cin, cout)
        Weights (see :func:`~nnlite.kernels.layout.pointwise_weight_from_torch`).
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.

    Returns
    -------
    out : float32 ndarray (N, H, W, cout), channels-last
        ``act(x @ w + b)`` per pixel.

    Notes
    -----
    Output size equals input size. One matmul of ``(N*H*W, cin) @ (cin, cout)``.
    """
    x, w, b, code = check_pointwise_conv2d(x, w, b, act, "pointwise_conv2d_reference")
    return pointwise_np(x, w, b, code)


def pointwise_np(x, w, b, code):
    """Pointwise convolution as one matmul (NumPy).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input.
    w : float32 ndarray (cin, cout)
        Weights.
    b : float32 ndarray (cout,)
        Bias.
    code : int
        Activation code.

    Returns
    -------
    out : float32 ndarray (N, H, W, cout)
        Output.
    """
    y = x.reshape(-1, x.shape[3]) @ w
    y += b
    return act_inplace_np(y, code).reshape(x.shape[:3] + (w.shape[1],))


# ---------------------------------------------------------------------------
# depthwise_conv2d: one k x k filter per channel.
# ---------------------------------------------------------------------------


def depthwise_conv2d(x, w, b=None, stride=1, pad=0, act="none"):
    """Depthwise k x k convolution (groups = C, multiplier 1) on NHWC, Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C)
        One k x k filter per channel; convert PyTorch ``(C, 1, k, k)`` with
        :func:`~nnlite.kernels.layout.depthwise_weight_from_torch`.
    b : float32 ndarray (C,) or None
        Bias; None means zeros.
    stride : int
        Stride along both axes.
    pad : int
        Symmetric zero padding.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, C), channels-last
        Output.

    Notes
    -----
    ``H_out = (H + 2*pad - k) // stride + 1``, same for ``W_out``. Parallel over
    output rows; the innermost loop runs over contiguous channels.
    """
    x, w, b, stride, pad, code, out_hw = check_depthwise_conv2d(
        x, w, b, stride, pad, act, "depthwise_conv2d")
    out = np.empty((x.shape[0], out_hw[0], out_hw[1], x.shape[3]), np.float32)
    _depthwise_conv2d_nb(x, w, b, (stride, pad, code), out)
    return out


@njit(cache=config.CACHE, parallel=config.PARALLEL, fastmath=config.FASTMATH)
def _depthwise_conv2d_nb(x, w, b, geom, out):
    """Depthwise convolution core, parallel over output rows.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input, C-contiguous.
    w : float32 ndarray (k, k, C)
        Weights.
    b : float32 ndarray (C,)
        Bias.
    geom : tuple of int
        ``(stride, pad, act_code)``.
    out : float32 ndarray (N, H_out, W_out, C)
        Output, overwritten.
    """
    stride, pad, act = geom
    n_img, h_in, w_in, n_ch = x.shape
    k = w.shape[0]
    h_out, w_out = out.shape[1], out.shape[2]
    for row in prange(n_img * h_out):
        n = row // h_out
        oy = row - n * h_out
        for ox in range(w_out):
            o = out[n, oy, ox]
            for c in range(n_ch):
                o[c] = b[c]
            for ky in range(k):
                iy = oy * stride - pad + ky
                if iy < 0 or iy >= h_in:
                    continue
                for kx in range(k):
                    ix = ox * stride - pad + kx
                    if ix < 0 or ix >= w_in:
                        continue
                    xr = x[n, iy, ix]
                    wr = w[ky, kx]
                    for c in range(n_ch):
                        o[c] += xr[c] * wr[c]
            act_inplace_nb(o, act)


def depthwise_conv2d_reference(x, w, b=None, stride=1, pad=0, act="none"):
    """Depthwise convolution on NHWC, NumPy reference of :func:`depthwise_conv2d`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C)
        One k x k filter per channel (see
        :func:`~nnlite.kernels.layout.depthwise_weight_from_torch`).
    b : float32 ndarray (C,) or None
        Bias; None means zeros.
    stride : int
        Stride along both axes.
    pad : int
        Symmetric zero padding.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, C), channels-last
        Output.

    Notes
    -----
    ``H_out = (H + 2*pad - k) // stride + 1``. Sum of k*k shifted, strided slices of
    the padded input, each times its per-channel weight.
    """
    x, w, b, stride, pad, code, _ = check_depthwise_conv2d(
        x, w, b, stride, pad, act, "depthwise_conv2d_reference")
    return depthwise_np(x, w, b, stride, pad, code)


def depthwise_np(x, w, b, stride, pad, code):
    """Depthwise convolution as k*k shifted multiply-adds (NumPy).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input.
    w : float32 ndarray (k, k, C)
        Weights.
    b : float32 ndarray (C,)
        Bias.
    stride : int
        Stride.
    pad : int
        Zero padding.
    code : int
        Activation code.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, C)
        Output.
    """
    k = w.shape[0]
    h_out, w_out = conv_out_size(x.shape, k, stride, pad, "depthwise")
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x
    y = np.empty((x.shape[0], h_out, w_out, x.shape[3]), np.float32)
    y[...] = b
    for ky in range(k):
        for kx in range(k):
            y += xp[:, ky:ky + stride * (h_out - 1) + 1:stride,
                    kx:kx + stride * (w_out - 1) + 1:stride] * w[ky, kx]
    return act_inplace_np(y, code)
