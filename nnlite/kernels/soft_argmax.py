"""Soft-argmax keypoint read-out and peak confidences of NHWC heatmaps.

Coordinates are in pixel-centre units: pixel (row ``i``, column ``j``) sits at
``x = j``, ``y = i``, so a soft-argmax lies in ``[0, W-1] x [0, H-1]``.

The kernels are serial: heatmaps are small (e.g. 16 x 16 x 68), and starting
threads would cost more than it saves.
"""
import numpy as np

from nnlite import config
from nnlite.jit import njit
from nnlite.kernels.checks import check_beta, check_heatmaps, output_array
from nnlite.kernels.simd import (LANES, vadd, vexp, vfma, vload1, vmax, vmul, vsplat,
                                 vstore1, vsub)


def soft_argmax(h, beta=1.0, *, peak=None):
    """Expected pixel position under a per-channel spatial softmax, Numba kernel.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits, one heatmap per channel.
    beta : float
        Inverse temperature: the softmax is taken over ``beta * h``.
    peak : float32 ndarray (N, C) or None
        Where to write each softmax's largest probability as well (:func:`softmax_peak`,
        the landmark score), from the same pass: it is ``1 / sum(exp(beta * h - max))``.

    Returns
    -------
    xy : float32 ndarray (N, C, 2)
        ``[x, y]`` per channel: ``x = sum_ij p_ij * j``, ``y = sum_ij p_ij * i`` with
        ``p = softmax(beta * h)`` over the ``H*W`` pixels of that channel.

    Notes
    -----
    Pixel-centre coordinates: pixel (row ``i``, column ``j``) is at ``(x, y) = (j, i)``,
    so the result lies in ``[0, W-1] x [0, H-1]``; a uniform heatmap gives
    ``((W-1)/2, (H-1)/2)``. Numerically stable (the per-channel maximum is
    subtracted before ``exp``); row sums in float32, totals in float64.
    """
    h = check_heatmaps(h, "soft_argmax")
    beta = check_beta(beta, "soft_argmax")
    out = np.empty((h.shape[0], h.shape[3], 2), np.float32)
    peak = output_array(peak, (h.shape[0], h.shape[3]), "soft_argmax peak")
    _soft_argmax_nb(h, beta, out, peak)
    return out


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _soft_argmax_nb(h, beta, out, peak):
    """Soft-argmax core: 8 channels per vector, a scalar loop for the last ``C % 8``.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C)
        Heatmap logits, C-contiguous.
    beta : float32
        Inverse temperature.
    out : float32 ndarray (N, C, 2)
        Output ``[x, y]``, overwritten.
    peak : float32 ndarray (N, C)
        The softmax's largest probability, ``1 / sum``, overwritten.

    Notes
    -----
    Per 8 channels: the maximum of ``beta * h`` over all pixels, then per image row
    the float32 sums of ``e = exp(beta * h - max)`` (``vexp``, ~1 ulp) and of
    ``e * j``, which are added into float64 totals (so long rows of large maps
    lose no precision).
    """
    n_img, n_rows, n_cols, n_ch = h.shape
    c8 = n_ch - n_ch % LANES
    vb = vsplat(beta)
    vzero = vsplat(np.float32(0.0))
    tmp = np.empty(2 * LANES, np.float32)
    s = np.empty(LANES, np.float64)
    sx = np.empty(LANES, np.float64)
    sy = np.empty(LANES, np.float64)
    for n in range(n_img):
        hf = h[n].reshape(-1)
        for c in range(0, c8, LANES):
            m = vmul(vb, vload1(hf, c))
            for p in range(1, n_rows * n_cols):
                m = vmax(m, vmul(vb, vload1(hf, p * n_ch + c)))
            for k in range(LANES):
                s[k] = 0.0
                sx[k] = 0.0
                sy[k] = 0.0
            for i in range(n_rows):
                rs = vzero
                rx = vzero
                for j in range(n_cols):
                    e = vexp(vsub(vmul(vb, vload1(hf, (i * n_cols + j) * n_ch + c)), m))
                    rs = vadd(rs, e)
                    rx = vfma(e, vsplat(np.float32(j)), rx)
                vstore1(tmp, 0, rs)
                vstore1(tmp, LANES, rx)
                for k in range(LANES):
                    s[k] += tmp[k]
                    sx[k] += tmp[LANES + k]
                    sy[k] += np.float64(tmp[k]) * i
            for k in range(LANES):
                out[n, c + k, 0] = sx[k] / s[k]
                out[n, c + k, 1] = sy[k] / s[k]
                peak[n, c + k] = 1.0 / s[k]
        for c in range(c8, n_ch):
            mc = beta * h[n, 0, 0, c]
            for i in range(n_rows):
                for j in range(n_cols):
                    mc = max(mc, beta * h[n, i, j, c])
            t = 0.0
            tx = 0.0
            ty = 0.0
            for i in range(n_rows):
                for j in range(n_cols):
                    e = np.float64(np.exp(beta * h[n, i, j, c] - mc))
                    t += e
                    tx += e * j
                    ty += e * i
            out[n, c, 0] = tx / t
            out[n, c, 1] = ty / t
            peak[n, c] = 1.0 / t


