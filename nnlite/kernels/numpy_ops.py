"""The NumPy backend's ops: the references' arithmetic, arranged for speed.

The ``*_reference`` functions beside each Numba kernel are written to be read (they
are the test oracle). The functions here compute the same thing, validate their
arguments with the same checks (same errors), and are what
``nnlite.backend.get_backend("numpy")`` runs. tests/kernels/test_numpy_ops.py
compares each with its reference. What makes them faster, measured on the demo
model at batch 1, one BLAS thread:

- no fresh large temporaries: large intermediates live in a `Workspace` that a
  caller keeps between calls (the model keeps one per thread), so the same
  memory is reused instead of being mapped and page-faulted again on every call;
- no ``np.pad`` copies: the 1x1 expand of an inverted residual block writes its
  activated output straight into the interior of a zero-bordered buffer whose
  border is never written;
- long contiguous inner loops: NHWC rows are handled as ``(rows, W*C)`` so that
  per-channel vectors (biases, depthwise taps) are pre-tiled along W once per
  layer and width (`Workspace.derived`) instead of broadcast 96 floats at a time;
- the 3x3 depthwise sum is one ``np.einsum`` over a strided view of all taps
  (``out[j] += tap[j] * w[j]`` tap after tap on one output row while it is hot in
  cache), per column phase for stride 2;
- bias and activation in place (``np.add``/``np.clip`` with ``out=``);
- the stem (3 input channels, stride 2) builds its im2col matrix with one copy of
  a strided view whose innermost run is ``k*cin`` contiguous floats;
- stage 2 gathers all bilinear corners of all RoI windows with one ``np.take``,
  reduces the channels against every tap of each keypoint's filter with one
  batched matmul, and sums the taps with k*k shifted slice adds.

Everything stays float32. Layouts and shapes are those of the references.
"""
import numpy as np

from nnlite.kernels.activations import ACT_RELU6, act_inplace_np
from nnlite.kernels.checks import (check_beta, check_conv2d, check_heatmaps,
                                   check_inverted_residual, check_pointwise_conv2d,
                                   check_roi_align, check_roi_group_conv, output_array)
from nnlite.kernels.conv import conv2d_np
from nnlite.kernels.roi_align import roi_axis_samples
# Already one vectorised pass over a small map: the reference is the fast version too.
from nnlite.kernels.soft_argmax import softmax_peak_reference as softmax_peak

__all__ = ["Workspace", "conv2d", "heatmap_peak", "inverted_residual", "pointwise_conv2d",
           "roi_align", "roi_group_conv", "soft_argmax", "softmax_peak"]

_as_strided = np.lib.stride_tricks.as_strided
_F0, _F6 = np.float32(0.0), np.float32(6.0)


class Workspace:
    """Reusable scratch arrays and derived weights for the ops of one thread.

    ``buffer(tag, shape)`` hands out the same float32 array for the same tag and
    shape on every call, so its contents are only valid until the next op that
    uses that tag: never return one to a caller. ``derived(a, what, make)``
    caches ``make()`` (e.g. a bias tiled along W) for as long as the array `a`
    itself stays the one cached. Not thread-safe: keep one per thread.
    """

    #: Derived arrays kept at most (cleared when full: the model needs ~70).
    MAX_DERIVED = 512

    def __init__(self):
        self._buffers = {}
        self._derived = {}

    def buffer(self, tag, shape, zero=False):
        """A float32 C-contiguous array of `shape` for `tag`, reused across calls.

        Parameters
        ----------
        tag : hashable
            What the buffer is for; ops that may be live at the same time use
            different tags.
        shape : tuple of int
            Shape of the array.
        zero : bool
            Zero-fill it when first made (for zero borders that are never written).

        Returns
        -------
        buf : float32 ndarray of `shape`
            Contents are whatever the last user left (zeros when new and `zero`).
        """
        key = (tag, tuple(shape))
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = (np.zeros if zero else np.empty)(shape, np.float32)
        return buf

    def derived(self, a, what, make):
        """``make()`` cached under (`a`, `what`); `a` is kept so its id stays unique.

        Parameters
        ----------
        a : ndarray
            The array the value is derived from (e.g. a bias).
        what : hashable
            Which derivation (e.g. ``("tile", 64)``).
        make : callable
            Computes the value when it is not cached.

        Returns
        -------
        value : object
            ``make()``, computed once per (`a`, `what`).
        """
        key = (id(a), what)
        hit = self._derived.get(key)
        if hit is not None and hit[0] is a:
            return hit[1]
        if len(self._derived) >= self.MAX_DERIVED:
            self._derived.clear()
        value = make()
        self._derived[key] = (a, value)
        return value

    def tiled(self, v, reps):
        """``np.tile(v, reps)`` of a 1-D vector, cached (see `derived`).

        Parameters
        ----------
        v : float32 ndarray (C,)
            The vector; the cache entry lives as long as this very array stays cached.
        reps : int
            Copies along the row.

        Returns
        -------
        tiled : float32 ndarray (reps * C,)
            Valid until `v` is evicted; never write to it.
        """
        return self.derived(v, ("tile", reps), lambda: np.tile(v, reps))


