"""Kernel backends: the Numba kernels, or their NumPy references as a complete second set.

A backend is a small namespace of the ops the layers call; both have the same
signatures and layouts (see nnlite.kernels). The NumPy backend is what runs where
Numba cannot be imported.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

BACKENDS = ("numba", "numpy")


def get_backend(name: str | None = None) -> SimpleNamespace:
    """Return the ops of backend `name` ("numba" or "numpy"; default: $NNLITE_BACKEND or numba)."""
    name = name or os.environ.get("NNLITE_BACKEND", "numba")
    if name not in BACKENDS:
        raise ValueError(f"unknown nnlite backend {name!r}; choose one of {', '.join(BACKENDS)}")
    from nnlite.kernels import conv, inverted_residual, roi_align, soft_argmax

    if name == "numba":
        return SimpleNamespace(
            name=name, conv2d=conv.conv2d, pointwise_conv2d=conv.pointwise_conv2d,
            inverted_residual=inverted_residual.inverted_residual,
            roi_align=roi_align.roi_align, soft_argmax=soft_argmax.soft_argmax,
            heatmap_peak=soft_argmax.heatmap_peak)
    return SimpleNamespace(
        name=name, conv2d=conv.conv2d_reference,
        pointwise_conv2d=conv.pointwise_conv2d_reference,
        inverted_residual=inverted_residual.inverted_residual_reference,
        roi_align=roi_align.roi_align_reference,
        soft_argmax=soft_argmax.soft_argmax_reference,
        heatmap_peak=soft_argmax.heatmap_peak_reference)
