"""Face detectors side by side on the held-out photos, run as the tracker runs them.

    python -m tools.detector.evaluate                       # every detector in DETECTORS
    python -m tools.detector.evaluate --detectors blaze --json detectors.json

The held-out photos are the fixed-seed 10% of ../shared/data/detect that neither the
cascade calibration nor the detector training used (tools/detector/data.split_files).
A detection counts when it overlaps a labelled 68-landmark box with IoU >= 0.5;
unlabelled background faces count as false positives, so that rate is an upper
bound. Reported per detector, at the tracker's default `min_detection_score`:
recall and false positives per photo, recall by face size (the landmark box's longer
side in photo pixels; photos are at most 640 px), and the median time per photo.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

from tools.detector import data as DD
from tools.detector.calibrate_cascade import greedy_match
from tracker.detection import DETECTORS
from tracker.detection.core import warmup

SIZE_EDGES = (0, 48, 96, 192, 10_000)  # landmark-box side buckets, photo pixels


def run_detector(detector, photos) -> tuple[list, list[float]]:
    """-> ([(boxes (K, 4), scores (K,), truth (M, 4))] per photo, seconds per photo)."""
    runs, seconds = [], []
    for path, truth in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: unreadable image")
        t0 = time.perf_counter()
        found = detector.detect(image)
        seconds.append(time.perf_counter() - t0)
        boxes = np.array([b.as_tuple() for b in found], np.float64).reshape(-1, 4)
        runs.append((boxes, np.array([b.score for b in found], np.float64), np.asarray(truth)))
    return runs, seconds


def recall_by_size(runs, threshold: float, min_iou: float = 0.5, edges=SIZE_EDGES) -> list[dict]:
    """Recall per bucket of truth-box size (longer side): [{"size": "48-96", "faces", "recall"}]."""
    found = np.zeros(len(edges) - 1, int)
    total = np.zeros(len(edges) - 1, int)
    for boxes, scores, truth in runs:
        keep = scores >= threshold
        match = greedy_match(boxes[keep], scores[keep], truth, min_iou)
        hit = np.zeros(len(truth), bool)
        hit[match[match >= 0]] = True
        sides = np.maximum(truth[:, 2] - truth[:, 0], truth[:, 3] - truth[:, 1]) if len(truth) else []
        for side, h in zip(sides, hit):
            k = int(np.searchsorted(edges, side, side="right")) - 1
            total[k] += 1
            found[k] += h
    names = [f"{lo}-{hi}" if hi < edges[-1] else f">={lo}" for lo, hi in zip(edges[:-1], edges[1:])]
    return [{"size": n, "faces": int(t), "recall": round(f / t, 3) if t else None}
            for n, t, f in zip(names, total, found)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detectors", nargs="+", choices=sorted(DETECTORS), default=sorted(DETECTORS))
    ap.add_argument("--detect", default=str(DD.DEFAULT_DETECT), help="detect/ photos folder")
    ap.add_argument("--min-score", type=float, default=0.5,
                    help="score threshold (the tracker's default min_detection_score)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    try:
        _, _, held = DD.split_files(args.detect)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(held)} held-out photos, {sum(len(b) for _, b in held)} labelled faces; "
          f"score >= {args.min_score}, IoU >= 0.5")
    results = {}
    for name in args.detectors:
        detector = DETECTORS[name]()
        warmup(detector)
        runs, seconds = run_detector(detector, held)
        overall = DD.score_detections(runs, args.min_score)
        sizes = recall_by_size(runs, args.min_score)
        results[name] = {**overall, "recall_by_size": sizes,
                         "median_ms_per_photo": round(1000 * float(np.median(seconds)), 1)}
        by_size = "  ".join(f"{s['size']}: {s['recall']} ({s['faces']})" for s in sizes)
        print(f"{name:8s} recall {overall['recall']:.3f}  false positives/photo "
              f"{overall['false_positives_per_image']:.3f}  mean IoU {overall['mean_iou_of_matches']}  "
              f"{results[name]['median_ms_per_photo']:.1f} ms/photo\n"
              f"{'':8s} recall by face size (px: recall (faces)): {by_size}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
