"""Activation functions fused into the kernels, and their NumPy reference.

Kernels take ``act`` as a string in ``{"none", "relu", "relu6"}``. The public
wrappers turn it into a small integer code with :func:`act_code`; the Numba cores
call :func:`act_inplace_nb` on each finished output row, after the bias.
"""
import numpy as np

from nnlite import config
from nnlite.jit import njit

ACT_NONE = 0
ACT_RELU = 1
ACT_RELU6 = 2

#: Activation name -> integer code passed to the Numba cores.
ACT_CODES = {"none": ACT_NONE, "relu": ACT_RELU, "relu6": ACT_RELU6}


def act_code(act):
    """Return the integer code of an activation name.

    Parameters
    ----------
    act : str
        One of ``"none"``, ``"relu"``, ``"relu6"``.

    Returns
    -------
    code : int
        ``ACT_NONE``, ``ACT_RELU`` or ``ACT_RELU6``.

    Raises
    ------
    ValueError
        If ``act`` is not a known activation name.
    """
    if not isinstance(act, str) or act not in ACT_CODES:
        raise ValueError(f"act must be one of {sorted(ACT_CODES)}, got {act!r}")
    return ACT_CODES[act]


@njit(cache=config.CACHE, fastmath=config.FASTMATH, inline="always")
def act_inplace_nb(row, act):
    """Apply activation ``act`` (integer code) in place to a 1-D float32 array.

    Parameters
    ----------
    row : float32 ndarray (C,)
        Values after bias; overwritten.
    act : int
        ``ACT_NONE``, ``ACT_RELU`` or ``ACT_RELU6``.
    """
    zero = np.float32(0.0)
    six = np.float32(6.0)
    if act == ACT_RELU:
        for c in range(row.shape[0]):
            row[c] = max(row[c], zero)
    elif act == ACT_RELU6:
        for c in range(row.shape[0]):
            row[c] = min(max(row[c], zero), six)


def activation_reference(y, act):
    """Apply an activation to an array (NumPy reference, returns a new array).

    Parameters
    ----------
    y : float32 ndarray, any shape
        Pre-activation values (bias already added).
    act : str
        One of ``"none"``, ``"relu"``, ``"relu6"``.

    Returns
    -------
    out : float32 ndarray, same shape as ``y``
        ``y``, ``max(y, 0)`` or ``min(max(y, 0), 6)``.
    """
    return act_inplace_np(np.array(y, copy=True), act_code(act))


def act_inplace_np(y, code):
    """Apply activation ``code`` to ``y`` in place (NumPy) and return ``y``.

    Parameters
    ----------
    y : float32 ndarray, any shape
        Pre-activation values; overwritten.
    code : int
        ``ACT_NONE``, ``ACT_RELU`` or ``ACT_RELU6``.

    Returns
    -------
    y : float32 ndarray
        The same array, activated.
    """
    if code == ACT_RELU:
        np.maximum(y, np.float32(0.0), out=y)
    elif code == ACT_RELU6:
        np.clip(y, np.float32(0.0), np.float32(6.0), out=y)
    return y
