"""Layers: weights converted once to kernel layout, called on NHWC float32 arrays.

Each layer takes its arrays from an `ArraySource` under its module path
(``<prefix>.weight`` in PyTorch layout, ``<prefix>.bias``), so a missing or
mis-shaped array is reported by name.

With the Numba backend a layer also packs its weights once for the fast kernels
(channels padded to 8, see ``nnlite.kernels.gemm``) and keeps the kernels' scratch
buffers between calls, per calling thread and input shape, so a steady stream of
same-size inputs allocates nothing but the outputs. Pass ``out=`` to reuse those
too (the model does, for its intermediate activations).

With the NumPy backend a layer calls the backend's op with ``out=`` and the
``work=`` Workspace its caller passes (the model keeps one per thread, shared by
all layers: their scratch is only live during one call).
"""
from __future__ import annotations

import threading

import numpy as np

from nnlite.jit import get_num_threads
from nnlite.kernels.activations import act_code
from nnlite.kernels.checks import output_array
from nnlite.kernels.gemm_conv import (conv2d_macs, conv2d_packed, conv2d_scratch, conv2d_workers,
                                      pack_conv2d)
from nnlite.kernels.layout import (conv_weight_from_torch, depthwise_weight_from_torch,
                                   pointwise_weight_from_torch)
from nnlite.kernels.inverted_residual import (chain_plan, chain_scratch,
                                              inverted_residual_chain_packed,
                                              inverted_residual_packed,
                                              inverted_residual_scratch,
                                              inverted_residual_workers, pack_chain,
                                              pack_inverted_residual)
from nnlite.kernels.roi_conv import (pack_roi_group_conv, roi_group_conv_packed,
                                     roi_group_conv_scratch, roi_group_conv_unfused)

#: Scratch sets kept per layer and thread (one per input shape and worker count).
_MAX_SCRATCH = 4


class _Scratch:
    """Per-thread cache of a layer's kernel scratch buffers, keyed by shape."""

    def __init__(self):
        self._tls = threading.local()

    def get(self, key, make):
        """The buffers for `key`, made with `make()` on first use in this thread."""
        cache = getattr(self._tls, "cache", None)
        if cache is None:
            cache = self._tls.cache = {}
        buf = cache.get(key)
        if buf is None:
            if len(cache) >= _MAX_SCRATCH:
                cache.clear()
            buf = cache[key] = make()
        return buf


def _backend(ops):
    """The backend name of an ops namespace (``ops.name``): "numba", "numpy" or None."""
    return getattr(ops, "name", None)


def _check_input(x, cin, where):
    """x as a C-contiguous float32 (N, H, W, cin) array; ValueError otherwise."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 4 or x.shape[3] != cin:
        raise ValueError(f"{where}: input must be float32 (N, H, W, {cin}), got "
                         f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
    return np.ascontiguousarray(x)


def check_image_batch(x, size, what):
    """A model's input checked: a float32 (N, size, size, 3) NHWC batch.

    Parameters
    ----------
    x : array_like
        The batch.
    size : int
        The input side S the model runs at.
    what : str
        The model's kind ("model", "detector"), the start of the error message.

    Returns
    -------
    x : float32 ndarray (N, S, S, 3)
        `x` as an ndarray (not copied).

    Raises
    ------
    ValueError
        For another dtype, rank or shape, naming the shape expected and the one given.
    """
    x = np.asarray(x)
    if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (size, size, 3):
        raise ValueError(f"{what} input must be float32 (N, {size}, {size}, 3), "
                         f"got {x.dtype} {x.shape}")
    return x


def _into(out, y, where):
    """`y` copied into the caller's `out` (checked) and `out` returned; `y` when out is None."""
    if out is None:
        return y
    output_array(out, y.shape, where)[...] = y
    return out


