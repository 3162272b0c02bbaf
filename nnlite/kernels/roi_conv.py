"""RoI align fused with a per-box convolution: sample a window, convolve it, per keypoint.

A two-stage keypoint head crops a small window of shared features around each
keypoint (RoI align) and convolves each crop with that keypoint's own filter (a
group convolution, groups = keypoints, one output channel per group). Unfused,
that is three passes: RoI align to (N*K, oh, ow, C), a transpose to
(N, oh, ow, K*C) so the groups line up, and the group conv. Here each box is
sampled straight into a small zero-bordered window buffer (the conv padding) and
convolved at once, so nothing but the (N, oh, ow, K) result is written.

Boxes are ``[batch_index, x0, y0, x1, y1]`` rows in image-major order, K per image:
box ``i`` belongs to image ``i // K`` and keypoint (group) ``i % K``. Sampling
follows :func:`nnlite.kernels.roi_align.roi_align` exactly (torchvision semantics);
the conv is ``k x k``, stride 1, zero padding ``k // 2`` ("same"), like
:func:`nnlite.kernels.conv.conv2d` with ``groups = K``.

Layouts: features NHWC; weights HWIO ``(k, k, C, K)`` (a ``groups=K`` conv weight
from :func:`~nnlite.kernels.layout.conv_weight_from_torch` of a PyTorch
``(K, C, k, k)`` tensor), output NHWC ``(N, oh, ow, K)``.
"""
import numpy as np

from nnlite import config
from nnlite.jit import get_num_threads, njit, prange
from nnlite.kernels.checks import check_roi_group_conv
from nnlite.kernels.conv import conv2d_reference
from nnlite.kernels.roi_align import (roi_align, roi_align_one_nb,
                                      roi_align_reference, roi_axis_tables)
from nnlite.kernels.simd import LANES, aligned_zeros, padded, vfma, vload1, vsplat, vsum

__all__ = ["pack_roi_group_conv", "roi_group_conv", "roi_group_conv_packed",
           "roi_group_conv_reference", "roi_group_conv_unfused"]


def pack_roi_group_conv(w, b=None):
    """Weights of the fused kernel: one zero-padded filter block per keypoint.

    Parameters
    ----------
    w : float32 ndarray (k, k, C, K)
        Group conv weights, HWIO.
    b : float32 ndarray (K,) or None
        Bias; None means zeros.

    Returns
    -------
    wk : float32 ndarray (K, k*k, C8)
        ``wk[j, ky*k + kx, c] = w[ky, kx, c, j]``, channels zero-padded to
        ``C8 = padded(C)``.
    bk : float32 ndarray (K,)
        Bias.
    """
    k, _, c, n_groups = w.shape
    wk = aligned_zeros((n_groups, k * k, padded(c)))
    wk[:, :, :c] = w.reshape(k * k, c, n_groups).transpose(2, 0, 1)
    bk = np.zeros(n_groups, np.float32) if b is None else np.array(b, np.float32)
    return wk, bk


def roi_group_conv_scratch(k, size, c8, workers):
    """Per-worker window buffers of the fused kernel.

    Parameters
    ----------
    k : int
        Conv kernel size (odd).
    size : tuple of int
        ``(oh, ow)``.
    c8 : int
        Padded channels.
    workers : int
        Parallel workers.

    Returns
    -------
    win : float32 ndarray (workers, oh + k - 1, ow + k - 1, C8)
        Zeros; the kernel writes only the interior's first C channels.
    """
    return aligned_zeros((workers, size[0] + k - 1, size[1] + k - 1, c8))