def soft_argmax_reference(h, beta=1.0):
    """Soft-argmax of NHWC heatmaps, vectorised NumPy reference of :func:`soft_argmax`.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.
    beta : float
        Inverse temperature of the softmax.

    Returns
    -------
    xy : float32 ndarray (N, C, 2)
        ``[x, y]`` expected position per channel, pixel-centre units.

    Notes
    -----
    Pixel (row ``i``, column ``j``) is at ``(x, y) = (j, i)``; result in
    ``[0, W-1] x [0, H-1]``. Softmax over ``beta * h - max`` per channel.
    """
    h = check_heatmaps(h, "soft_argmax_reference")
    beta = check_beta(beta, "soft_argmax_reference")
    n_img, n_rows, n_cols, n_ch = h.shape
    z = h.reshape(n_img, n_rows * n_cols, n_ch) * beta
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1)                                    # (N, C)
    cols = np.tile(np.arange(n_cols, dtype=np.float32), n_rows)
    rows = np.repeat(np.arange(n_rows, dtype=np.float32), n_cols)
    grid = np.stack([cols, rows], axis=1)                    # (H*W, 2) as (x, y)
    xy = np.matmul(e.transpose(0, 2, 1), grid)               # (N, C, 2)
    return (xy / total[:, :, None]).astype(np.float32)


def heatmap_peak(h):
    """Peak probability ``max_ij sigmoid(h)`` of each heatmap, Numba kernel.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.

    Returns
    -------
    peak : float32 ndarray (N, C)
        ``sigmoid(max over the H*W pixels of h)`` per channel, in [0, 1]; used as
        a keypoint confidence.

    Notes
    -----
    ``sigmoid`` is monotonic, so this is the sigmoid of the per-channel maximum.
    """
    h = check_heatmaps(h, "heatmap_peak")
    out = np.empty((h.shape[0], h.shape[3]), np.float32)
    _heatmap_peak_nb(h, out)
    return out


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _heatmap_peak_nb(h, out):
    """Heatmap peak core: per-channel max, then a stable sigmoid.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C)
        Heatmap logits, C-contiguous.
    out : float32 ndarray (N, C)
        Output, overwritten.
    """
    n_img, n_rows, n_cols, n_ch = h.shape
    for n in range(n_img):
        o = out[n]
        for c in range(n_ch):
            o[c] = h[n, 0, 0, c]
        for i in range(n_rows):
            for j in range(n_cols):
                hr = h[n, i, j]
                for c in range(n_ch):
                    o[c] = max(o[c], hr[c])
        for c in range(n_ch):
            v = o[c]
            if v >= 0:
                o[c] = np.float32(1.0) / (np.float32(1.0) + np.exp(-v))
            else:
                ev = np.exp(v)
                o[c] = ev / (np.float32(1.0) + ev)


def heatmap_peak_reference(h):
    """Peak probability of each heatmap, NumPy reference of :func:`heatmap_peak`.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.

    Returns
    -------
    peak : float32 ndarray (N, C)
        ``sigmoid(max over pixels of h)`` per channel.

    Notes
    -----
    Stable sigmoid: ``exp(-|m|)`` never overflows.
    """
    h = check_heatmaps(h, "heatmap_peak_reference")
    m = h.max(axis=(1, 2))
    e = np.exp(-np.abs(m))
    one = np.float32(1.0)
    return np.where(m >= 0, one / (one + e), e / (one + e)).astype(np.float32)


def softmax_peak(h, beta=1.0):
    """Largest probability ``max_ij softmax(beta * h)`` of each heatmap, Numba kernel.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.
    beta : float
        Inverse temperature (>= 0), the one :func:`soft_argmax` decodes with.

    Returns
    -------
    peak : float32 ndarray (N, C)
        The spatial softmax's largest value per channel, in ``[1/(H*W), 1]``: how concentrated
        the distribution that `soft_argmax` averages over is, a keypoint confidence that does
        not need the logits to be trained as sigmoids.

    Notes
    -----
    The largest term of ``exp(beta * (h - max))`` is 1, so the peak is ``1 / sum``; the sum is
    taken in float64.
    """
    h = check_heatmaps(h, "softmax_peak")
    beta = check_beta(beta, "softmax_peak", positive=True)
    out = np.empty((h.shape[0], h.shape[3]), np.float32)
    _softmax_peak_nb(h, beta, out)
    return out


@njit(cache=config.CACHE, fastmath=config.FASTMATH)
def _softmax_peak_nb(h, beta, out):
    """Softmax peak core: per-channel max of ``h``, then ``1 / sum(exp(beta * (h - max)))``.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C)
        Heatmap logits, C-contiguous.
    beta : float32
        Inverse temperature.
    out : float32 ndarray (N, C)
        Output, overwritten.
    """
    n_img, n_rows, n_cols, n_ch = h.shape
    m = np.empty(n_ch, np.float32)
    s = np.empty(n_ch, np.float64)
    for n in range(n_img):
        for c in range(n_ch):
            m[c] = h[n, 0, 0, c]
            s[c] = 0.0
        for i in range(n_rows):
            for j in range(n_cols):
                hr = h[n, i, j]
                for c in range(n_ch):
                    m[c] = max(m[c], hr[c])
        for i in range(n_rows):
            for j in range(n_cols):
                hr = h[n, i, j]
                for c in range(n_ch):
                    # h - max is exactly 0 at the peak (beta > 0), so the sum is >= 1
                    s[c] += np.exp(beta * (hr[c] - m[c]))
        for c in range(n_ch):
            out[n, c] = 1.0 / s[c]


def softmax_peak_reference(h, beta=1.0):
    """Softmax peak of each heatmap, NumPy reference of :func:`softmax_peak`.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.
    beta : float
        Inverse temperature of the softmax.

    Returns
    -------
    peak : float32 ndarray (N, C)
        ``max over pixels of softmax(beta * h)`` per channel.
    """
    h = check_heatmaps(h, "softmax_peak_reference")
    beta = check_beta(beta, "softmax_peak_reference", positive=True)
    z = h.reshape(h.shape[0], -1, h.shape[3]).astype(np.float64) * beta
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)).max(axis=1).astype(np.float32)