def _rows(a):
    """NHWC array as (N*H, W*C): a view in which per-row vectors tile along W."""
    return a.reshape(a.shape[0] * a.shape[1], a.shape[2] * a.shape[3])


# ---------------------------------------------------------------------------
# 1x1 convolution.
# ---------------------------------------------------------------------------


def pointwise_conv2d(x, w, b=None, act="none", *, out=None, work=None):
    """1x1 convolution on NHWC, fast NumPy version of ``pointwise_conv2d_reference``.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, cin), channels-last
        Input activations.
    w : float32 ndarray (cin, cout)
        Weights.
    b : float32 ndarray (cout,) or None
        Bias; None means zeros.
    act : {"none", "relu", "relu6"}
        Activation applied after the bias.
    out : float32 ndarray (N, H, W, cout) or None
        C-contiguous array to write into; None allocates one.
    work : Workspace or None
        Scratch reused across calls; None uses a fresh one.

    Returns
    -------
    out : float32 ndarray (N, H, W, cout), channels-last
        ``act(x @ w + b)`` per pixel.
    """
    where = "pointwise_conv2d (numpy)"
    x, w, b, code = check_pointwise_conv2d(x, w, b, act, where)
    out = output_array(out, x.shape[:3] + (w.shape[1],), where)
    return _pointwise(x, w, b, code, out, work or Workspace())


def _pointwise(x, w, b, code, out, work):
    """act(x @ w + b) into `out` (N, H, W, cout); x C-contiguous (N, H, W, cin)."""
    np.matmul(x.reshape(-1, x.shape[3]), w, out=out.reshape(-1, w.shape[1]))
    rows = _rows(out)
    np.add(rows, work.tiled(b, x.shape[2]), out=rows)
    act_inplace_np(rows, code)
    return out


# ---------------------------------------------------------------------------
# Depthwise convolution on a zero-bordered input.
# ---------------------------------------------------------------------------


def _depthwise_padded(xp, w, b, stride, code, out, work):
    """Depthwise k x k conv of an already padded input, written to `out`.

    xp (N, Hp, Wp, C) C-contiguous, border included; w (k, k, C); b (C,);
    out (N, H_out, W_out*C) C-contiguous, ``H_out = (Hp - k) // stride + 1``.

    Output column ox of tap (ky, kx) reads padded column ``ox*stride + kx``. Split
    the padded columns by ``kx % stride`` (phase p: columns p, p+stride, ...;
    stride 1 has one phase, xp itself): then the taps of phase p read phase
    columns ``ox + kx // stride``, so for a fixed tap one output row is ONE
    contiguous run of W_out*C floats of the phase. A strided view stacks those
    runs for all taps of a phase, and einsum sums tap times tiled weight into
    each output row.
    """
    n, hp, wp, c = xp.shape
    k = w.shape[0]
    ho, wo = out.shape[1], out.shape[2] // c
    for p in range(min(stride, k)):
        if stride == 1:
            ph = xp
        else:
            ph = work.buffer(("dw.phase", p), (n, hp, len(range(p, wp, stride)), c))
            np.copyto(ph, xp[:, :, p::stride])
        s_img, s_row, s_col, s_el = ph.strides
        n_kx = len(range(p, k, stride))
        taps = _as_strided(ph, (k, n_kx, n, ho, wo * c),
                           (s_row, s_col, s_img, s_row * stride, s_el), writeable=False)
        wt = work.derived(w, ("dw.taps", stride, p, wo),
                          lambda: np.ascontiguousarray(np.tile(w[:, p::stride], (1, 1, wo))))
        if p == 0:
            np.einsum("abnij,abj->nij", taps, wt, out=out)
        else:
            acc = work.buffer("dw.acc", out.shape)
            np.einsum("abnij,abj->nij", taps, wt, out=acc)
            np.add(out, acc, out=out)
    rows = out.reshape(n * ho, wo * c)
    np.add(rows, work.tiled(b, wo), out=rows)
    return act_inplace_np(rows, code)


