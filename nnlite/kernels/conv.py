"""2-D convolution kernels on channels-last (NHWC) float32 activations.

Three public kernels, each a plain-Python wrapper that validates its arguments and
calls a private ``@njit`` core, with its vectorised NumPy reference directly below:

- :func:`conv2d`: general convolution (regular, grouped, depthwise), square kernel,
  symmetric zero padding, dilation 1. ``groups=1`` runs :func:`conv2d_packed`.
- :func:`pointwise_conv2d`: 1x1 convolution, stride 1 (a matmul over pixels).
- :func:`depthwise_conv2d`: one k x k filter per channel (groups = C, multiplier 1).

Weight layouts (kernel side)
----------------------------
All kernel layouts are PyTorch's ``(cout, cin/groups, kh, kw)`` transposed to
"HWIO", ``(k, k, cin/groups, cout)``, with size-1 axes dropped for the fast paths:

===================  ============================  ===============================
kernel               weight layout                 conversion from PyTorch
===================  ============================  ===============================
conv2d               (k, k, cin/groups, cout)      :func:`conv_weight_from_torch`
pointwise_conv2d     (cin, cout)                   :func:`pointwise_weight_from_torch`
depthwise_conv2d     (k, k, C)                     :func:`depthwise_weight_from_torch`
===================  ============================  ===============================

Output channel ``o`` belongs to group ``g = o // (cout/groups)`` and reads input
channels ``g*cin/groups ... (g+1)*cin/groups - 1``, exactly as in PyTorch.

``groups=1`` convolutions (1x1 included) run on *packed* weights
(:func:`pack_conv2d`: the im2col matrix (k*k*cin, C8), columns zero-padded to a
multiple of 8): per output row, an im2col gather (none for 1x1 stride 1) and one
register-tiled GEMM (:mod:`nnlite.kernels.gemm`). The public wrappers pack per
call; layers pack once and call :func:`conv2d_packed` with reused scratch. Other
grouped convolutions use per-group transposed im2col matrices
(groups, cout/groups, k*k*cin/groups), copied per call. The depthwise core runs
its innermost loop over contiguous channels of both the weights and the NHWC data.
"""
import numpy as np
from nnlite.jit import njit, prange

from nnlite import config
from nnlite.kernels.activations import _act_inplace_nb, _act_inplace_np, act_code
from nnlite.kernels.gemm import act_bounds, gemm_rows_nb, pack_matrix
from nnlite.kernels.simd import LANES, aligned_zeros, vload1, vstore1
from nnlite.jit import get_num_threads

# ---------------------------------------------------------------------------
# Validation helpers (shared by the other kernel modules).
# ---------------------------------------------------------------------------


def _check_array(name, a, ndim, where):
    """Check that ``a`` is a float32 ndarray of rank ``ndim``; return it C-contiguous.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    a : ndarray
        The array to check.
    ndim : int
        Required number of dimensions.
    where : str
        Name of the calling kernel, used in the error message.

    Returns
    -------
    a : float32 ndarray
        ``a`` itself if already C-contiguous, else a C-contiguous copy.

    Raises
    ------
    ValueError
        If ``a`` is not an ndarray, not float32 (never converted silently) or of the
        wrong rank.
    """
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{where}: {name} must be a float32 numpy array, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise ValueError(f"{where}: {name} must be float32, got {a.dtype} (shape {a.shape})")
    if a.ndim != ndim:
        raise ValueError(f"{where}: {name} must have {ndim} dimensions, got shape {a.shape}")
    return np.ascontiguousarray(a)


def _check_bias(b, cout, w_shape, where):
    """Return a float32 (cout,) bias: ``b`` checked, or zeros when ``b`` is None.

    Parameters
    ----------
    b : float32 ndarray (cout,) or None
        Bias to check.
    cout : int
        Number of output channels.
    w_shape : tuple of int
        Shape of the weights, quoted in the error message.
    where : str
        Name of the calling kernel, used in the error message.

    Returns
    -------
    b : float32 ndarray (cout,), C-contiguous
        The bias.
    """
    if b is None:
        return np.zeros(cout, np.float32)
    b = _check_array("b", b, 1, where)
    if b.shape[0] != cout:
        raise ValueError(f"{where}: bias shape {b.shape} does not match weights {w_shape} "
                         f"with {cout} output channels")
    return b


