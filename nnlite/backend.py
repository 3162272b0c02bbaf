"""Kernel backends: the Numba kernels, or a complete second set in plain NumPy.

A backend is a small namespace of the ops the layers call; both have the same
signatures and layouts (see nnlite.kernels). The NumPy ops
(`nnlite.kernels.numpy_ops`) compute what the kernels' ``*_reference`` functions
compute, arranged for speed, and also take ``out=`` and a reusable ``work=``
`~nnlite.kernels.numpy_ops.Workspace`. Which backend runs:

- ``backend="numba"`` or ``"numpy"`` passed to `get_backend` (and to
  ``TwoStageModel`` and the ``backend=`` options of the packages built on nnlite);
- else the ``NNLITE_BACKEND`` environment variable (``numba`` or ``numpy``);
- else Numba when it can be imported, otherwise NumPy with one
  `NumbaMissingWarning` per process.

Asking for ``numba`` explicitly where it cannot be imported is an error.
"""
from __future__ import annotations

import os
from types import SimpleNamespace

from nnlite.jit import HAVE_NUMBA, NUMBA_IMPORT_ERROR, NumbaMissingWarning, start_compiler_init, warn_numba_missing

BACKENDS = ("numba", "numpy")
OPS = ("conv2d", "pointwise_conv2d", "inverted_residual", "roi_align", "roi_group_conv",
       "soft_argmax", "heatmap_peak", "softmax_peak")

__all__ = ["BACKENDS", "OPS", "NumbaMissingWarning", "get_backend", "numba_kernels_cached", "resolve_backend"]


def resolve_backend(name: str | None = None) -> str:
    """The backend name that `get_backend(name)` uses (see the module docstring).

    Parameters
    ----------
    name : str or None
        "numba", "numpy", or None for $NNLITE_BACKEND, then the automatic choice.

    Returns
    -------
    name : str
        "numba" or "numpy".

    Raises
    ------
    ValueError
        For an unknown name.
    RuntimeError
        When "numba" is asked for explicitly and numba cannot be imported.
    """
    origin = "backend"
    if name is None:
        name, origin = os.environ.get("NNLITE_BACKEND", "").strip().lower() or None, "NNLITE_BACKEND"
    if name is None:
        if HAVE_NUMBA:
            return "numba"
        warn_numba_missing()
        return "numpy"
    if name not in BACKENDS:
        raise ValueError(f"unknown nnlite backend {name!r} ({origin}); choose one of {', '.join(BACKENDS)}")
    if name == "numba" and not HAVE_NUMBA:
        raise RuntimeError(f"the numba backend was requested ({origin}) but numba cannot be imported "
                           f"({NUMBA_IMPORT_ERROR}); install numba, or use the numpy backend")
    return name


def get_backend(name: str | None = None) -> SimpleNamespace:
    """Return the ops of a backend as a namespace with `name` and the functions in `OPS`.

    Parameters
    ----------
    name : str or None
        "numba", "numpy", or None for the default (see `resolve_backend`).

    Returns
    -------
    ops : types.SimpleNamespace
        ``ops.name`` and one attribute per entry of `OPS`.
    """
    name = resolve_backend(name)
    if name == "numba":
        start_compiler_init()  # Numba's one-off set-up, off the first frame (see nnlite.jit)
        from nnlite.kernels import conv, inverted_residual, roi_align, roi_conv, soft_argmax

        return SimpleNamespace(
            name=name, conv2d=conv.conv2d, pointwise_conv2d=conv.pointwise_conv2d,
            inverted_residual=inverted_residual.inverted_residual,
            roi_align=roi_align.roi_align, roi_group_conv=roi_conv.roi_group_conv,
            soft_argmax=soft_argmax.soft_argmax, heatmap_peak=soft_argmax.heatmap_peak,
            softmax_peak=soft_argmax.softmax_peak)
    # The NumPy ops compute what the kernels' *_reference functions do (the test
    # oracle, written to be read), arranged for speed; the layers pass them
    # out= and a per-thread Workspace (see nnlite.kernels.numpy_ops).
    from nnlite.kernels import numpy_ops

    return SimpleNamespace(name=name, **{op: getattr(numpy_ops, op) for op in OPS})


def numba_kernels_cached() -> bool:
    """Whether Numba's cache folder has the main one-thread kernels of the landmark model and
    the detector (convolution, inverted residual, RoI convolution, soft-argmax).

    A look at the folder, nothing loaded (see `nnlite.jit.cached_on_disk`): False on a
    first run, when the first frame compiles for seconds; callers use it to start that
    work early or on another core. Always False without numba.

    Returns
    -------
    cached : bool
        Every one of those kernels has an index file in the cache.
    """
    if not HAVE_NUMBA:
        return False
    from nnlite.jit import cached_on_disk
    from nnlite.kernels import gemm_conv, inverted_residual, roi_conv, soft_argmax

    kernels = (gemm_conv._conv2d_gemm_serial_nb, inverted_residual._inverted_residual_serial_nb,
               roi_conv._roi_group_conv_serial_nb, soft_argmax._soft_argmax_nb)
    return all(cached_on_disk(k) for k in kernels)