def roi_group_conv(x, rois, w, b, output_size, spatial_scale=1.0, sampling_ratio=1,
                   aligned=True):
    """RoI align + per-keypoint ``k x k`` conv, fused Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Feature map.
    rois : float32 ndarray (N*K, 5)
        Boxes ``[batch_index, x0, y0, x1, y1]``, K per image in image-major order
        (checked); box ``i`` uses filter ``i % K``.
    w : float32 ndarray (k, k, C, K)
        Group conv weights, HWIO (odd ``k``).
    b : float32 ndarray (K,) or None
        Bias; None means zeros.
    output_size : int or tuple of int
        Window ``oh`` or ``(oh, ow)`` (RoI align bins = conv output size).
    spatial_scale : float
        Feature pixels per box unit.
    sampling_ratio : int
        Bilinear samples per bin along each axis (> 0).
    aligned : bool
        Half-pixel box shift, as in :func:`~nnlite.kernels.roi_align.roi_align`.

    Returns
    -------
    out : float32 ndarray (N, oh, ow, K), channels-last
        ``conv2d(transpose(roi_align(x, rois)), w, b, pad=k//2, groups=K)``.

    Notes
    -----
    Packs the weights per call; callers with fixed weights pack once
    (:func:`pack_roi_group_conv`) and call :func:`roi_group_conv_packed`.
    """
    x, rois, w, b, size, scale, sr, aligned = check_roi_group_conv(
        x, rois, w, b, output_size, spatial_scale, sampling_ratio, aligned, "roi_group_conv")
    wk, bk = pack_roi_group_conv(w, b)
    out = np.empty((x.shape[0],) + size + (w.shape[3],), np.float32)
    return roi_group_conv_packed(x, rois, wk, bk, w.shape[0], scale, sr, aligned, out)


def roi_group_conv_packed(x, rois, wk, bk, k, scale, sampling_ratio, aligned, out,
                          scratch=None):
    """Run the fused kernel on packed weights into ``out`` (no argument checks).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), C-contiguous
        Features.
    rois : float32 ndarray (N*K, 5), C-contiguous
        Boxes (valid, image-major, K per image).
    wk : float32 ndarray (K, k*k, C8)
        Packed weights.
    bk : float32 ndarray (K,)
        Bias.
    k : int
        Conv kernel size.
    scale : float32
        Spatial scale.
    sampling_ratio : int
        Samples per bin per axis.
    aligned : bool
        Half-pixel shift.
    out : float32 ndarray (N, oh, ow, K)
        Output, overwritten.
    scratch : float32 ndarray or None
        From :func:`roi_group_conv_scratch` with enough workers; None allocates.

    Returns
    -------
    out : float32 ndarray
        ``out``.
    """
    n_boxes = rois.shape[0]
    workers = 1
    # Multiply-adds: per box and output pixel a k x k window of every channel.
    if get_num_threads() > 1 and n_boxes * out.shape[1] * out.shape[2] * k * k * x.shape[3] >= \
            config.MIN_PARALLEL_MACS:
        workers = min(get_num_threads(), n_boxes)
    if scratch is None or scratch.shape[0] < workers:
        scratch = roi_group_conv_scratch(k, out.shape[1:3], wk.shape[2], workers)
    geom = (int(sampling_ratio), int(aligned), k)
    if workers == 1:
        _roi_group_conv_serial_nb(x, rois, wk, bk, np.float32(scale), geom, scratch, out)
    else:
        _roi_group_conv_nb(x, rois, wk, bk, np.float32(scale), geom, scratch, out, workers)
    return out


@njit(cache=config.CACHE, parallel=config.PARALLEL)
def _roi_group_conv_nb(x, rois, wk, bk, scale, geom, scratch, out, workers):
    """Fused core, ``workers`` threads over contiguous chunks of boxes.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features.
    rois : float32 ndarray (N*K, 5)
        Boxes.
    wk : float32 ndarray (K, k*k, C8)
        Packed weights.
    bk : float32 ndarray (K,)
        Bias.
    scale : float32
        Spatial scale.
    geom : tuple of int
        ``(sampling_ratio, aligned, k)``.
    scratch : float32 ndarray (workers, oh + k - 1, ow + k - 1, C8)
        Window buffers.
    out : float32 ndarray (N, oh, ow, K)
        Output, overwritten.
    workers : int
        Number of parallel workers.
    """
    n_boxes = rois.shape[0]
    chunk = (n_boxes + workers - 1) // workers
    for wk_id in prange(workers):
        win = scratch[wk_id]
        win[:, :, :] = np.float32(0.0)
        tables = roi_axis_tables(max(out.shape[1], out.shape[2]) * geom[0])
        for i in range(wk_id * chunk, min((wk_id + 1) * chunk, n_boxes)):
            _roi_group_conv_box_nb(x, rois, i, wk, bk, scale, geom, win, tables, out)