def _check_int(name, value, minimum, where):
    """Return ``value`` as a Python int, raising if it is not an integer >= ``minimum``.

    Parameters
    ----------
    name : str
        Argument name used in the error message.
    value : int
        The value to check.
    minimum : int
        Smallest allowed value.
    where : str
        Name of the calling kernel, used in the error message.

    Returns
    -------
    value : int
        The value as a Python int.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{where}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value}")
    return int(value)



def output_array(out, shape, where):
    """The array a kernel writes its result into: `out` after checking it, or a new one.

    Parameters
    ----------
    out : float32 ndarray or None
        The caller's C-contiguous float32 array of `shape`; None allocates one.
    shape : tuple of int
        The result's shape.
    where : str
        Name of the calling kernel or layer, used in the error message.

    Returns
    -------
    out : float32 ndarray
        `out` itself, or a new uninitialised array.
    """
    if out is None:
        return np.empty(shape, np.float32)
    if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == shape
            and out.flags.c_contiguous):
        raise ValueError(f"{where}: out must be a C-contiguous float32 array of shape {shape}, "
                         f"got {getattr(out, 'dtype', type(out).__name__)} "
                         f"{getattr(out, 'shape', '')}")
    return out


def _out_size(x_shape, k, stride, pad, where):
    """Return ``(H_out, W_out)`` of a convolution; raise if it would be empty.

    Parameters
    ----------
    x_shape : tuple of int
        Input shape (N, H, W, C).
    k : int
        Kernel size.
    stride : int
        Stride.
    pad : int
        Symmetric zero padding.
    where : str
        Name of the calling kernel, used in the error message.

    Returns
    -------
    out_hw : tuple of int
        ``((H + 2*pad - k)//stride + 1, (W + 2*pad - k)//stride + 1)``.
    """
    h = (x_shape[1] + 2 * pad - k) // stride + 1
    w = (x_shape[2] + 2 * pad - k) // stride + 1
    if h < 1 or w < 1 or x_shape[1] + 2 * pad < k or x_shape[2] + 2 * pad < k:
        raise ValueError(f"{where}: input {x_shape} is smaller than kernel {k}x{k} "
                         f"with pad {pad}")
    return h, w


# ---------------------------------------------------------------------------
# Weight conversion from PyTorch layout.
# ---------------------------------------------------------------------------


def _check_torch_weight(w, where):
    """Check a PyTorch conv weight (cout, cin/groups, k, k), square kernel.

    Parameters
    ----------
    w : float32 ndarray (cout, cin/groups, k, k)
        PyTorch-layout weights.
    where : str
        Name of the caller, used in the error message.

    Returns
    -------
    w : float32 ndarray
        The same weights.
    """
    w = _check_array("w", w, 4, where)
    if w.shape[2] != w.shape[3]:
        raise ValueError(f"{where}: only square kernels are supported, got weights {w.shape}")
    return w


def conv_weight_from_torch(w):
    """Convert PyTorch conv weights to the :func:`conv2d` layout (HWIO).

    Parameters
    ----------
    w : float32 ndarray (cout, cin/groups, k, k), PyTorch OIHW layout
        Weights as in ``torch.nn.Conv2d.weight`` (any ``groups``).

    Returns
    -------
    w_hwio : float32 ndarray (k, k, cin/groups, cout), C-contiguous
        ``w.transpose(2, 3, 1, 0)``. The layout does not depend on ``groups``.
    """
    w = _check_torch_weight(w, "conv_weight_from_torch")
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def pointwise_weight_from_torch(w):
    """Convert PyTorch 1x1 conv weights to the :func:`pointwise_conv2d` layout.

    Parameters
    ----------
    w : float32 ndarray (cout, cin, 1, 1), PyTorch OIHW layout
        Weights of a 1x1, ``groups=1`` convolution.

    Returns
    -------
    w_io : float32 ndarray (cin, cout), C-contiguous
        ``w[:, :, 0, 0].T``.
    """
    w = _check_torch_weight(w, "pointwise_weight_from_torch")
    if w.shape[2] != 1:
        raise ValueError(f"pointwise_weight_from_torch: expected (cout, cin, 1, 1), got {w.shape}")
    return np.ascontiguousarray(w[:, :, 0, 0].T)


def depthwise_weight_from_torch(w):
    """Convert PyTorch depthwise conv weights to the :func:`depthwise_conv2d` layout.

    Parameters
    ----------
    w : float32 ndarray (C, 1, k, k), PyTorch OIHW layout
        Weights of a ``groups=C``, ``cout=C`` convolution.

    Returns
    -------
    w_hwc : float32 ndarray (k, k, C), C-contiguous
        ``w[:, 0].transpose(1, 2, 0)``.
    """
    w = _check_torch_weight(w, "depthwise_weight_from_torch")
    if w.shape[1] != 1:
        raise ValueError(f"depthwise_weight_from_torch: expected (C, 1, k, k), got {w.shape}")
    return np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))


# ---------------------------------------------------------------------------
# conv2d: general convolution.
# ---------------------------------------------------------------------------


def _check_conv2d(x, w, b, stride, pad, groups, act, where):
    """Validate :func:`conv2d` arguments; return them ready for a core.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input.
    w : float32 ndarray (k, k, C/groups, cout)
        Weights, HWIO.
    b : float32 ndarray (cout,) or None
        Bias.
    stride : int
        Stride.
    pad : int
        Zero padding.
    groups : int
        Number of groups.
    act : str
        Activation name.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    args : tuple
        ``(x, w, b, stride, pad, groups, code, out_hw)``.
    """
    x = _check_array("x", x, 4, where)
    w = _check_array("w", w, 4, where)
    stride = _check_int("stride", stride, 1, where)
    pad = _check_int("pad", pad, 0, where)
    groups = _check_int("groups", groups, 1, where)
    code = act_code(act)
    k, cin_g, cout = w.shape[0], w.shape[2], w.shape[3]
    if w.shape[1] != k:
        raise ValueError(f"{where}: weights {w.shape} must be (k, k, cin/groups, cout), "
                         "square kernel")
    if x.shape[3] % groups or cout % groups:
        raise ValueError(f"{where}: groups={groups} must divide the input channels of x {x.shape} "
                         f"and the output channels of w {w.shape}")
    if cin_g * groups != x.shape[3]:
        raise ValueError(f"{where}: x {x.shape} has {x.shape[3]} channels but weights {w.shape} "
                         f"with groups={groups} expect {cin_g * groups}")
    b = _check_bias(b, cout, w.shape, where)
    out_hw = _out_size(x.shape, k, stride, pad, where)
    return x, w, b, stride, pad, groups, code, out_hw


def conv2d(x, w, b=None, stride=1, pad=0, groups=1, act="none"):
    """2-D convolution (regular, grouped or depthwise) on NHWC input, Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C/groups, cout), HWIO
        Weights; convert PyTorch ``(cout, C/groups, k, k)`` with
        :func:`conv_weight_from_torch`.
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
    ``groups=1`` (1x1 included) runs :func:`conv2d_packed`: per output row an
    im2col gather and a register-tiled GEMM. ``groups = C = cout`` dispatches to
    :func:`depthwise_conv2d`; other grouped cases run a general kernel (im2col and
    dot products per group) parallel over output rows.
    """
    x, w, b, stride, pad, groups, code, out_hw = _check_conv2d(
        x, w, b, stride, pad, groups, act, "conv2d")
    k, cin, cout = w.shape[0], x.shape[3], w.shape[3]
    if groups == 1:
        return _conv2d_gemm_run(x, w, b, k, stride, pad, code, out_hw)
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
        _act_inplace_nb(o[ox], act)


def conv2d_reference(x, w, b=None, stride=1, pad=0, groups=1, act="none"):
    """2-D convolution on NHWC input, vectorised NumPy reference of :func:`conv2d`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C/groups, cout), HWIO
        Weights (see :func:`conv_weight_from_torch`).
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
    x, w, b, stride, pad, groups, code, _ = _check_conv2d(
        x, w, b, stride, pad, groups, act, "conv2d_reference")
    k, cin, cout = w.shape[0], x.shape[3], w.shape[3]
    if k == 1 and stride == 1 and pad == 0 and groups == 1:
        return _pointwise_np(x, w.reshape(cin, cout), b, code)
    if groups == cin and cout == cin:
        return _depthwise_np(x, w.reshape(k, k, cin), b, stride, pad, code)
    return _conv2d_np(x, w, b, stride, pad, groups, code)