def _padded_copy(x, pad, work, tag):
    """x (N, H, W, C) copied into the interior of a reused zero-bordered buffer."""
    if pad == 0:
        return x
    n, h, w, c = x.shape
    xp = work.buffer((tag, pad), (n, h + 2 * pad, w + 2 * pad, c), zero=True)
    xp[:, pad:pad + h, pad:pad + w] = x
    return xp


# ---------------------------------------------------------------------------
# General convolution.
# ---------------------------------------------------------------------------


def conv2d(x, w, b=None, stride=1, pad=0, groups=1, act="none", *, out=None, work=None):
    """2-D convolution on NHWC, fast NumPy version of ``conv2d_reference``.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Input activations.
    w : float32 ndarray (k, k, C/groups, cout), HWIO
        Weights.
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
    out : float32 ndarray (N, H_out, W_out, cout) or None
        C-contiguous array to write into; None allocates one.
    work : Workspace or None
        Scratch reused across calls; None uses a fresh one.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        Convolution output.

    Notes
    -----
    1x1 stride 1: one matmul. Depthwise: `_depthwise_padded`. groups=1: im2col
    by one copy of a strided view of the padded input (innermost run: the
    ``k*C`` contiguous floats of one kernel row), then one matmul. Other grouped
    convolutions run the reference's batched matmul.
    """
    where = "conv2d (numpy)"
    x, w, b, stride, pad, groups, code, (ho, wo) = check_conv2d(
        x, w, b, stride, pad, groups, act, where)
    n, k, cin, cout = x.shape[0], w.shape[0], x.shape[3], w.shape[3]
    out = output_array(out, (n, ho, wo, cout), where)
    work = work or Workspace()
    if k == 1 and stride == 1 and pad == 0 and groups == 1:
        return _pointwise(x, w.reshape(cin, cout), b, code, out, work)
    if groups == cin and cout == cin:
        xp = _padded_copy(x, pad, work, "conv.pad")
        w_dw = work.derived(w, "dw.weights", lambda: w.reshape(k, k, cin))  # same object each call
        _depthwise_padded(xp, w_dw, b, stride, code, out.reshape(n, ho, wo * cin), work)
        return out
    if groups != 1:
        out[...] = conv2d_np(x, w, b, stride, pad, groups, code)
        return out
    xp = _padded_copy(x, pad, work, "conv.pad")
    s_img, s_row, s_col, s_el = xp.strides
    # patches[n, oy, ox, ky, kx*C + c] = xp[n, oy*s + ky, ox*s + kx, c]
    view = _as_strided(xp, (n, ho, wo, k, k * cin),
                       (s_img, s_row * stride, s_col * stride, s_row, s_el), writeable=False)
    patches = work.buffer("conv.patches", (n * ho * wo, k * k * cin))
    np.copyto(patches.reshape(n, ho, wo, k, k * cin), view)
    np.matmul(patches, w.reshape(k * k * cin, cout), out=out.reshape(-1, cout))
    rows = _rows(out)
    np.add(rows, work.tiled(b, wo), out=rows)
    act_inplace_np(rows, code)
    return out


# ---------------------------------------------------------------------------
# Inverted residual block.
# ---------------------------------------------------------------------------


def inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
                      *, out=None, work=None):
    """MobileNetV2 block, fast NumPy version of ``inverted_residual_reference``.

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
    out : float32 ndarray (N, H_out, W_out, cout) or None
        C-contiguous array to write into (not `x`); None allocates one.
    work : Workspace or None
        Scratch reused across calls; None uses a fresh one.

    Returns
    -------
    out : float32 ndarray (N, H_out, W_out, cout), channels-last
        Block output, ``H_out = (H - 1) // stride + 1``.

    Notes
    -----
    The expand matmul goes to scratch; bias + ReLU6 write it into the interior of
    a zero-bordered (N, H+2, W+2, ce) buffer (the depthwise padding, never
    copied); the depthwise sum runs on that buffer (`_depthwise_padded`); the
    projection matmul writes `out`, then bias and the residual are added in place.
    """
    where = "inverted_residual (numpy)"
    (x, w_expand, b_expand, w_dw, b_dw, w_project, b_project, stride, residual,
     _) = check_inverted_residual(x, w_expand, b_expand, w_dw, b_dw, w_project, b_project,
                                   stride, residual, where)
    work = work or Workspace()
    n, h, w, cin = x.shape
    ce, cout = w_dw.shape[2], w_project.shape[1]
    ho, wo = (h - 1) // stride + 1, (w - 1) // stride + 1
    out = output_array(out, (n, ho, wo, cout), where)
    xp = work.buffer("ir.pad", (n, h + 2, w + 2, ce), zero=True)
    inner = xp[:, 1:h + 1, 1:w + 1].reshape(n, h, w * ce)  # a view: (W, ce) stay contiguous
    if w_expand is None:
        np.copyto(inner, x.reshape(n, h, w * ce))
    else:
        e = work.buffer("ir.expand", (n * h * w, ce))
        np.matmul(x.reshape(-1, cin), w_expand, out=e)
        np.add(e.reshape(n, h, w * ce), work.tiled(b_expand, w), out=inner)
        np.clip(inner, _F0, _F6, out=inner)
    d = work.buffer("ir.dw", (n, ho, wo * ce))
    _depthwise_padded(xp, w_dw, b_dw, stride, ACT_RELU6, d, work)
    np.matmul(d.reshape(-1, ce), w_project, out=out.reshape(-1, cout))
    rows = _rows(out)
    np.add(rows, work.tiled(b_project, wo), out=rows)
    if residual:
        np.add(rows, _rows(x), out=rows)
    return out


# ---------------------------------------------------------------------------
# RoI align, and RoI align fused with the per-keypoint group conv.
# ---------------------------------------------------------------------------


def _roi_corners(x_shape, rois, size, scale, sr, aligned):
    """Flat pixel indices and weights of every bilinear corner of every sample.

    Returns idx int64 (R, oh*ow, 4*sr*sr) into ``x.reshape(-1, C)`` and wts
    float32 (same shape), the average over the sr*sr samples of each bin and
    the zero of out-of-range samples folded into the weights. Sample positions
    come from the reference's `roi_axis_samples` (same float32 arithmetic).
    """
    (oh, ow), (n, h, w) = size, x_shape[:3]
    offset = np.float32(0.5 if aligned else 0.0)
    start = rois[:, 1:3] * scale - offset                # (R, 2) as (x, y)
    extent = (rois[:, 3:5] * scale - offset) - start
    if not aligned:
        extent = np.maximum(extent, np.float32(1.0))
    bins = extent / np.array([ow, oh], np.float32)
    yl, yh, ly, y_ok = roi_axis_samples(start[:, 1], bins[:, 1], oh, sr, h)
    xl, xh, lx, x_ok = roi_axis_samples(start[:, 0], bins[:, 0], ow, sr, w)
    r = rois.shape[0]
    # (R, oh, sr) and (R, ow, sr) -> (R, oh, ow, sr_y, sr_x) by broadcasting.
    base = (rois[:, 0].astype(np.int64) * (h * w))[:, None, None, None, None]
    yl, yh = (a.reshape(r, oh, 1, sr, 1) * w for a in (yl, yh))
    xl, xh = (a.reshape(r, 1, ow, 1, sr) for a in (xl, xh))
    ly, hy = ly.reshape(r, oh, 1, sr, 1), (np.float32(1.0) - ly).reshape(r, oh, 1, sr, 1)
    lx, hx = lx.reshape(r, 1, ow, 1, sr), (np.float32(1.0) - lx).reshape(r, 1, ow, 1, sr)
    ok = (y_ok.reshape(r, oh, 1, sr, 1) & x_ok.reshape(r, 1, ow, 1, sr)).astype(np.float32)
    ok /= np.float32(sr * sr)
    idx = np.stack(np.broadcast_arrays(base + yl + xl, base + yl + xh, base + yh + xl,
                                       base + yh + xh), axis=-1)
    wts = np.stack([hy * hx * ok, hy * lx * ok, ly * hx * ok, ly * lx * ok], axis=-1)
    return idx.reshape(r, oh * ow, -1), wts.reshape(r, oh * ow, -1)


