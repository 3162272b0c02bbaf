"""Argument checks shared by the Numba kernels and the NumPy backend's ops.

Each public kernel (and its NumPy reference, and the NumPy backend's op of the same
name) validates its arguments with the same function here, so all three raise the
same ``ValueError`` for the same bad input, naming the argument, the kernel (the
``where`` argument) and the shapes involved. Arrays must already be float32: they
are never converted silently. The checks return the arguments ready for a core
(C-contiguous arrays, Python ints, activation codes, output sizes).
"""
import numpy as np

from nnlite.kernels.activations import act_code


def check_array(name, a, ndim, where):
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


def check_bias(b, cout, w_shape, where):
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
    b = check_array("b", b, 1, where)
    if b.shape[0] != cout:
        raise ValueError(f"{where}: bias shape {b.shape} does not match weights {w_shape} "
                         f"with {cout} output channels")
    return b


def check_int(name, value, minimum, where):
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


def conv_out_size(x_shape, k, stride, pad, where):
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


def check_conv2d(x, w, b, stride, pad, groups, act, where):
    """Validate :func:`~nnlite.kernels.conv.conv2d` arguments; return them ready for a core.

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
    x = check_array("x", x, 4, where)
    w = check_array("w", w, 4, where)
    stride = check_int("stride", stride, 1, where)
    pad = check_int("pad", pad, 0, where)
    groups = check_int("groups", groups, 1, where)
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
    b = check_bias(b, cout, w.shape, where)
    out_hw = conv_out_size(x.shape, k, stride, pad, where)
    return x, w, b, stride, pad, groups, code, out_hw


def check_pointwise_conv2d(x, w, b, act, where):
    """Validate :func:`~nnlite.kernels.conv.pointwise_conv2d` arguments.

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
    x = check_array("x", x, 4, where)
    w = check_array("w", w, 2, where)
    code = act_code(act)
    if w.shape[0] != x.shape[3]:
        raise ValueError(f"{where}: x {x.shape} has {x.shape[3]} channels but weights "
                         f"{w.shape} (cin, cout) expect {w.shape[0]}")
    b = check_bias(b, w.shape[1], w.shape, where)
    return x, w, b, code


def check_depthwise_conv2d(x, w, b, stride, pad, act, where):
    """Validate :func:`~nnlite.kernels.conv.depthwise_conv2d` arguments.

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
    x = check_array("x", x, 4, where)
    w = check_array("w", w, 3, where)
    stride = check_int("stride", stride, 1, where)
    pad = check_int("pad", pad, 0, where)
    code = act_code(act)
    if w.shape[0] != w.shape[1] or w.shape[2] != x.shape[3]:
        raise ValueError(f"{where}: weights {w.shape} must be (k, k, C) with C = {x.shape[3]} "
                         f"channels of x {x.shape}")
    b = check_bias(b, w.shape[2], w.shape, where)
    out_hw = conv_out_size(x.shape, w.shape[0], stride, pad, where)
    return x, w, b, stride, pad, code, out_hw


def check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project,
                             stride, residual, where):
    """Validate :func:`~nnlite.kernels.inverted_residual.inverted_residual` arguments.

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
    x = check_array("x", x, 4, where)
    cin = x.shape[3]
    if w_expand is not None:
        w_expand = check_array("w_expand", w_expand, 2, where)
        if w_expand.shape[0] != cin:
            raise ValueError(f"{where}: x {x.shape} has {cin} channels but w_expand "
                             f"{w_expand.shape} (cin, ce) expects {w_expand.shape[0]}")
        ce = w_expand.shape[1]
        b_expand = check_bias(b_expand, ce, w_expand.shape, where)
    else:
        if b_expand is not None:
            raise ValueError(f"{where}: b_expand given (shape {np.shape(b_expand)}) "
                             "but w_expand is None")
        ce = cin
    w_dw = check_array("w_dw", w_dw, 3, where)
    if w_dw.shape != (3, 3, ce):
        raise ValueError(f"{where}: w_dw {w_dw.shape} must be (3, 3, {ce}) to follow "
                         f"x {x.shape} and w_expand "
                         f"{None if w_expand is None else w_expand.shape}")
    b_dw = check_bias(b_dw, ce, w_dw.shape, where)
    w_project = check_array("w_project", w_project, 2, where)
    if w_project.shape[0] != ce:
        raise ValueError(f"{where}: w_project {w_project.shape} (ce, cout) must have "
                         f"ce = {ce} to follow w_dw {w_dw.shape}")
    cout = w_project.shape[1]
    b_project = check_bias(b_project, cout, w_project.shape, where)
    stride = check_int("stride", stride, 1, where)
    if not isinstance(residual, (bool, np.bool_)):
        raise ValueError(f"{where}: residual must be a bool, got {residual!r}")
    residual = bool(residual)
    out_hw = conv_out_size(x.shape, 3, stride, 1, where)
    if residual and (stride != 1 or cout != cin):
        raise ValueError(f"{where}: residual needs output shape == input shape, but x "
                         f"{x.shape} gives {(x.shape[0],) + out_hw + (cout,)} "
                         f"(stride {stride}, w_project {w_project.shape})")
    return (x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
            out_hw)


