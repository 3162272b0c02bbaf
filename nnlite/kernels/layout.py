"""Weight layouts: PyTorch conv weights converted to the kernels' layouts.

PyTorch stores conv weights as ``(cout, cin/groups, kh, kw)`` (OIHW). The kernels
take them channels-last, "HWIO" ``(k, k, cin/groups, cout)``, with the size-1 axes
of the fast paths dropped:

===============================  ========================  ======================
function                         kernel layout             kernels
===============================  ========================  ======================
``conv_weight_from_torch``       (k, k, cin/groups, cout)  conv2d, roi_group_conv
``pointwise_weight_from_torch``  (cin, cout)               pointwise_conv2d
``depthwise_weight_from_torch``  (k, k, C)                 depthwise_conv2d
===============================  ========================  ======================

The conversions are copies (C-contiguous), done once when a layer is built.
"""
import numpy as np

from nnlite.kernels.checks import check_array


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
    w = check_array("w", w, 4, where)
    if w.shape[2] != w.shape[3]:
        raise ValueError(f"{where}: only square kernels are supported, got weights {w.shape}")
    return w


def conv_weight_from_torch(w):
    """Convert PyTorch conv weights to the :func:`~nnlite.kernels.conv.conv2d` layout (HWIO).

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
    """Convert PyTorch 1x1 conv weights to the :func:`~nnlite.kernels.conv.pointwise_conv2d` layout.

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
    """PyTorch depthwise weights to the :func:`~nnlite.kernels.conv.depthwise_conv2d` layout.

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
