"""RoI align (Mask R-CNN bilinear crop-and-pool) on NHWC float32 features.

Same semantics as ``torchvision.ops.roi_align`` (CPU kernel) for
``sampling_ratio > 0``, including its float32 coordinate arithmetic, so results
match torchvision to float32 rounding of the final sums:

- a box ``[b, x0, y0, x1, y1]`` is scaled by ``spatial_scale``; with ``aligned``
  it is shifted by -0.5 so that pixel centres sit at integer coordinates (pixel
  ``(i, j)`` covers ``[j - 0.5, j + 0.5]``); without it, boxes narrower than one
  pixel are widened to one pixel;
- each of the ``oh x ow`` bins is sampled at ``sampling_ratio x sampling_ratio``
  evenly spaced points (bin centres for ``sampling_ratio = 1``), each bilinearly
  interpolated, and the samples are averaged;
- a sample with ``y < -1`` or ``y > H`` (or ``x < -1`` or ``x > W``) contributes 0
  but still counts in the average; otherwise ``y <= 0`` is clamped to 0 and
  ``y >= H - 1`` to ``H - 1`` (same for ``x``).
"""
import numpy as np

from nnlite import config
from nnlite.jit import njit
from nnlite.kernels.checks import check_roi_align
from nnlite.kernels.simd import LANES, vadd, vload1, vmul, vsplat, vstore1


def roi_align(x, rois, output_size, spatial_scale=1.0, sampling_ratio=1, aligned=True):
    """RoI align on NHWC features (torchvision semantics), Numba kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C), channels-last
        Feature map.
    rois : float32 ndarray (K, 5)
        One box per row, ``[batch_index, x0, y0, x1, y1]`` in input-image
        coordinates (multiplied by ``spatial_scale`` to get feature coordinates).
    output_size : int or tuple of int
        ``oh`` (square) or ``(oh, ow)``: bins per box along y and x.
    spatial_scale : float
        Feature pixels per input-image unit, e.g. 1/4 for a stride-4 feature map.
    sampling_ratio : int
        Bilinear samples per bin along each axis (> 0; torchvision's adaptive
        ``<= 0`` raises ValueError).
    aligned : bool
        Shift the scaled box by -0.5 (half-pixel, pixel centres at integer
        coordinates), as ``torchvision.ops.roi_align(..., aligned=True)``.

    Returns
    -------
    out : float32 ndarray (K, oh, ow, C), channels-last
        Pooled features, one crop per box.

    Notes
    -----
    Bin ``(ph, pw)`` of a box with scaled start ``(ys, xs)`` and size
    ``(bh, bw) = (height / oh, width / ow)`` is sampled at
    ``y = ys + ph*bh + (iy + 0.5) * bh / sampling_ratio``,
    ``iy = 0..sampling_ratio-1`` (same for x). With ``aligned`` the start is
    ``y0*spatial_scale - 0.5``. See the module docstring for border handling.
    Serial: the work is small (e.g. 68 boxes x 8 x 8 x 24 channels), and a serial
    kernel compiles much faster.
    """
    x, rois, (oh, ow), scale, sr, aligned = check_roi_align(
        x, rois, output_size, spatial_scale, sampling_ratio, aligned, "roi_align")
    out = np.empty((rois.shape[0], oh, ow, x.shape[3]), np.float32)
    _roi_align_nb(x, rois, scale, (sr, int(aligned)), out)
    return out


@njit(cache=config.CACHE, fastmath=config.GEOMETRY_FASTMATH)
def _roi_align_nb(x, rois, scale, geom, out):
    """RoI align core, float32 coordinate arithmetic as in torchvision.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features, C-contiguous.
    rois : float32 ndarray (K, 5)
        Boxes with valid batch indices.
    scale : float32
        Spatial scale.
    geom : tuple of int
        ``(sampling_ratio, aligned)``.
    out : float32 ndarray (K, oh, ow, C)
        Output, overwritten.
    """
    tables = roi_axis_tables(max(out.shape[1], out.shape[2]) * geom[0])
    for k in range(rois.shape[0]):
        roi_align_one_nb(x, rois, k, scale, geom, out[k], 0, 0, out.shape[1], out.shape[2],
                          tables)


