"""Write tests/fixtures/golden_sample.json: the shipped demo model's landmarks on the sample clip.

    python -m tools.make_golden        # after shipping new weights/demo.h5

Frame 0 of tracker/data/sample.mp4 (NASA astronaut photo, public domain), cropped from a
fixed face box through tracker.geometry and run through tracker.landmarks.Landmarker
(nnlite). tests/test_golden.py compares against it with a sub-pixel tolerance, so a change
in crop geometry, decoding or weights loading fails a test, not only a benchmark.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tools.make_gallery import read_frame
from tracker.geometry import box_to_crop
from tracker.landmarks import Landmarker
from tracker.video import SAMPLE

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "golden_sample.json"
BOX = (256.0, 170.0, 384.0, 300.0)  # the face's landmark box at frame 0 (tools.make_sample_clip)


def golden_points(weights="demo", backend=None) -> tuple[np.ndarray, np.ndarray]:
    """(refined, coarse) float32 (68, 2) frame pixels on frame 0 from the fixed box."""
    lm = Landmarker(weights, backend=backend)
    res = lm.run(read_frame(SAMPLE, 0), [box_to_crop(BOX, lm.crop_scale)])[0]
    return res.points, res.coarse


def main():
    refined, coarse = golden_points()
    OUT.write_text(json.dumps({"clip": "tracker/data/sample.mp4", "frame": 0, "box": BOX,
                               "weights": "demo", "refined": np.round(refined, 3).tolist(),
                               "coarse": np.round(coarse, 3).tolist()}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
