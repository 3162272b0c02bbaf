"""Layers: weights converted once to kernel layout, called on NHWC float32 arrays.

Each layer takes its arrays from an `ArraySource` under its module path
(``<prefix>.weight`` in PyTorch layout, ``<prefix>.bias``), so a missing or
mis-shaped array is reported by name.
"""
from __future__ import annotations

import numpy as np

from nnlite.kernels.conv import (conv_weight_from_torch, depthwise_weight_from_torch,
                                 pointwise_weight_from_torch)


class Conv:
    """k x k convolution (any groups) with fused bias and activation."""

    def __init__(self, src, prefix, cin, cout, k, stride=1, groups=1, act="none", ops=None):
        w = src.take(f"{prefix}.weight", (cout, cin // groups, k, k))
        self.b = src.take(f"{prefix}.bias", (cout,))
        self.stride, self.pad, self.groups, self.act = stride, k // 2, groups, act
        self.pointwise = k == 1 and stride == 1 and groups == 1
        self.w = pointwise_weight_from_torch(w) if self.pointwise else conv_weight_from_torch(w)
        self.ops = ops

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W, cin) -> (N, H', W', cout), float32 NHWC."""
        if self.pointwise:
            return self.ops.pointwise_conv2d(x, self.w, self.b, self.act)
        return self.ops.conv2d(x, self.w, self.b, self.stride, self.pad, self.groups, self.act)


class InvertedResidual:
    """MobileNetV2 block: 1x1 expand + ReLU6, 3x3 depthwise + ReLU6, 1x1 project, [+ x].

    Config fields: in, out, stride, expand, residual (all explicit).
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
        self.ops = ops

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W, in) -> (N, H', W', out), float32 NHWC."""
        return self.ops.inverted_residual(x, self.w_expand, self.b_expand, self.w_dw, self.b_dw,
                                          self.w_project, self.b_project, self.stride,
                                          self.residual)