@njit(cache=config.CACHE)
def roi_axis_tables(n):
    """Scratch for :func:`roi_align_one_nb`: sample tables of up to ``n`` samples per axis.

    Parameters
    ----------
    n : int
        Most samples along one axis (``max(oh, ow) * sampling_ratio``).

    Returns
    -------
    tables : tuple of ndarray
        ``(lo, hi)`` int64 (2, n) each, ``frac`` float32 (2, n), ``ok`` bool (2, n);
        row 0 is y, row 1 is x.
    """
    return (np.empty((2, n), np.int64), np.empty((2, n), np.int64),
            np.empty((2, n), np.float32), np.empty((2, n), np.bool_))


@njit(cache=config.CACHE, fastmath=config.GEOMETRY_FASTMATH)
def _roi_axis_nb(start, bin_size, n_bins, sr, length, axis, tables):
    """Sample positions of one box along one axis: neighbours, weight, validity.

    Parameters
    ----------
    start : float32
        Scaled, shifted box start.
    bin_size : float32
        Bin size.
    n_bins : int
        Bins along the axis.
    sr : int
        Samples per bin.
    length : int
        Feature map size along the axis.
    axis : int
        Table row to fill (0: y, 1: x).
    tables : tuple of ndarray
        From :func:`roi_axis_tables`; entries ``0 .. n_bins*sr - 1`` of row
        ``axis`` are written, sample ``bin*sr + i``.
    """
    lo_t, hi_t, frac_t, ok_t = tables
    f0 = np.float32(0.0)
    half = np.float32(0.5)
    f_len = np.float32(length)
    f_sr = np.float32(sr)
    for p in range(n_bins):
        for i in range(sr):
            j = p * sr + i
            # The same float32 expression as torchvision (and the NumPy reference).
            pos = start + np.float32(p) * bin_size + (np.float32(i) + half) * bin_size / f_sr
            # Written as not-in-range so NaN coordinates count as outside.
            ok = pos >= np.float32(-1.0) and pos <= f_len
            ok_t[axis, j] = ok
            if not ok:
                continue
            c = max(pos, f0)
            lo = int(c)
            if lo >= length - 1:
                lo = length - 1
                hi = lo
                c = np.float32(lo)
            else:
                hi = lo + 1
            lo_t[axis, j] = lo
            hi_t[axis, j] = hi
            frac_t[axis, j] = c - np.float32(lo)


