"""Export a face-detector checkpoint to the nnlite HDF5 weights file (batch-norm folded),
check nnlite against PyTorch on it, and score it on the held-out photos.

    python -m tools.detector.export runs/detector/best.pt weights/detector.h5
    python -m tools.detector.export runs/detector/best.pt /tmp/d.h5 --no-eval
    python -m tools.detector.export runs/detector/last.pt weights/detector.h5 --run-size 256

--run-size stores `input.run_size` in the config: the side the frame is
letterboxed into at run time (nnlite.detector.run_size; default the training
side). Held-out scoring also prints the other sides of --compare-sizes, so the
choice is made on the held-out photos it is reported on (say so in the card).

The config is stored with "type": "single_shot_detector" (nnlite/detector.py).
Held-out scoring runs tracker.detection.BlazeDetector, i.e. the run-time path
(nnlite, letterbox, NMS, mapping back), on the same photos as
tools/detector/calibrate_cascade.py, and stores the numbers in the file's meta.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from nnlite.detector import SingleShotDetector
from tools.detector import data as DD
from tools.detector.model import FaceDetectorNet
from tools.landmarks.export import folded_arrays, write_weights


def load_checkpoint(path) -> tuple[FaceDetectorNet, dict]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = FaceDetectorNet(state["config"])
    model.load_state_dict(state["model"])
    return model.eval(), state


def parity_error(model: FaceDetectorNet, path) -> float:
    """Largest |nnlite - PyTorch| over logits and box deltas on a random input."""
    size = model.cfg["input"]["size"]
    x = np.random.default_rng(0).normal(0, 1, (1, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        logits, deltas = model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    out = SingleShotDetector.load(path, input_size=size).forward(x)
    return float(max(np.abs(out.logits - logits.numpy()).max(), np.abs(out.deltas - deltas.numpy()).max()))


def evaluate_weights(path, detect_root=DD.DEFAULT_DETECT, input_size: int | None = None) -> dict:
    """Held-out recall / false positives of the exported file, run as the tracker runs it
    (at its run size, or at `input_size`)."""
    from tracker.detection.blaze import BlazeDetector

    _, _, val = DD.split_files(detect_root)
    det = BlazeDetector(path, min_score=0.1, input_size=input_size)
    det.warmup()
    runs, t0 = [], time.perf_counter()
    for p, truth in val:
        boxes, scores = det.detect_arrays(cv2.imread(str(p), cv2.IMREAD_COLOR))
        runs.append((boxes, scores, truth))
    ms = (time.perf_counter() - t0) / max(len(runs), 1) * 1000
    threshold = det.model.score_threshold
    held = DD.score_detections(runs, threshold)
    held["ms_per_image"] = round(ms, 1)
    held["input_size"] = det.size
    held["by_threshold"] = [{k: v for k, v in DD.score_detections(runs, t).items()
                             if k not in ("images", "faces")} for t in (0.1, 0.3, 0.5, 0.7)]
    return held


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--no-eval", action="store_true", help="skip the held-out scoring")
    ap.add_argument("--detect", default=str(DD.DEFAULT_DETECT))
    ap.add_argument("--run-size", type=int, help="input side at run time (default: the training side)")
    ap.add_argument("--compare-sizes", type=int, nargs="*", default=[],
                    help="also score the held-out photos at these input sides")
    args = ap.parse_args(argv)
    model, state = load_checkpoint(args.checkpoint)
    arrays = folded_arrays(model)
    meta = {"epoch": state.get("epoch"), "metrics": state.get("metrics", {}),
            "params": int(sum(a.size for a in arrays.values())),
            "checkpoint": str(args.checkpoint)}
    config = json.loads(json.dumps(model.cfg))
    if args.run_size is not None:
        config["input"]["run_size"] = args.run_size
    write_weights(args.output, config, arrays, meta)
    err = parity_error(model, args.output)
    if err > 1e-3:
        print(f"{args.output}: nnlite differs from PyTorch by {err:.2g}", file=sys.stderr)
        return 1
    if not args.no_eval:
        for size in args.compare_sizes:
            r = evaluate_weights(args.output, args.detect, size)
            print(f"input {size}: recall {r['recall']:.3f}, {r['false_positives_per_image']:.3f} false "
                  f"positives per photo, {r['ms_per_image']:.1f} ms per photo")
        meta["heldout"] = evaluate_weights(args.output, args.detect)
        write_weights(args.output, config, arrays, meta)
        print(json.dumps(meta["heldout"], indent=2))
    size = Path(args.output).stat().st_size
    print(f"{args.output}: {len(arrays)} arrays, {meta['params']} params, {size / 1024:.0f} KB, "
          f"nnlite vs PyTorch max diff {err:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
