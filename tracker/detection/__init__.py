"""Face detectors: whole frame -> 68-landmark boxes.

`DETECTORS` maps a name (the command line's --detector) to a class that takes no
required arguments. Add a detector by adding an entry here.

- "cascade": the interim LBP cascade (the default until trained weights ship);
- "blaze": our single-shot detector run by nnlite (weights/detector.h5, written by
  tools/train_detector.py + tools/export_detector.py; a missing file is an
  InputError naming it).

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
DEFAULT_DETECTOR = "cascade"

__all__ = ["DEFAULT_DETECTOR", "DETECTORS", "BackgroundDetector", "BlazeDetector", "BoxCalibration", "CascadeDetector", "Detector"]