@njit(cache=config.CACHE, fastmath=config.GEOMETRY_FASTMATH)
def roi_align_one_nb(x, rois, k, scale, geom, dst, oy0, ox0, oh, ow, tables):
    """RoI align of box ``k`` into ``dst``; the arithmetic of torchvision's CPU kernel.

    Parameters
    ----------
    x : float32 ndarray (N, H, W, C)
        Features, C-contiguous.
    rois : float32 ndarray (K, 5)
        Boxes with valid batch indices.
    k : int
        The box.
    scale : float32
        Spatial scale.
    geom : tuple of int
        ``(sampling_ratio, aligned)``.
    dst : float32 ndarray (>= oy0 + oh, >= ox0 + ow, >= C), C-contiguous
        Output buffer; bin ``(ph, pw)`` goes to ``dst[oy0 + ph, ox0 + pw, :C]`` (e.g.
        the interior of a zero-bordered window).
    oy0 : int
        Row of bin (0, 0) in ``dst``.
    ox0 : int
        Column of bin (0, 0) in ``dst``.
    oh : int
        Bins along y.
    ow : int
        Bins along x.
    tables : tuple of ndarray
        Scratch from :func:`roi_axis_tables` with room for ``max(oh, ow) * sr`` samples.

    Notes
    -----
    y and x are separable: the sample positions, neighbour indices and weights of
    each axis are computed once per box (:func:`_roi_axis_nb`), with exactly the
    float32 operations of the per-sample formula, then every bin combines them.
    Flat offsets instead of array views keep the per-bin work to loads and sums.
    """
    sr, aligned = geom
    h_in, w_in, n_ch = x.shape[1], x.shape[2], x.shape[3]
    f0 = np.float32(0.0)
    f1 = np.float32(1.0)
    offset = np.float32(0.5) if aligned else f0
    count = np.float32(sr * sr)
    n = int(rois[k, 0])
    xs = rois[k, 1] * scale - offset
    ys = rois[k, 2] * scale - offset
    roi_w = (rois[k, 3] * scale - offset) - xs
    roi_h = (rois[k, 4] * scale - offset) - ys
    if not aligned:
        roi_w = max(roi_w, f1)
        roi_h = max(roi_h, f1)
    _roi_axis_nb(ys, roi_h / np.float32(oh), oh, sr, h_in, 0, tables)
    _roi_axis_nb(xs, roi_w / np.float32(ow), ow, sr, w_in, 1, tables)
    lo_t, hi_t, frac_t, ok_t = tables
    xf = x[n].reshape(-1)
    df = dst.reshape(-1)
    d_row, d_ch = dst.shape[1] * dst.shape[2], dst.shape[2]
    x_row = w_in * n_ch
    c8 = n_ch - n_ch % LANES
    vzero = vsplat(f0)
    for ph in range(oh):
        for pw in range(ow):
            o = (oy0 + ph) * d_row + (ox0 + pw) * d_ch
            if sr == 1 and ok_t[0, ph] and ok_t[1, pw]:
                # One sample per bin, inside: store it (0 + v == v, the same value).
                ly = frac_t[0, ph]
                lx = frac_t[1, pw]
                hy = f1 - ly
                hx = f1 - lx
                r_lo = lo_t[0, ph] * x_row
                r_hi = hi_t[0, ph] * x_row
                c_lo = lo_t[1, pw] * n_ch
                c_hi = hi_t[1, pw] * n_ch
                _bilinear_set_nb(df, o, xf, r_lo + c_lo, r_lo + c_hi, r_hi + c_lo, r_hi + c_hi,
                                 hy * hx, hy * lx, ly * hx, ly * lx, n_ch)
                continue
            for c in range(0, c8, LANES):
                vstore1(df, o + c, vzero)
            for c in range(c8, n_ch):
                df[o + c] = f0
            for iy in range(sr):
                yj = ph * sr + iy
                if not ok_t[0, yj]:
                    continue
                ly = frac_t[0, yj]
                hy = f1 - ly
                r_lo = lo_t[0, yj] * x_row
                r_hi = hi_t[0, yj] * x_row
                for ix in range(sr):
                    xj = pw * sr + ix
                    if not ok_t[1, xj]:
                        continue
                    lx = frac_t[1, xj]
                    hx = f1 - lx
                    c_lo = lo_t[1, xj] * n_ch
                    c_hi = hi_t[1, xj] * n_ch
                    _bilinear_add_nb(df, o, xf, r_lo + c_lo, r_lo + c_hi, r_hi + c_lo,
                                     r_hi + c_hi, hy * hx, hy * lx, ly * hx, ly * lx, n_ch)
            if sr != 1:
                for c in range(n_ch):
                    df[o + c] = df[o + c] / count


