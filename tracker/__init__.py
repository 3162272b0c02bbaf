"""Face tracking and makeup rendering on top of nnlite.

The names most programs need, importable from here:

    from tracker import DETECTORS, Landmarker, SAMPLE, Tracker, load_look, open_source, render

Each is imported from its module on first use (module `__getattr__`), so
`import tracker` itself loads nothing (no OpenCV, no Numba) and stays fast;
`_PUBLIC` says which module each name comes from.
"""
from __future__ import annotations

import importlib

_PUBLIC = {
    "Box": "tracker.types",
    "Face": "tracker.types",
    "InputError": "tracker.errors",
    "OutputError": "tracker.errors",
    "TrackerError": "tracker.errors",
    "SAMPLE": "tracker.resources",
    "resource": "tracker.resources",
    "DETECTORS": "tracker.detection",
    "DEFAULT_DETECTOR": "tracker.detection",
    "BackgroundDetector": "tracker.detection",
    "DEFAULT_WEIGHTS": "tracker.landmarks",
    "Landmarker": "tracker.landmarks",
    "load_landmarker": "tracker.landmarks",
    "Tracker": "tracker.tracking",
    "Look": "tracker.makeup",
    "available_looks": "tracker.makeup",
    "load_look": "tracker.makeup",
    "look_with_overrides": "tracker.makeup",
    "render": "tracker.makeup",
    "open_source": "tracker.sources",
    "read_image": "tracker.io",
    "write_image": "tracker.io",
    "process_image": "tracker.pipeline",
    "process_video": "tracker.pipeline",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'tracker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
