"""Face detectors: whole frame -> 68-landmark boxes.

`DETECTORS` maps a name (the command line's --detector) to a class that takes no
required arguments. Add a detector by adding an entry here.

- "blaze" (the default): our single-shot detector run by nnlite (weights/detector.h5,
  written by tools/detector/train.py + tools/detector/export.py; a missing file is an
  InputError naming it); held-out recall 0.97 at ~5 ms a photo (weights/detector.md);
- "cascade": OpenCV's LBP frontal-face cascade with a box calibration (recall 0.67 at
  ~0.12 s a photo; weights/cascade_calibration.md), kept as an alternative.

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

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "BackgroundDetector", "BlazeDetector", "BoxCalibration", "CascadeDetector", "Detector"]
