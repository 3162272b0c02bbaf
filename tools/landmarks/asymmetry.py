"""The annotations' mirror asymmetry per landmark, for flip augmentation that keeps their convention.

    python -m tools.landmarks.asymmetry --weights demo --out tools/landmarks/flip_shift_300w.json

A model trained without mirrored crops (or with mirrored crops shifted by this
convention) learns where the annotators put each point, including
that 300-W's points sit right of the mirror image of their partners. Averaging a face with its
mirrored crop cancels that convention, so the plain prediction minus the flip-averaged one is
the convention's offset of each point, in x, as a fraction of the inter-ocular distance. It is
measured on the training split only (never the validation split or a test set) and feeds
`tools.landmarks.train --flip-shift FILE`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from nnlite.weights import load
from tools.common import inter_ocular
from tools.landmarks import data as D
from tools.landmarks import evaluate as E
from tools.landmarks.train import DEFAULT_DATA
from tracker.geometry import box_to_crop, landmark_box
from tracker.landmarks import Landmarker
from tracker.resources import shipped_weights


def measure(weights, pairs) -> dict:
    """-> {"flip_shift": 68 x offsets, "flip_shift_y": 68 y offsets (should be ~0), "faces": N}."""
    lm = Landmarker(weights, flip_average=True)
    plain, averaged, gt = [], [], []
    for img, g in E.read_faces(pairs, progress=False):
        p, a = lm.run_pair(img, [box_to_crop(landmark_box(g), lm.crop_scale)])
        plain.append(p[0].points)
        averaged.append(a[0].points)
        gt.append(g)
    plain, averaged = np.stack(plain), np.stack(averaged)
    io = np.array([inter_ocular(g) for g in gt])[:, None, None]
    offset = ((plain - averaged) / io).mean(axis=0)  # (68, 2)
    return {"flip_shift": [round(float(v), 5) for v in offset[:, 0]],
            "flip_shift_y": [round(float(v), 5) for v in offset[:, 1]], "faces": len(pairs)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="demo",
                    help="a model trained without mirrored crops, or with --flip-shift")
    ap.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)])
    ap.add_argument("--out", required=True, help="JSON file for tools.landmarks.train --flip-shift")
    args = ap.parse_args(argv)
    weights = shipped_weights(args.weights)
    recipe = load(weights)[0].get("recipe", {})
    flip = recipe.get("flip")
    if flip != 0 and not recipe.get("flip_shift"):
        # Plain mirroring teaches mirror symmetry; mirrored crops shifted by the convention
        # (--flip-shift) keep it, so such a model can measure it again.
        print(f"{weights}: trained with plainly mirrored crops (flip {flip}, no flip shift); its "
              "predictions are mirror-symmetric and cannot show the annotations' convention",
              file=sys.stderr)
        return 2
    pairs = [p for root in args.data for p in D.find_pairs(root)]
    train_pairs, _ = D.split_pairs(pairs, 0.1, seed=0)
    result = {"weights": str(args.weights), **measure(weights, train_pairs)}
    x = np.array(result["flip_shift"])
    print(f"{result['faces']} training faces: x offset {100 * x.mean():.2f}% io on average "
          f"({100 * x.min():.2f} to {100 * x.max():.2f}), y {100 * np.mean(result['flip_shift_y']):+.3f}%")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