def check_roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned, where):
    """Validate :func:`~nnlite.kernels.roi_align.roi_align` arguments; return them ready for a core.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features.
    rois : float32 ndarray (K, 5)
        Boxes ``[batch_index, x0, y0, x1, y1]``.
    output_size : int or tuple of int
        ``oh`` or ``(oh, ow)``.
    spatial_scale : float
        Box scale.
    sampling_ratio : int
        Samples per bin per axis, > 0.
    aligned : bool
        Half-pixel shift.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    args : tuple
        ``(x, rois, (oh, ow), spatial_scale as float32, sampling_ratio, aligned)``.
    """
    x = check_array("x", x, 4, where)
    rois = check_array("rois", rois, 2, where)
    if rois.shape[1] != 5:
        raise ValueError(f"{where}: rois {rois.shape} must be (K, 5) rows "
                         f"[batch_index, x0, y0, x1, y1] for x {x.shape}")
    if isinstance(output_size, (int, np.integer)):
        output_size = (output_size, output_size)
    if len(output_size) != 2:
        raise ValueError(f"{where}: output_size must be an int or (oh, ow), got {output_size!r}")
    oh = check_int("output_size[0]", output_size[0], 1, where)
    ow = check_int("output_size[1]", output_size[1], 1, where)
    if isinstance(sampling_ratio, (int, np.integer)) and sampling_ratio <= 0:
        raise ValueError(f"{where}: sampling_ratio must be > 0 (torchvision's adaptive "
                         f"sampling_ratio <= 0 is not supported), got {sampling_ratio}")
    sampling_ratio = check_int("sampling_ratio", sampling_ratio, 1, where)
    if not isinstance(aligned, (bool, np.bool_)):
        raise ValueError(f"{where}: aligned must be a bool, got {aligned!r}")
    scale = np.float32(spatial_scale)
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"{where}: spatial_scale must be a positive finite number, "
                         f"got {spatial_scale!r}")
    idx = rois[:, 0]
    if rois.shape[0] and not (np.all(idx == np.floor(idx)) and idx.min() >= 0
                              and idx.max() < x.shape[0]):
        raise ValueError(f"{where}: rois {rois.shape} batch indices must be integers in "
                         f"[0, {x.shape[0]}) for x {x.shape}, got {np.unique(idx)[:8]}")
    return x, rois, (oh, ow), scale, sampling_ratio, bool(aligned)


def check_roi_group_conv(x, rois, w, b, output_size, spatial_scale, sampling_ratio, aligned,
                          where):
    """Validate :func:`~nnlite.kernels.roi_conv.roi_group_conv` arguments.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features.
    rois : float32 ndarray (N*K, 5)
        Boxes, K per image in image-major order.
    w : float32 ndarray (k, k, C, K)
        Group conv weights, HWIO.
    b : float32 ndarray (K,) or None
        Bias.
    output_size : int or tuple of int
        Window size ``oh`` or ``(oh, ow)``.
    spatial_scale : float
        Box scale.
    sampling_ratio : int
        Samples per bin per axis.
    aligned : bool
        Half-pixel shift.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    args : tuple
        ``(x, rois, w, b, (oh, ow), scale, sampling_ratio, aligned)``.
    """
    x, rois, size, scale, sr, aligned = check_roi_align(
        x, rois, output_size, spatial_scale, sampling_ratio, aligned, where)
    w = check_array("w", w, 4, where)
    k, n_groups = w.shape[0], w.shape[3]
    if w.shape[1] != k or k % 2 == 0 or w.shape[2] != x.shape[3]:
        raise ValueError(f"{where}: weights {w.shape} must be (k, k, C, K) with odd k and "
                         f"C = {x.shape[3]} channels of x {x.shape}")
    b = check_bias(b, n_groups, w.shape, where)
    want = np.repeat(np.arange(x.shape[0], dtype=np.float32), n_groups)
    if rois.shape[0] != want.shape[0] or not np.array_equal(rois[:, 0], want):
        raise ValueError(f"{where}: rois {rois.shape} must hold K = {n_groups} boxes per image "
                         f"for x {x.shape}, in image-major order (batch index i // K)")
    return x, rois, w, b, size, scale, sr, aligned


def check_heatmaps(h, where):
    """Validate a heatmap batch (N, H, W, C), float32, non-empty.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C)
        Heatmaps.
    where : str
        Name of the calling kernel, used in error messages.

    Returns
    -------
    h : float32 ndarray (N, H, W, C), C-contiguous
        The heatmaps.
    """
    h = check_array("h", h, 4, where)
    if h.shape[1] < 1 or h.shape[2] < 1:
        raise ValueError(f"{where}: heatmaps h {h.shape} must have H, W >= 1")
    return h


def check_beta(beta, where, positive=False):
    """Return ``beta`` as a finite float32.

    Parameters
    ----------
    beta : float
        Softmax inverse temperature.
    where : str
        Name of the calling kernel, used in error messages.
    positive : bool
        Also reject a negative beta (a kernel that takes the maximum of ``h``, not of
        ``beta * h``).

    Returns
    -------
    beta : float32
        The value.
    """
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.number)):
        raise ValueError(f"{where}: beta must be a number, got {beta!r}")
    beta = np.float32(beta)
    if not np.isfinite(beta):
        raise ValueError(f"{where}: beta must be finite, got {beta!r}")
    if positive and beta < 0:
        raise ValueError(f"{where}: beta must be >= 0, got {beta!r}")
    return beta
