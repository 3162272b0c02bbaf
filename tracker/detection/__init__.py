"""Face detectors: whole frame -> 68-landmark boxes.

`DETECTORS` maps a name (the command line's --detector) to a class that takes no
required arguments. Add a detector by adding an entry here.
"""
from tracker.detection.cascade import CascadeDetector
from tracker.detection.core import BoxCalibration, Detector

DETECTORS = {
    "cascade": CascadeDetector,
}

__all__ = ["DETECTORS", "BoxCalibration", "CascadeDetector", "Detector"]
