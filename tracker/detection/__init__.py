"""Face detectors: whole frame -> 68-landmark boxes.

`DETECTORS` maps a name (the command line's --detector) to a class that takes no
required arguments. Add a detector by adding an entry here.

- "blaze" (the default): our single-shot detector run by nnlite (weights/detector.h5,
  written by tools/detector/train.py + tools/detector/export.py; a missing file is an
  InputError naming it); held-out recall 0.97 at ~5 ms a photo (weights/detector.md);
- "cascade": OpenCV's LBP frontal-face cascade with a box calibration (recall 0.67 at
  ~0.12 s a photo; weights/cascade_calibration.md), kept as an alternative.

`build_detector(name, backend)` builds one by name, on the landmark model's kernel backend.
`BackgroundDetector` wraps any of them to run on its own thread (the live loop uses it).
"""
from tracker.detection.background import BackgroundDetector
from tracker.detection.blaze import BlazeDetector
from tracker.detection.cascade import CascadeDetector
from tracker.detection.core import BoxCalibration, Detector

DETECTORS = {
    "cascade": CascadeDetector,
    "blaze": BlazeDetector,
}

#: The detector the CLIs and `Tracker.from_weights` use unless told otherwise.
DEFAULT_DETECTOR = "blaze"

#: Detectors that run an nnlite network: they take the landmark model's kernel backend.
_NNLITE_DETECTORS = (BlazeDetector,)


def build_detector(name: str, backend: str | None = None) -> Detector:
    """The detector `name` (a key of `DETECTORS`); one that runs an nnlite network runs it
    on `backend` ("numba", "numpy" or None: nnlite's default), as the landmark model does.

    Raises tracker.errors.InputError for an unknown name, or (from the detector) for
    missing or invalid weights.
    """
    from tracker.errors import InputError

    if name not in DETECTORS:
        raise InputError(f"unknown detector {name!r}; choose one of {', '.join(sorted(DETECTORS))}")
    cls = DETECTORS[name]
    return cls(backend=backend) if cls in _NNLITE_DETECTORS else cls()


__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "build_detector", "BackgroundDetector", "BlazeDetector", "BoxCalibration", "CascadeDetector", "Detector"]