@njit(cache=config.CACHE)
def _roi_group_conv_serial_nb(x, rois, wk, bk, scale, geom, scratch, out):
    """Serial fused core (worker 0's window buffer).

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features.
    rois : float32 ndarray (N*K, 5)
        Boxes.
    wk : float32 ndarray (K, k*k, C8)
        Packed weights.
    bk : float32 ndarray (K,)
        Bias.
    scale : float32
        Spatial scale.
    geom : tuple of int
        ``(sampling_ratio, aligned, k)``.
    scratch : float32 ndarray (workers, oh + k - 1, ow + k - 1, C8)
        Window buffers.
    out : float32 ndarray (N, oh, ow, K)
        Output, overwritten.
    """
    win = scratch[0]
    win[:, :, :] = np.float32(0.0)
    tables = roi_axis_tables(max(out.shape[1], out.shape[2]) * geom[0])
    for i in range(rois.shape[0]):
        _roi_group_conv_box_nb(x, rois, i, wk, bk, scale, geom, win, tables, out)


@njit(cache=config.CACHE)
def _roi_group_conv_box_nb(x, rois, i, wk, bk, scale, geom, win, tables, out):
    """Box ``i``: RoI align into the window interior, then its keypoint's conv.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features.
    rois : float32 ndarray (N*K, 5)
        Boxes.
    i : int
        The box; image ``i // K``, keypoint ``i % K``.
    wk : float32 ndarray (K, k*k, C8)
        Packed weights.
    bk : float32 ndarray (K,)
        Bias.
    scale : float32
        Spatial scale.
    geom : tuple of int
        ``(sampling_ratio, aligned, k)``.
    win : float32 ndarray (oh + k - 1, ow + k - 1, C8)
        Window buffer; its border and padding channels are zero and stay zero.
    tables : tuple of ndarray
        RoI sample tables (:func:`~nnlite.kernels.roi_align.roi_axis_tables`).
    out : float32 ndarray (N, oh, ow, K)
        Output; ``out[i // K, :, :, i % K]`` is written.

    Notes
    -----
    The conv goes 4 output pixels at a time (4 independent accumulator chains
    sharing each weight load), channels 8 per vector, one horizontal sum per output.
    """
    sr, aligned, k = geom
    n_groups = wk.shape[0]
    n = i // n_groups
    j = i - n * n_groups
    oh, ow = out.shape[1], out.shape[2]
    pad = k // 2
    roi_align_one_nb(x, rois, i, scale, (sr, aligned), win, pad, pad, oh, ow, tables)
    c8 = win.shape[2]
    row = win.shape[1] * c8
    fw = win.reshape(-1)
    fk = wk[j].reshape(-1)
    bias = bk[j]
    zero = vsplat(np.float32(0.0))
    span = k * c8  # one kernel row of taps: k pixels x C8 channels, contiguous in both
    for oy in range(oh):
        for ox in range(0, ow, 4):
            d0 = oy * row + ox * c8
            d1 = oy * row + min(ox + 1, ow - 1) * c8
            d2 = oy * row + min(ox + 2, ow - 1) * c8
            d3 = oy * row + min(ox + 3, ow - 1) * c8
            acc0 = zero
            acc1 = zero
            acc2 = zero
            acc3 = zero
            for ky in range(k):
                tap = ky * span
                src = ky * row
                for m in range(0, span, LANES):
                    wv = vload1(fk, tap + m)
                    acc0 = vfma(vload1(fw, src + d0 + m), wv, acc0)
                    acc1 = vfma(vload1(fw, src + d1 + m), wv, acc1)
                    acc2 = vfma(vload1(fw, src + d2 + m), wv, acc2)
                    acc3 = vfma(vload1(fw, src + d3 + m), wv, acc3)
            o = out[n, oy]
            o[ox, j] = vsum(acc0) + bias
            if ox + 1 < ow:
                o[ox + 1, j] = vsum(acc1) + bias
            if ox + 2 < ow:
                o[ox + 2, j] = vsum(acc2) + bias
            if ox + 3 < ow:
                o[ox + 3, j] = vsum(acc3) + bias


