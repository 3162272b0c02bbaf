"""The nnlite weights file (HDF5): reading and strict checking.

Layout
------
Root attributes:
    format  : "nnlite-weights"
    version : 1 (int)
    config  : JSON text, the architecture (see README "Weights format")
    meta    : JSON text, free-form provenance (epoch, validation metrics, ...)
One HDF5 group per layer, named after the training module's path
(``stem``, ``blocks.3.dw``, ``refine``), holding float32 datasets ``weight``
in PyTorch layout (cout, cin/groups, kh, kw) and ``bias`` (cout,).
Batch-norm is already folded into weight and bias.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FORMAT = "nnlite-weights"
VERSION = 1


class WeightsError(ValueError):
    """A weights file that nnlite cannot run; the message names the file and the array."""


def load(path) -> tuple[dict, dict[str, np.ndarray], dict]:
    """Read a weights file.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 weights file.

    Returns
    -------
    config : dict
        The architecture, from the JSON ``config`` attribute.
    arrays : dict of str to ndarray
        Every array, keyed ``'layer.param'`` (PyTorch layout and names).
    meta : dict
        The JSON ``meta`` attribute (training details), ``{}`` when absent.

    Raises
    ------
    WeightsError
        For a missing or unreadable file, a wrong format or version, or a malformed config.
    """
    import h5py  # imported here so that `import nnlite` stays light

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise WeightsError(f"{path}: not a readable HDF5 weights file ({e})") from None
    with f:
        fmt = _attr_str(f.attrs.get("format"))
        if fmt != FORMAT:
            raise WeightsError(f"{path}: format is {fmt!r}, expected {FORMAT!r}")
        version = f.attrs.get("version")
        if version is None or int(version) != VERSION:
            raise WeightsError(f"{path}: format version {version}, this nnlite reads {VERSION}")
        try:
            config = json.loads(_attr_str(f.attrs.get("config")))
            meta = json.loads(_attr_str(f.attrs.get("meta")) or "{}")
        except (TypeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: config attribute is not valid JSON ({e})") from None
        arrays = {}

        def visit(name, obj):
            if hasattr(obj, "shape"):
                arrays[name.replace("/", ".")] = obj

        try:
            f.visititems(visit)
            arrays = {k: np.asarray(v[()], dtype=np.float32) for k, v in arrays.items()}
        except (OSError, KeyError, RuntimeError) as e:
            raise WeightsError(f"{path}: corrupt array data ({e})") from None
    return config, arrays, meta


def _attr_str(v):
    if isinstance(v, bytes):
        return v.decode()
    return None if v is None else str(v)


class ArraySource:
    """Hands out arrays by name with shape checks, and reports what was left unused.

    Parameters
    ----------
    arrays : dict of str to ndarray
        The weights file's arrays, keyed ``'layer.param'``.
    path : str or os.PathLike
        The file, quoted in error messages.
    """

    def __init__(self, arrays: dict[str, np.ndarray], path):
        self.arrays = arrays
        self.path = path
        self.used: set[str] = set()

    def take(self, name: str, shape: tuple) -> np.ndarray:
        """The array `name`, checked and marked used.

        Parameters
        ----------
        name : str
            Its key, ``'layer.param'``.
        shape : tuple of int
            The shape the config implies (PyTorch layout).

        Returns
        -------
        a : float32 ndarray, C-contiguous
            The array.

        Raises
        ------
        WeightsError
            When it is missing, has another shape or holds NaN or inf, naming it and the file.
        """
        if name not in self.arrays:
            raise WeightsError(f"{self.path}: missing array {name!r} (expected shape {shape})")
        a = self.arrays[name]
        if tuple(a.shape) != tuple(shape):
            raise WeightsError(f"{self.path}: {name!r}: expected shape {tuple(shape)}, "
                               f"found {tuple(a.shape)}")
        if not np.all(np.isfinite(a)):
            raise WeightsError(f"{self.path}: {name!r} holds NaN or infinite values")
        self.used.add(name)
        return np.ascontiguousarray(a, dtype=np.float32)

    def check_all_used(self):
        """Raise WeightsError naming every array that no layer took."""
        unused = sorted(set(self.arrays) - self.used)
        if unused:
            raise WeightsError(f"{self.path}: arrays not used by the config: {', '.join(unused)}")