@njit(cache=config.CACHE, fastmath=config.GEOMETRY_FASTMATH, inline="always")
def _bilinear_set_nb(df, o, xf, i1, i2, i3, i4, w1, w2, w3, w4, n_ch):
    """``df[o + c] = w1*xf[i1 + c] + w2*xf[i2 + c] + w3*xf[i3 + c] + w4*xf[i4 + c]``.

    Parameters
    ----------
    df : float32 ndarray, 1-D
        Output buffer.
    o : int
        Offset of the output's channel 0 in ``df``.
    xf : float32 ndarray, 1-D
        One image's features, flat NHWC.
    i1 : int
        Offset of the top-left neighbour's channel 0 in ``xf``.
    i2 : int
        Top-right neighbour.
    i3 : int
        Bottom-left neighbour.
    i4 : int
        Bottom-right neighbour.
    w1 : float32
        Top-left weight.
    w2 : float32
        Top-right weight.
    w3 : float32
        Bottom-left weight.
    w4 : float32
        Bottom-right weight.
    n_ch : int
        Channels ``c = 0 .. n_ch - 1``.

    Notes
    -----
    :func:`_bilinear_add_nb` onto zeros, without reading the zeros: the same
    rounding (``0 + v`` is ``v``).
    """
    s1 = vsplat(w1)
    s2 = vsplat(w2)
    s3 = vsplat(w3)
    s4 = vsplat(w4)
    c8 = n_ch - n_ch % LANES
    for c in range(0, c8, LANES):
        vstore1(df, o + c, vadd(vadd(vadd(vmul(s1, vload1(xf, i1 + c)), vmul(s2, vload1(xf, i2 + c))),
                                     vmul(s3, vload1(xf, i3 + c))), vmul(s4, vload1(xf, i4 + c))))
    for c in range(c8, n_ch):
        df[o + c] = w1 * xf[i1 + c] + w2 * xf[i2 + c] + w3 * xf[i3 + c] + w4 * xf[i4 + c]


@njit(cache=config.CACHE, fastmath=config.GEOMETRY_FASTMATH, inline="always")
def _bilinear_add_nb(df, o, xf, i1, i2, i3, i4, w1, w2, w3, w4, n_ch):
    """``df[o + c] += w1*xf[i1 + c] + w2*xf[i2 + c] + w3*xf[i3 + c] + w4*xf[i4 + c]``.

    Parameters
    ----------
    df : float32 ndarray, 1-D
        Accumulator buffer.
    o : int
        Offset of the accumulator's channel 0 in ``df``.
    xf : float32 ndarray, 1-D
        One image's features, flat NHWC.
    i1 : int
        Offset of the top-left neighbour's channel 0 in ``xf``.
    i2 : int
        Top-right neighbour.
    i3 : int
        Bottom-left neighbour.
    i4 : int
        Bottom-right neighbour.
    w1 : float32
        Weight of the top-left neighbour (likewise ``w2`` .. ``w4``).
    w2 : float32
        Top-right weight.
    w3 : float32
        Bottom-left weight.
    w4 : float32
        Bottom-right weight.
    n_ch : int
        Channels ``c = 0 .. n_ch - 1``.

    Notes
    -----
    Eight channels at a time with separate multiplies and adds in the scalar order
    (no fused multiply-add), so every lane rounds exactly as the scalar formula.
    """
    s1 = vsplat(w1)
    s2 = vsplat(w2)
    s3 = vsplat(w3)
    s4 = vsplat(w4)
    c8 = n_ch - n_ch % LANES
    for c in range(0, c8, LANES):
        t = vadd(vadd(vadd(vmul(s1, vload1(xf, i1 + c)), vmul(s2, vload1(xf, i2 + c))),
                      vmul(s3, vload1(xf, i3 + c))), vmul(s4, vload1(xf, i4 + c)))
        vstore1(df, o + c, vadd(vload1(df, o + c), t))
    for c in range(c8, n_ch):
        df[o + c] += w1 * xf[i1 + c] + w2 * xf[i2 + c] + w3 * xf[i3 + c] + w4 * xf[i4 + c]


