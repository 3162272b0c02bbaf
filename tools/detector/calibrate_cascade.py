"""Fit the LBP cascade detector to the 68-landmark box convention.

usage: python -m tools.detector.calibrate_cascade [--data ../shared/data/detect] [--out weights/cascade_calibration.json]

1. Copies OpenCV's LBP frontal-face cascade (`lbpcascade_frontalface.xml`, as
   bundled with scikit-image; OpenCV licence) to weights/ when it is not there.
2. Runs the uncalibrated detector on every photo of detect/ (NAME.jpg +
   NAME.txt, one 0-based `x0 y0 x1 y1` landmark box per line).
3. Splits the photos with a fixed seed: 90% to fit, 10% held out.
4. On the fit part, matches cascade boxes to landmark boxes by IoU and fits
   the linear box calibration (centre offset and scale, medians; refitted once
   after re-matching with the first fit), then a logistic map from a group's
   neighbour count to the probability that it is a labelled face.
5. Reports recall at IoU 0.5 and false positives per photo on the held-out
   part, at score >= 0.5 (the tracker's default min_detection_score), and
   writes everything to the JSON file the detector loads.

Unlabelled background faces count as false positives here (300-W labels only
some faces), so the false-positive rate is an upper bound.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from tracker.detection.cascade import CONFIG_FORMAT, CONFIG_VERSION, CascadeDetector
from tracker.detection.core import BoxCalibration

REPO = Path(__file__).resolve().parents[2]
CASCADE_NAME = "lbpcascade_frontalface.xml"
SCAN = {"scale_factor": 1.1, "min_size": 24, "min_neighbors": 3, "group_eps": 0.2,
        "max_side": 640, "equalize_hist": True}
HOLDOUT = 0.1
SEED = 0
SCORE_THRESHOLD = 0.5


def find_photos(root: Path) -> list[tuple[Path, np.ndarray]]:
    """(image path, float (N, 4) landmark boxes) for every NAME.jpg/png with a NAME.txt."""
    photos = []
    for txt in sorted(root.rglob("*.txt")):
        image = next((txt.with_suffix(e) for e in (".jpg", ".png") if txt.with_suffix(e).exists()), None)
        if image is None:
            continue
        boxes = np.loadtxt(txt, ndmin=2).reshape(-1, 4)
        photos.append((image, boxes))
    return photos


def heldout_indices(n_photos: int, fraction: float = HOLDOUT, seed: int = SEED) -> set[int]:
    """Indices (into find_photos' sorted list) of the held-out photos: the first
    round(fraction * n) of numpy default_rng(seed).permutation(n). Shared with
    tools/detector/data.py so every detector is scored on the same photos."""
    order = np.random.default_rng(seed).permutation(n_photos)
    return set(order[:int(round(fraction * n_photos))].tolist())


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of (N, 4) and (M, 4) x0, y0, x1, y1 boxes -> (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def greedy_match(dets: np.ndarray, scores: np.ndarray, truth: np.ndarray, min_iou: float) -> np.ndarray:
    """Index of the matched truth box per detection (-1 = none), best score first, one-to-one."""
    match = np.full(len(dets), -1)
    ious = iou_matrix(dets, truth)
    taken = np.zeros(len(truth), bool)
    for i in np.argsort(-scores, kind="stable"):
        if len(truth) == 0:
            break
        cand = np.where(taken, -1.0, ious[i])
        j = int(np.argmax(cand))
        if cand[j] >= min_iou:
            match[i] = j
            taken[j] = True
    return match


def calibrate(groups: np.ndarray, cal: BoxCalibration) -> np.ndarray:
    """(G, 4) x, y, w, h cascade groups -> (G, 4) x0, y0, x1, y1 boxes through cal."""
    return np.array([cal.apply(x, y, x + w, y + h) for x, y, w, h in groups]).reshape(-1, 4)


def sigmoid_fit(x: np.ndarray, y: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """Logistic regression y ~ sigmoid(a * x + b) by Newton's method; returns (a, b)."""
    design = np.stack([x, np.ones_like(x)], axis=1).astype(np.float64)
    theta = np.zeros(2)
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (p - y)
        hess = (design * (p * (1 - p))[:, None]).T @ design + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if math.hypot(*step) < 1e-10:
            break
    return float(theta[0]), float(theta[1])


def evaluate(runs, cal: BoxCalibration, score_ab: tuple[float, float], threshold: float) -> dict:
    """Recall at IoU 0.5 and false positives per photo over runs [(groups, counts, truth)]."""
    faces = found = false_pos = 0
    ious = []
    for groups, counts, truth in runs:
        scores = 1.0 / (1.0 + np.exp(-(score_ab[0] * np.log(np.maximum(counts, 1)) + score_ab[1])))
        keep = scores >= threshold
        dets = calibrate(groups[keep], cal)
        match = greedy_match(dets, scores[keep], truth, 0.5)
        faces += len(truth)
        found += int((match >= 0).sum())
        false_pos += int((match < 0).sum())
        if len(dets) and len(truth):
            ious += [iou_matrix(dets[i:i + 1], truth[match[i]:match[i] + 1])[0, 0] for i in np.flatnonzero(match >= 0)]
    return {"score_threshold": threshold, "faces": faces, "recall": round(found / max(faces, 1), 4),
            "false_positives_per_image": round(false_pos / max(len(runs), 1), 4),
            "mean_iou_of_matches": round(float(np.mean(ious)), 4) if ious else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "detect")
    parser.add_argument("--out", type=Path, default=REPO / "weights" / "cascade_calibration.json")
    args = parser.parse_args(argv)

    cascade_path = args.out.parent / CASCADE_NAME
    if not cascade_path.exists():
        import skimage.data  # tools only: the cascade file ships inside scikit-image
        shutil.copyfile(skimage.data.lbp_frontal_face_cascade_filename(), cascade_path)
    draft = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION, "cascade": str(cascade_path.resolve()),
             "scan": SCAN, "calibration": {}, "score": {"a": 1.0, "b": 0.0}}
    with tempfile.TemporaryDirectory() as tmp:
        draft_path = Path(tmp) / "draft.json"
        draft_path.write_text(json.dumps(draft))
        detector = CascadeDetector(draft_path, calibrated=False)

    photos = find_photos(args.data)
    if not photos:
        print(f"no NAME.jpg + NAME.txt pairs under {args.data}", file=sys.stderr)
        return 2
    held = heldout_indices(len(photos))

    t0 = time.perf_counter()
    fit_runs, held_runs = [], []
    for k, (image_path, truth) in enumerate(photos):
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        groups, counts = detector.raw_groups(image)
        (held_runs if k in held else fit_runs).append((groups, counts, truth))
        if (k + 1) % 100 == 0:
            print(f"{k + 1}/{len(photos)} photos, {(time.perf_counter() - t0) / (k + 1) * 1000:.0f} ms each",
                  file=sys.stderr)
    ms_per_image = (time.perf_counter() - t0) / len(photos) * 1000

    # Box calibration: match raw boxes loosely, fit, re-match the calibrated boxes, refit.
    cal = BoxCalibration()
    for min_iou in (0.3, 0.5):
        native, target = [], []
        for groups, counts, truth in fit_runs:
            raw = calibrate(groups, BoxCalibration())
            match = greedy_match(calibrate(groups, cal), counts.astype(float), truth, min_iou)
            native += [raw[i] for i in np.flatnonzero(match >= 0)]
            target += [truth[match[i]] for i in np.flatnonzero(match >= 0)]
        cal = BoxCalibration.fit(np.array(native), np.array(target))
    n_pairs = len(native)

    # Score: P(matched at IoU 0.5 | neighbour count), logistic in log(count).
    xs, ys = [], []
    for groups, counts, truth in fit_runs:
        match = greedy_match(calibrate(groups, cal), counts.astype(float), truth, 0.5)
        xs += np.log(np.maximum(counts, 1)).tolist()
        ys += (match >= 0).astype(float).tolist()
    score_ab = sigmoid_fit(np.array(xs), np.array(ys))

    held_eval = evaluate(held_runs, cal, score_ab, SCORE_THRESHOLD)
    held_eval["images"] = len(held_runs)
    raw_eval = evaluate(held_runs, BoxCalibration(), score_ab, SCORE_THRESHOLD)
    held_eval["uncalibrated_boxes"] = {k: raw_eval[k] for k in ("recall", "mean_iou_of_matches")}
    held_eval["by_threshold"] = [{k: v for k, v in evaluate(held_runs, cal, score_ab, t).items() if k != "faces"}
                                 for t in (0.0, 0.3, 0.5, 0.7)]
    fit_eval = evaluate(fit_runs, cal, score_ab, SCORE_THRESHOLD)
    fit_eval["images"] = len(fit_runs)

    config = {
        "format": CONFIG_FORMAT, "version": CONFIG_VERSION,
        "cascade": CASCADE_NAME,
        "cascade_sha256": hashlib.sha256(cascade_path.read_bytes()).hexdigest(),
        "cascade_source": "OpenCV data/lbpcascades/lbpcascade_frontalface.xml, as bundled with "
                          "scikit-image (skimage.data.lbp_frontal_face_cascade_filename); OpenCV licence",
        "scan": SCAN,
        "calibration": {k: round(v, 5) for k, v in vars(cal).items()},
        "score": {"a": round(score_ab[0], 5), "b": round(score_ab[1], 5),
                  "formula": "sigmoid(a * log(neighbors) + b)"},
        "fit": {"data": "shared/data/detect (afw + helen_trainset photos, landmark boxes)",
                "split": f"numpy default_rng({SEED}).permutation of sorted .txt paths; first "
                         f"{HOLDOUT:.0%} held out", "matched_pairs": n_pairs,
                "tool": "tools/detector/calibrate_cascade.py", "ms_per_image": round(ms_per_image, 1)},
        "fit_split": fit_eval,
        "heldout": held_eval,
        "note": "false positives include unlabelled real faces (300-W labels only some)",
    }
    tmp_out = args.out.with_name(args.out.name + ".tmp")
    tmp_out.write_text(json.dumps(config, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(json.dumps({"calibration": config["calibration"], "score": config["score"],
                      "heldout": held_eval}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