def roi_group_conv_unfused(x, rois, w, b, output_size, spatial_scale=1.0, sampling_ratio=1,
                           aligned=True, roi_align_fn=roi_align, conv2d_fn=None):
    """The unfused path: RoI align, transpose to keypoint-major channels, group conv.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features.
    rois : float32 ndarray (N*K, 5)
        Boxes, K per image, image-major.
    w : float32 ndarray (k, k, C, K)
        Group conv weights, HWIO.
    b : float32 ndarray (K,) or None
        Bias.
    output_size : int or tuple of int
        Window size.
    spatial_scale : float
        Box scale.
    sampling_ratio : int
        Samples per bin per axis.
    aligned : bool
        Half-pixel shift.
    roi_align_fn : callable
        RoI align to use (:func:`~nnlite.kernels.roi_align.roi_align` or its reference).
    conv2d_fn : callable or None
        Convolution to use (default :func:`~nnlite.kernels.conv.conv2d_reference`).

    Returns
    -------
    out : float32 ndarray (N, oh, ow, K)
        Same as :func:`roi_group_conv`.
    """
    conv2d_fn = conv2d_fn or conv2d_reference
    n_groups, c, k = w.shape[3], x.shape[3], w.shape[0]
    n = rois.shape[0] // n_groups
    win = roi_align_fn(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    oh, ow = win.shape[1], win.shape[2]
    win = win.reshape(n, n_groups, oh, ow, c).transpose(0, 2, 3, 1, 4)
    win = np.ascontiguousarray(win.reshape(n, oh, ow, n_groups * c))
    return conv2d_fn(win, w, b, 1, k // 2, n_groups)


def roi_group_conv_reference(x, rois, w, b, output_size, spatial_scale=1.0, sampling_ratio=1,
                             aligned=True):
    """NumPy reference of :func:`roi_group_conv`: the unfused path on the references.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Feature map.
    rois : float32 ndarray (N*K, 5)
        Boxes, K per image in image-major order.
    w : float32 ndarray (k, k, C, K)
        Group conv weights, HWIO.
    b : float32 ndarray (K,) or None
        Bias; None means zeros.
    output_size : int or tuple of int
        Window size.
    spatial_scale : float
        Feature pixels per box unit.
    sampling_ratio : int
        Samples per bin per axis.
    aligned : bool
        Half-pixel shift.

    Returns
    -------
    out : float32 ndarray (N, oh, ow, K)
        :func:`~nnlite.kernels.roi_align.roi_align_reference`, transposed to
        (N, oh, ow, K*C), then :func:`~nnlite.kernels.conv.conv2d_reference` with
        ``groups=K`` and ``pad=k//2``.
    """
    x, rois, w, b, size, scale, sr, aligned = check_roi_group_conv(
        x, rois, w, b, output_size, spatial_scale, sampling_ratio, aligned,
        "roi_group_conv_reference")
    return roi_group_conv_unfused(x, rois, w, b, size, float(scale), sr, aligned,
                                  roi_align_reference, conv2d_reference)