def roi_align(x, rois, output_size, spatial_scale=1.0, sampling_ratio=1, aligned=True, *,
              work=None):
    """RoI align on NHWC, fast NumPy version of ``roi_align_reference``.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Feature map.
    rois : float32 ndarray (K, 5)
        One box per row, ``[batch_index, x0, y0, x1, y1]`` in input-image coordinates.
    output_size : int or tuple of int
        ``oh`` or ``(oh, ow)``.
    spatial_scale : float
        Feature pixels per input-image unit.
    sampling_ratio : int
        Bilinear samples per bin along each axis (> 0).
    aligned : bool
        Half-pixel shift of the scaled box, as in torchvision.
    work : Workspace or None
        Scratch reused across calls; None uses a fresh one.

    Returns
    -------
    out : float32 ndarray (K, oh, ow, C), channels-last
        Pooled features.

    Notes
    -----
    One ``np.take`` gathers every corner of every sample; one einsum weighs and
    sums them per output pixel.
    """
    x, rois, size, scale, sr, aligned = check_roi_align(
        x, rois, output_size, spatial_scale, sampling_ratio, aligned, "roi_align (numpy)")
    work = work or Workspace()
    idx, wts = _roi_corners(x.shape, rois, size, scale, sr, aligned)
    c = x.shape[3]
    g = work.buffer("roi.gather", idx.shape + (c,))
    np.take(x.reshape(-1, c), idx, axis=0, out=g)
    out = np.einsum("rps,rpsc->rpc", wts, g)
    return out.reshape(rois.shape[0], size[0], size[1], c)


def roi_group_conv(x, rois, w, b, output_size, spatial_scale=1.0, sampling_ratio=1,
                   aligned=True, *, work=None):
    """RoI align + per-keypoint conv, fast NumPy version of ``roi_group_conv_reference``.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Feature map.
    rois : float32 ndarray (N*K, 5)
        Boxes, K per image in image-major order (box ``i``: image ``i // K``,
        keypoint ``i % K``).
    w : float32 ndarray (k, k, C, K)
        Group conv weights, HWIO (odd k, stride 1, zero padding ``k // 2``).
    b : float32 ndarray (K,) or None
        Bias; None means zeros.
    output_size : int or tuple of int
        Window size ``oh`` or ``(oh, ow)``.
    spatial_scale : float
        Feature pixels per box unit.
    sampling_ratio : int
        Samples per bin per axis.
    aligned : bool
        Half-pixel shift.
    work : Workspace or None
        Scratch reused across calls; None uses a fresh one.

    Returns
    -------
    out : float32 ndarray (N, oh, ow, K)
        Refinement heatmaps, channels-last.

    Notes
    -----
    Gather the window as in `roi_align`, then per keypoint contract the channels
    against all k*k taps at once (one batched matmul, (oh*ow, C) @ (C, k*k) per
    box) and add each tap's plane, shifted, into a zero-bordered (oh+k-1, ow+k-1)
    accumulator: the conv's zero padding without padding the window.
    """
    x, rois, w, b, (oh, ow), scale, sr, aligned = check_roi_group_conv(
        x, rois, w, b, output_size, spatial_scale, sampling_ratio, aligned,
        "roi_group_conv (numpy)")
    work = work or Workspace()
    k, c, n_groups = w.shape[0], x.shape[3], w.shape[3]
    r, n = rois.shape[0], x.shape[0]
    idx, wts = _roi_corners(x.shape, rois, (oh, ow), scale, sr, aligned)
    g = work.buffer("roi.gather", idx.shape + (c,))
    np.take(x.reshape(-1, c), idx, axis=0, out=g)
    win = work.buffer("roi.win", (r, oh * ow, c))
    np.einsum("rps,rpsc->rpc", wts, g, out=win)
    # (k, k, C, K) -> (K, C, k*k): box i uses the filter of keypoint i % K.
    wk = work.derived(w, "roi.filters",
                      lambda: np.ascontiguousarray(w.reshape(k * k, c, n_groups).transpose(2, 1, 0)))
    taps = work.buffer("roi.taps", (n, n_groups, oh * ow, k * k))
    np.matmul(win.reshape(n, n_groups, oh * ow, c), wk, out=taps)
    # Keypoints innermost, (N, k*k, oh, ow, K): each tap's plane then adds as runs
    # of ow*K contiguous floats, and the result is already NHWC.
    planes = work.buffer("roi.planes", (n, k * k, oh, ow, n_groups))
    np.copyto(planes.reshape(n, k * k, oh * ow, n_groups), taps.transpose(0, 3, 2, 1))
    pad = k // 2
    acc = work.buffer(("roi.acc", pad), (n, oh + 2 * pad, ow + 2 * pad, n_groups))
    acc[...] = 0.0
    for ky in range(k):
        for kx in range(k):
            # out[oy, ox] += taps[oy + ky - pad, ox + kx - pad, ky, kx]: write the
            # tap plane shifted by (pad - ky, pad - kx) into the padded accumulator.
            dst = acc[:, 2 * pad - ky:2 * pad - ky + oh, 2 * pad - kx:2 * pad - kx + ow]
            np.add(dst, planes[:, ky * k + kx], out=dst)
    return acc[:, pad:pad + oh, pad:pad + ow] + b