def roi_align_reference(x, rois, output_size, spatial_scale=1.0, sampling_ratio=1,
                        aligned=True):
    """RoI align on NHWC features, vectorised NumPy reference of :func:`roi_align`.

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

    Returns
    -------
    out : float32 ndarray (K, oh, ow, C), channels-last
        Pooled features.

    Notes
    -----
    Sample positions as in :func:`roi_align`. The y and x sample coordinates of
    every box are computed as (K, oh*s) and (K, ow*s) float32 arrays (y and x are
    separable), the four neighbours gathered with fancy indexing, and the
    ``s*s`` samples of each bin summed in the same order as torchvision.
    """
    x, rois, (oh, ow), scale, sr, aligned = check_roi_align(
        x, rois, output_size, spatial_scale, sampling_ratio, aligned, "roi_align_reference")
    n_rois = rois.shape[0]
    offset = np.float32(0.5 if aligned else 0.0)
    start = rois[:, 1:3] * scale - offset                # (K, 2) as (x, y)
    size = (rois[:, 3:5] * scale - offset) - start
    if not aligned:
        size = np.maximum(size, np.float32(1.0))
    bins = size / np.array([ow, oh], np.float32)          # (K, 2) bin (w, h)
    yl, yh, ly, y_ok = roi_axis_samples(start[:, 1], bins[:, 1], oh, sr, x.shape[1])
    xl, xh, lx, x_ok = roi_axis_samples(start[:, 0], bins[:, 0], ow, sr, x.shape[2])
    hy = np.float32(1.0) - ly
    hx = np.float32(1.0) - lx
    bidx = rois[:, 0].astype(np.int64)[:, None, None]
    out = np.zeros((n_rois, oh, ow, x.shape[3]), np.float32)
    for iy in range(sr):
        for ix in range(sr):
            # (K, oh) and (K, ow) index/weight arrays of this sample within each bin.
            sy = slice(iy, None, sr)
            sx = slice(ix, None, sr)
            ok = (y_ok[:, sy, None] & x_ok[:, None, sx])[..., None]
            ylo, yhi = yl[:, sy, None], yh[:, sy, None]
            xlo, xhi = xl[:, None, sx], xh[:, None, sx]
            w1 = (hy[:, sy, None] * hx[:, None, sx])[..., None]
            w2 = (hy[:, sy, None] * lx[:, None, sx])[..., None]
            w3 = (ly[:, sy, None] * hx[:, None, sx])[..., None]
            w4 = (ly[:, sy, None] * lx[:, None, sx])[..., None]
            val = (w1 * x[bidx, ylo, xlo] + w2 * x[bidx, ylo, xhi]
                   + w3 * x[bidx, yhi, xlo] + w4 * x[bidx, yhi, xhi])
            out += np.where(ok, val, np.float32(0.0))
    out /= np.float32(sr * sr)
    return out


def roi_axis_samples(start, bin_size, n_bins, sr, length):
    """Sample coordinates, neighbour indices and weights along one axis (NumPy).

    Parameters
    ----------
    start : float32 ndarray (K,)
        Scaled, shifted box start along the axis.
    bin_size : float32 ndarray (K,)
        Bin size along the axis.
    n_bins : int
        Number of bins (oh or ow).
    sr : int
        Samples per bin.
    length : int
        Feature map size along the axis (H or W).

    Returns
    -------
    lo : int64 ndarray (K, n_bins*sr)
        Lower neighbour index of each sample, bin-major (``bin*sr + i``);
        clamped, 0 where the sample is invalid.
    hi : int64 ndarray (K, n_bins*sr)
        Upper neighbour index.
    frac : float32 ndarray (K, n_bins*sr)
        Weight of the upper neighbour (``1 - frac`` for the lower one).
    ok : bool ndarray (K, n_bins*sr)
        False where the sample lies outside ``[-1, length]`` (contributes 0).
    """
    p = np.repeat(np.arange(n_bins, dtype=np.float32), sr)
    i = np.tile(np.arange(sr, dtype=np.float32), n_bins)
    f_sr = np.float32(sr)
    # Same operation order as the kernel (and torchvision), all in float32.
    size = bin_size[:, None]
    pos = (start[:, None] + p * size) + (i + np.float32(0.5)) * size / f_sr
    ok = (pos >= np.float32(-1.0)) & (pos <= np.float32(length))
    c = np.where(ok, np.maximum(pos, np.float32(0.0)), np.float32(0.0))
    lo = c.astype(np.int64)
    top = lo >= length - 1
    lo = np.where(top, length - 1, lo)
    hi = np.where(top, lo, lo + 1)
    c = np.where(top, lo.astype(np.float32), c)
    frac = c - lo.astype(np.float32)
    return lo, hi, frac, ok