def _conv2d_np(x, w, b, stride, pad, groups, code):
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
    return _act_inplace_np(y, code)


# ---------------------------------------------------------------------------
# groups=1 convolution (any k, stride, pad; 1x1 included) through the packed GEMM.
# ---------------------------------------------------------------------------


def pack_conv2d(w, b=None):
    """Pack ``groups=1`` conv weights for :func:`conv2d_packed`.

    Parameters
    ----------
    w : float32 ndarray (k, k, cin, cout) HWIO, or (cin, cout) for a 1x1 conv
        Weights in the :func:`conv2d` or :func:`pointwise_conv2d` layout.
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


def _conv2d_gemm_run(x, w, b, k, stride, pad, code, out_hw):
    """Pack, allocate and run :func:`conv2d_packed` (the public wrappers' path).

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


# ---------------------------------------------------------------------------
# pointwise_conv2d: 1x1 convolution, stride 1.
# ---------------------------------------------------------------------------


def _check_pointwise(x, w, b, act, where):
    """Validate :func:`pointwise_conv2d` arguments.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin)
        Input.
    w : float32 ndarray (cin, cout)
        Weights.
    b : float32 ndarray (cout,) or None
        Bias.
    act : str
        Activation name.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    args : tuple
        ``(x, w, b, code)``.
    """
    x = _check_array("x", x, 4, where)
    w = _check_array("w", w, 2, where)
    code = act_code(act)
    if w.shape[0] != x.shape[3]:
        raise ValueError(f"{where}: x {x.shape} has {x.shape[3]} channels but weights "
                         f"{w.shape} (cin, cout) expect {w.shape[0]}")
    b = _check_bias(b, w.shape[1], w.shape, where)
    return x, w, b, code


def pointwise_conv2d(x, w, b=None, act="none"):
    """1x1 convolution, stride 1, on NHWC input, Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w : float32 ndarray (cin, cout)
        Weights; convert PyTorch ``(cout, cin, 1, 1)`` with
        :func:`pointwise_weight_from_torch`.
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
    :func:`conv2d_packed` (weights packed per call): each image row is one
    register-tiled GEMM, rows parallel across threads.
    """
    x, w, b, code = _check_pointwise(x, w, b, act, "pointwise_conv2d")
    return _pointwise_run(x, w, b, code)


def _pointwise_run(x, w, b, code):
    """Run the pointwise conv on checked arguments (:func:`conv2d_packed`, k = 1).

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
    return _conv2d_gemm_run(x, w, b, 1, 1, 0, code, x.shape[1:3])


def pointwise_conv2d_reference(x, w, b=None, act="none"):
    """1x1 convolution on NHWC input, NumPy reference of :func:`pointwise_conv2d`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w : float32 ndarray (cin, cout)
        Weights (see :func:`pointwise_weight_from_torch`).
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
    x, w, b, code = _check_pointwise(x, w, b, act, "pointwise_conv2d_reference")
    return _pointwise_np(x, w, b, code)


def _pointwise_np(x, w, b, code):
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
    return _act_inplace_np(y, code).reshape(x.shape[:3] + (w.shape[1],))


# ---------------------------------------------------------------------------
# depthwise_conv2d: one k x k filter per channel.
# ---------------------------------------------------------------------------


def _check_depthwise(x, w, b, stride, pad, act, where):
    """Validate :func:`depthwise_conv2d` arguments.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Input.
    w : float32 ndarray (k, k, C)
        Weights.
    b : float32 ndarray (C,) or None
        Bias.
    stride : int
        Stride.
    pad : int
        Zero padding.
    act : str
        Activation name.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    args : tuple
        ``(x, w, b, stride, pad, code, out_hw)``.
    """
    x = _check_array("x", x, 4, where)
    w = _check_array("w", w, 3, where)
    stride = _check_int("stride", stride, 1, where)
    pad = _check_int("pad", pad, 0, where)
    code = act_code(act)
    if w.shape[0] != w.shape[1] or w.shape[2] != x.shape[3]:
        raise ValueError(f"{where}: weights {w.shape} must be (k, k, C) with C = {x.shape[3]} "
                         f"channels of x {x.shape}")
    b = _check_bias(b, w.shape[2], w.shape, where)
    out_hw = _out_size(x.shape, w.shape[0], stride, pad, where)
    return x, w, b, stride, pad, code, out_hw


def depthwise_conv2d(x, w, b=None, stride=1, pad=0, act="none"):
    """Depthwise k x k convolution (groups = C, multiplier 1) on NHWC, Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C)
        One k x k filter per channel; convert PyTorch ``(C, 1, k, k)`` with
        :func:`depthwise_weight_from_torch`.
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
    x, w, b, stride, pad, code, out_hw = _check_depthwise(
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
            _act_inplace_nb(o, act)


def depthwise_conv2d_reference(x, w, b=None, stride=1, pad=0, act="none"):
    """Depthwise convolution on NHWC, NumPy reference of :func:`depthwise_conv2d`.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C)
        One k x k filter per channel (see :func:`depthwise_weight_from_torch`).
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
    x, w, b, stride, pad, code, _ = _check_depthwise(
        x, w, b, stride, pad, act, "depthwise_conv2d_reference")
    return _depthwise_np(x, w, b, stride, pad, code)


def _depthwise_np(x, w, b, stride, pad, code):
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
    h_out, w_out = _out_size(x.shape, k, stride, pad, "depthwise")
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0))) if pad else x
    y = np.empty((x.shape[0], h_out, w_out, x.shape[3]), np.float32)
    y[...] = b
    for ky in range(k):
        for kx in range(k):
            y += xp[:, ky:ky + stride * (h_out - 1) + 1:stride,
                    kx:kx + stride * (w_out - 1) + 1:stride] * w[ky, kx]
    return _act_inplace_np(y, code)