class ImageLayer:
    """A layer on NHWC float32 batches. A subclass chooses its implementation once, when
    built, as ``self._run(x, out, work)``, and gives ``out_shape(x_shape)``."""

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None, work=None) -> np.ndarray:
        """Run the layer.

        Parameters
        ----------
        x : float32 ndarray (N, H, W, C_in), NHWC
            Input.
        out : float32 ndarray of shape ``out_shape(x.shape)`` or None
            Where to write the result (C-contiguous); None allocates it.
        work : nnlite.kernels.numpy_ops.Workspace or None
            The calling thread's scratch (NumPy backend; ignored otherwise).

        Returns
        -------
        y : float32 ndarray (N, H_out, W_out, C_out), NHWC
            `out` when given.
        """
        return self._run(x, out, work)


class Conv(ImageLayer):
    """k x k convolution (any groups) with fused bias and activation.

    The implementation is chosen once, here, from the backend: the NumPy ops with
    ``out=``/``work=``; with Numba, the packed GEMM kernel for ``groups=1`` and the
    backend's ``conv2d`` for grouped convolutions.

    Parameters
    ----------
    src : nnlite.weights.ArraySource
        Where ``<prefix>.weight`` (cout, cin/groups, k, k) and ``<prefix>.bias`` come from.
    prefix : str
        The layer's module path in the weights, also its name in error messages.
    cin, cout : int
        Input and output channels.
    k : int
        Kernel size (square, padding ``k // 2``).
    stride : int
        Stride.
    groups : int
        Number of groups.
    act : {"none", "relu", "relu6"}
        Activation after the bias.
    ops : types.SimpleNamespace
        A backend from `nnlite.backend.get_backend`.
    """

    def __init__(self, src, prefix, cin, cout, k, stride=1, groups=1, act="none", ops=None):
        w = src.take(f"{prefix}.weight", (cout, cin // groups, k, k))
        self.b = src.take(f"{prefix}.bias", (cout,))
        self.stride, self.pad, self.groups, self.act = stride, k // 2, groups, act
        self.k, self.cin, self.cout, self.code = k, cin, cout, act_code(act)
        self.name = prefix
        self.pointwise = k == 1 and stride == 1 and groups == 1
        self.w = pointwise_weight_from_torch(w) if self.pointwise else conv_weight_from_torch(w)
        self.ops = ops
        self.packed = None
        self._scratch = _Scratch()
        if _backend(ops) == "numpy":
            self._run = self._run_numpy
        elif _backend(ops) == "numba" and groups == 1:
            self.packed = pack_conv2d(self.w, self.b)
            self._run = self._run_packed
        else:
            self._run = self._run_ops

    def out_shape(self, x_shape):
        """Output shape for an input of shape `x_shape`.

        Parameters
        ----------
        x_shape : tuple of int
            (N, H, W, cin).

        Returns
        -------
        shape : tuple of int
            (N, H_out, W_out, cout).
        """
        h = (x_shape[1] + 2 * self.pad - self.k) // self.stride + 1
        w = (x_shape[2] + 2 * self.pad - self.k) // self.stride + 1
        return (x_shape[0], h, w, self.cout)

    def _run_numpy(self, x, out, work):
        if self.pointwise:
            return self.ops.pointwise_conv2d(x, self.w, self.b, self.act, out=out, work=work)
        return self.ops.conv2d(x, self.w, self.b, self.stride, self.pad, self.groups,
                               self.act, out=out, work=work)

    def _run_packed(self, x, out, work):
        x = _check_input(x, self.cin, self.name)
        shape = self.out_shape(x.shape)
        out = output_array(out, shape, self.name)
        wmat, b8 = self.packed
        workers = conv2d_workers(shape[0] * shape[1], conv2d_macs(shape, wmat))
        scratch = self._scratch.get(
            (x.shape, workers), lambda: conv2d_scratch(x.shape, self.k, self.stride, self.pad,
                                                       wmat.shape[1], workers))
        return conv2d_packed(x, wmat, b8, self.k, self.stride, self.pad, self.code, out,
                             scratch)

    def _run_ops(self, x, out, work):
        if self.pointwise:
            y = self.ops.pointwise_conv2d(x, self.w, self.b, self.act)
        else:
            y = self.ops.conv2d(x, self.w, self.b, self.stride, self.pad, self.groups, self.act)
        return _into(out, y, self.name)


class InvertedResidual(ImageLayer):
    """MobileNetV2 block: 1x1 expand + ReLU6, 3x3 depthwise + ReLU6, 1x1 project, [+ x].

    Config fields: in, out, stride, expand, residual (all explicit). The implementation
    is chosen once, here: the NumPy op with ``out=``/``work=``, the fused packed kernel
    with Numba, or the backend's ``inverted_residual`` for any other ops namespace.

    Parameters
    ----------
    src : nnlite.weights.ArraySource
        Where ``<prefix>.{expand,dw,project}.{weight,bias}`` come from.
    prefix : str
        The block's module path in the weights, also its name in error messages.
    spec : dict
        The block's config entry: ``in``, ``out``, ``stride``, ``expand``, ``residual``.
    ops : types.SimpleNamespace
        A backend from `nnlite.backend.get_backend`.
    """

    def __init__(self, src, prefix, spec, ops):
        cin, cout, e = spec["in"], spec["out"], spec["expand"]
        hidden = cin * e
        if e != 1:
            self.w_expand = pointwise_weight_from_torch(
                src.take(f"{prefix}.expand.weight", (hidden, cin, 1, 1)))
            self.b_expand = src.take(f"{prefix}.expand.bias", (hidden,))
        else:
            self.w_expand = self.b_expand = None
        self.w_dw = depthwise_weight_from_torch(src.take(f"{prefix}.dw.weight", (hidden, 1, 3, 3)))
        self.b_dw = src.take(f"{prefix}.dw.bias", (hidden,))
        self.w_project = pointwise_weight_from_torch(
            src.take(f"{prefix}.project.weight", (cout, hidden, 1, 1)))
        self.b_project = src.take(f"{prefix}.project.bias", (cout,))
        self.stride, self.residual = spec["stride"], bool(spec["residual"])
        self.cin, self.cout, self.name = cin, cout, prefix
        self.ops = ops
        self.packed = None
        self._scratch = _Scratch()
        if _backend(ops) == "numpy":
            self._run = self._run_numpy
        elif _backend(ops) == "numba":
            self.packed = pack_inverted_residual(self.w_expand, self.b_expand, self.w_dw,
                                                 self.b_dw, self.w_project, self.b_project)
            self._run = self._run_packed
        else:
            self._run = self._run_ops

    def out_shape(self, x_shape):
        """Output shape for an input of shape `x_shape`.

        Parameters
        ----------
        x_shape : tuple of int
            (N, H, W, in).

        Returns
        -------
        shape : tuple of int
            (N, H_out, W_out, out).
        """
        s = self.stride
        return (x_shape[0], (x_shape[1] - 1) // s + 1, (x_shape[2] - 1) // s + 1, self.cout)

    def _weights(self):
        return (self.w_expand, self.b_expand, self.w_dw, self.b_dw, self.w_project,
                self.b_project, self.stride, self.residual)

    def _run_numpy(self, x, out, work):
        return self.ops.inverted_residual(x, *self._weights(), out=out, work=work)

    def _run_packed(self, x, out, work):
        x = _check_input(x, self.cin, self.name)
        shape = self.out_shape(x.shape)
        out = output_array(out, shape, self.name)
        _, workers = inverted_residual_workers(x.shape, shape, self.packed)
        scratch = self._scratch.get(
            (x.shape, workers),
            lambda: inverted_residual_scratch(x.shape, self.packed, self.stride, workers))
        return inverted_residual_packed(x, self.packed, self.stride, self.residual, out, scratch)

    def _run_ops(self, x, out, work):
        return _into(out, self.ops.inverted_residual(x, *self._weights()), self.name)


class BlockChain(ImageLayer):
    """Consecutive Numba-backed `InvertedResidual` blocks run as one kernel call.

    One call for all of them (`nnlite.kernels.inverted_residual.inverted_residual_chain_packed`):
    with several threads, each takes a band of the last block's rows through every block,
    so the workers are woken once per chain instead of once per block, at the price of
    the halo rows neighbouring bands both compute. Where that price is the larger (big
    blocks, as in the full model), the blocks run as chains of one each instead, and on
    one thread (or where no split pays) one by one with their own kernels. The choice is
    made per input shape and thread cap by `chain_plan`'s cost (the busiest worker's
    multiply-adds plus a wake-up). Bit-identical to calling the blocks one by one either
    way. Build with `chain_blocks`.

    Parameters
    ----------
    blocks : list of InvertedResidual
        At least one block, each packed for Numba, in run order.
    """

    def __init__(self, blocks):
        self.blocks = list(blocks)
        self._spec = [(b.packed, b.stride, b.residual, b.cout) for b in self.blocks]
        # Layouts to plan with; a chain's copy of the weights is made once a plan runs it
        # (`_packed`): on one thread none is, and the full model's plans use the singles only.
        self.chain = pack_chain(self._spec, weights=False)
        self.singles = ([pack_chain([one], weights=False) for one in self._spec]
                        if len(self._spec) > 1 else [self.chain])
        self._chains = {}
        self.cin = self.blocks[0].cin
        self.name = f"{self.blocks[0].name}..{self.blocks[-1].name}"
        self._scratch = _Scratch()
        self._run = self._run_chain

    def out_shape(self, x_shape):
        """Output shape of the chain for an input of shape `x_shape`.

        Parameters
        ----------
        x_shape : tuple of int
            (N, H, W, in) of the first block.

        Returns
        -------
        shape : tuple of int
            (N, H_out, W_out, out) of the last block.
        """
        for b in self.blocks:
            x_shape = b.out_shape(x_shape)
        return x_shape

    def _run_chain(self, x, out, work):
        x = _check_input(x, self.cin, self.name)
        shape = self.out_shape(x.shape)
        out = output_array(out, shape, self.name)
        # The plan depends on the shape and the thread cap only: kept with its buffers.
        steps = self._scratch.get((x.shape, get_num_threads()), lambda: self._plan(x.shape))
        for run, dst in steps:
            x = run(x, out if dst is None else dst)
        return out

    def _plan(self, x_shape):
        """[(run(x, out), output or None for the caller's)], the calls of one pass in order.

        On one thread, or where no split pays, the blocks run one by one with their own
        kernel: a chain saves nothing there, and a one-thread run compiles no chain kernel.
        """
        shapes = [x_shape]
        for b in self.blocks:
            shapes.append(b.out_shape(shapes[-1]))
        last = len(self.blocks) - 1

        def between(i):  # block i's output: the caller's for the last block, else our own
            return None if i == last else np.empty(shapes[i + 1], np.float32)

        def chain_call(first, last, plan, x_shape):
            chain = self._packed(first, last)
            scratch = chain_scratch(x_shape, chain, plan[1])
            return lambda x, out: inverted_residual_chain_packed(x, chain, out, scratch, plan)

        whole = chain_plan(x_shape, shapes[-1], self.chain)
        parts = [chain_plan(shapes[i], shapes[i + 1], c) for i, c in enumerate(self.singles)]
        if whole[1] == 1 and all(p[1] == 1 for p in parts):
            return [(lambda x, out, b=b: b(x, out), between(i)) for i, b in enumerate(self.blocks)]
        if len(self.singles) == 1 or whole[2] <= sum(p[2] for p in parts):
            return [(chain_call(0, last, whole[:2], x_shape), None)]
        return [(chain_call(i, i, p[:2], shapes[i]), between(i)) for i, p in enumerate(parts)]

    def _packed(self, first, last):
        """Blocks ``first..last`` packed with their weights (`pack_chain`), made on first use."""
        key = (first, last)
        if key not in self._chains:  # two threads may both pack: the same arrays, one kept
            self._chains.setdefault(key, pack_chain(self._spec[first:last + 1]))
        return self._chains[key]


def chain_blocks(blocks, outputs=()):
    """Group a network's blocks into the runs it executes together.

    Parameters
    ----------
    blocks : list of InvertedResidual
        The network's blocks in order.
    outputs : iterable of int
        Indices of blocks whose outputs the network reads besides the last (a branch,
        a detector head): each ends a run.

    Returns
    -------
    runs : list of (int, int, BlockChain or None)
        ``(first, last, chain)`` covering every block in order. A run starts at block 0,
        after an output and at each strided block (its halo rows would double the ones
        before it). ``chain`` is None when the blocks are not on the Numba backend: the
        caller runs them one by one.
    """
    outputs = set(outputs)
    runs, first = [], 0
    for i in range(len(blocks)):
        if i == len(blocks) - 1 or i in outputs or blocks[i + 1].stride > 1:
            group = blocks[first:i + 1]
            packed = all(g.packed is not None for g in group)
            runs.append((first, i, BlockChain(group) if packed else None))
            first = i + 1
    return runs


class RoiGroupConv:
    """RoI align of one window per keypoint, then that keypoint's own conv (groups = K).

    Wraps a `Conv` with ``groups = K`` and ``K*C`` inputs (its weights, already
    loaded and checked). Chosen once, here: with the Numba backend both steps run as
    one fused kernel (``nnlite.kernels.roi_conv``), with the NumPy backend as the
    backend's ``roi_group_conv`` op; otherwise RoI align, a transpose to
    keypoint-major channels and the group conv run one after another.

    Parameters
    ----------
    conv : Conv
        The group conv: ``groups = K`` = its outputs, stride 1, odd kernel.
    roi_size : int
        Window side r, in samples.
    ops : types.SimpleNamespace
        A backend from `nnlite.backend.get_backend`.
    """

    def __init__(self, conv: Conv, roi_size: int, ops):
        self.conv, self.roi_size, self.ops = conv, int(roi_size), ops
        k, cin_g, n_groups = conv.k, conv.w.shape[2], conv.groups
        if conv.cout != n_groups or conv.stride != 1 or k % 2 == 0:
            raise ValueError(f"{conv.name}: a RoI group conv needs one output per group, stride 1 "
                             f"and an odd kernel, got weights {conv.w.shape}, groups {n_groups}")
        self.channels = cin_g
        self.packed = None
        self._scratch = _Scratch()
        if _backend(ops) == "numpy":
            self._run = self._run_numpy
        elif _backend(ops) == "numba":
            self.packed = pack_roi_group_conv(conv.w, conv.b)
            self._run = self._run_packed
        else:
            self._run = self._run_unfused

    def __call__(self, feat: np.ndarray, rois: np.ndarray, work=None) -> np.ndarray:
        """Sample one window per keypoint and convolve it with that keypoint's filter.

        Parameters
        ----------
        feat : float32 ndarray (N, H, W, C), NHWC
            Shared features.
        rois : float32 ndarray (N*K, 5)
            Boxes ``[n, x0, y0, x1, y1]`` in feature pixels, image-major (box ``n*K + k``).
        work : nnlite.kernels.numpy_ops.Workspace or None
            The calling thread's scratch (NumPy backend; ignored otherwise).

        Returns
        -------
        heatmaps : float32 ndarray (N, r, r, K), NHWC
            One refinement map per keypoint.
        """
        return self._run(feat, rois, work)

    def _run_numpy(self, feat, rois, work):
        return self.ops.roi_group_conv(feat, rois, self.conv.w, self.conv.b, self.roi_size, 1.0,
                                       1, True, work=work)

    def _run_packed(self, feat, rois, work):
        r, k = self.roi_size, self.conv.k
        feat = _check_input(feat, self.channels, self.conv.name)
        n = rois.shape[0] // self.conv.groups
        out = np.empty((n, r, r, self.conv.groups), np.float32)
        wk, bk = self.packed
        workers = get_num_threads()  # at most this many; the kernel may use fewer
        scratch = self._scratch.get(
            workers, lambda: roi_group_conv_scratch(k, (r, r), wk.shape[2], workers))
        return roi_group_conv_packed(feat, np.ascontiguousarray(rois, np.float32), wk, bk, k,
                                     1.0, 1, True, out, scratch)

    def _run_unfused(self, feat, rois, work):
        return roi_group_conv_unfused(feat, rois, self.conv.w, self.conv.b, self.roi_size, 1.0,
                                      1, True, self.ops.roi_align, self._conv)

    def _conv(self, x, w, b, stride, pad, groups):
        return self.conv(x)