# ---------------------------------------------------------------------------
# Heatmap read-out.
# ---------------------------------------------------------------------------


def soft_argmax(h, beta=1.0, *, work=None, peak=None):
    """Soft-argmax of NHWC heatmaps, fast NumPy version of ``soft_argmax_reference``.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.
    beta : float
        Inverse temperature of the softmax.
    work : Workspace or None
        Scratch reused across calls; None uses a fresh one.
    peak : float32 ndarray (N, C) or None
        Where to write each softmax's largest probability too (``softmax_peak``).

    Returns
    -------
    xy : float32 ndarray (N, C, 2)
        ``[x, y]`` expected position per channel, pixel-centre units.
    """
    h = check_heatmaps(h, "soft_argmax (numpy)")
    beta = check_beta(beta, "soft_argmax (numpy)")
    work = work or Workspace()
    n, rows, cols, c = h.shape
    e = np.multiply(h.reshape(n, rows * cols, c), beta, out=work.buffer("softmax", (n, rows * cols, c)))
    np.exp(np.subtract(e, e.max(axis=1, keepdims=True), out=e), out=e)
    total = e.sum(axis=1)                                        # (N, C)
    if peak is not None:  # the largest exp(beta * h - max) is 1: the peak is 1 / total
        np.divide(1.0, total, out=output_array(peak, total.shape, "soft_argmax (numpy) peak"))
    grid = _pixel_grid(rows, cols)                               # (2, H*W) as (x, y)
    xy = np.matmul(grid, e) / total[:, None, :]                  # (N, 2, C)
    return np.ascontiguousarray(xy.transpose(0, 2, 1))


_GRIDS = {}


def _pixel_grid(rows, cols):
    """float32 (2, rows*cols): x (column) and y (row) of each pixel, row-major; cached."""
    grid = _GRIDS.get((rows, cols))
    if grid is None:
        yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
        grid = _GRIDS[(rows, cols)] = np.stack([xx.ravel(), yy.ravel()])
        grid.flags.writeable = False
    return grid


def heatmap_peak(h):
    """Peak probability of each heatmap, fast NumPy version of ``heatmap_peak_reference``.

    Parameters
    ----------
    h : float32 ndarray (N, H, W, C), channels-last
        Heatmap logits.

    Returns
    -------
    peak : float32 ndarray (N, C)
        ``sigmoid(max over pixels of h)`` per channel.
    """
    h = check_heatmaps(h, "heatmap_peak (numpy)")
    m = h.reshape(h.shape[0], -1, h.shape[3]).max(axis=1)
    e = np.exp(-np.abs(m))
    # Stable sigmoid: sigmoid(|m|) = 1 / (1 + e); sigmoid(-|m|) = e / (1 + e).
    return np.where(m >= 0, np.float32(1.0), e) / (np.float32(1.0) + e)
