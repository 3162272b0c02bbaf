"""How far two annotations of one face disagree: the floor under any model's error.

    python -m tools.landmarks.annotation_noise                     # ../shared/data/300w
    python -m tools.landmarks.annotation_noise --weights full      # and a model beside it
    python -m tools.landmarks.annotation_noise FOLDER --json noise.json

300-W annotated a few faces twice: two files of one photo (PHOTOID_1, PHOTOID_2) that show
the same face. They are found by their pictures, not their points: the second crop, mapped
onto the first by the similarity that takes one point set onto the other, must match it
(normalised cross-correlation over the landmark box >= --min-ncc); faces of one photo
that merely look alike in shape do not pass.

Both annotations of a pair are compared after that similarity alignment (which also
absorbs any global offset between the two crops), per part, in % of the inter-ocular
distance. With --weights, a model's error on the training and validation splits is
given the same way (its points similarity-aligned to the truth), so the two read side by
side: a model that matched the annotators' mean would score about the disagreement / sqrt(2)
against a single annotation.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from tools.common import inter_ocular
from tools.landmarks import data as D
from tools.landmarks.evaluate import PARTS, run
from tools.landmarks.train import DEFAULT_DATA


def aligned_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Point errors after the least-squares similarity taking pred onto truth, as fractions
    of truth's inter-ocular distance. pred, truth (L, 2) -> (L,)."""
    a = pred - pred.mean(0)
    b = truth - truth.mean(0)
    n = float((a * a).sum())
    s = float((a * b).sum()) / n  # scale * cos
    r = float((a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()) / n  # scale * sin
    moved = a @ np.array([[s, r], [-r, s]])
    return np.linalg.norm(moved - b, axis=1) / float(inter_ocular(truth))


def same_picture(img_a: np.ndarray, pts_a: np.ndarray, img_b: np.ndarray,
                 pts_b: np.ndarray) -> float:
    """Normalised cross-correlation, over b's landmark box, of b's grey image and a's mapped
    onto it by the similarity that takes pts_a onto pts_b (1: the same picture)."""
    m, _ = cv2.estimateAffinePartial2D(pts_a.astype(np.float32), pts_b.astype(np.float32))
    if m is None:
        return 0.0
    grey_a = cv2.cvtColor(img_a, cv2.COLOR_BGR2GRAY)
    grey_b = cv2.cvtColor(img_b, cv2.COLOR_BGR2GRAY)
    warped = cv2.warpAffine(grey_a, m, (grey_b.shape[1], grey_b.shape[0]))
    (x0, y0), (x1, y1) = np.floor(pts_b.min(0)).astype(int), np.ceil(pts_b.max(0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    a = warped[y0:y1, x0:x1].astype(np.float64)
    b = grey_b[y0:y1, x0:x1].astype(np.float64)
    if a.size < 16 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std()))


def twice_annotated(pairs, min_ncc: float = 0.98, max_shape: float = 0.05):
    """Faces annotated twice among (image, .pts) pairs -> list of (pair_a, pair_b, errors):
    errors float (68,) is `aligned_errors` of a's points against b's. Candidates are the
    files of one photo whose shapes agree within `max_shape` (mean aligned error) and
    whose pictures match (`same_picture` >= min_ncc)."""
    by_photo = collections.defaultdict(list)
    for pair in pairs:
        by_photo[D.photo_id(pair[0])].append(pair)
    found = []
    for group in by_photo.values():
        points = [D.read_pts(p[1]) for p in group]
        images = {}  # read once per file, and only for candidates

        def image(k):
            if k not in images:
                images[k] = cv2.imread(str(group[k][0]), cv2.IMREAD_COLOR)
            return images[k]

        for i in range(len(group)):
            for j in range(i + 1, len(group)):
                err = aligned_errors(points[i], points[j])
                if err.mean() > max_shape:
                    continue
                img_a, img_b = image(i), image(j)
                if img_a is None or img_b is None:
                    continue
                if same_picture(img_a, points[i], img_b, points[j]) >= min_ncc:
                    found.append((group[i], group[j], err))
    return found


def by_part(errors: np.ndarray) -> dict:
    """(N, 68) fractions -> {"all": %, part: %} means in % inter-ocular."""
    out = {"all": float(errors.mean() * 100)}
    out.update({part: float(errors[:, list(idx)].mean() * 100) for part, idx in PARTS.items()})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="*", default=[str(DEFAULT_DATA)],
                    help="folders of image + .pts pairs (default: the 300-W training data)")
    ap.add_argument("--weights", help="also a model's similarity-aligned error (demo, lite, full or a file)")
    ap.add_argument("--min-ncc", type=float, default=0.98,
                    help="how alike two pictures must be to count as one face")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)
    try:
        pairs = [p for f in args.folders for p in D.find_pairs(f)]
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    found = twice_annotated(pairs, args.min_ncc)
    report = {"faces": len(pairs), "twice_annotated": len(found),
              "pairs": [[str(a[1]), str(b[1]), float(err.mean() * 100)] for a, b, err in found]}
    print(f"{len(pairs)} faces; {len(found)} annotated twice (same picture, NCC >= {args.min_ncc})")
    if not found:
        print("no face annotated twice: nothing to compare")
    else:
        rows = {"two annotations": by_part(np.stack([err for *_, err in found]))}
        for a, b, err in found:
            print(f"  {Path(a[1]).name} / {Path(b[1]).name}: {err.mean() * 100:.2f}")
        if args.weights:
            train, val = D.split_pairs(pairs, 0.1, seed=0)
            for name, split in (("train", train), ("val", val)):
                refined, _, gt = run(args.weights, split, progress=False)
                rows[f"{args.weights} {name}"] = by_part(
                    np.stack([aligned_errors(p, g) for p, g in zip(refined, gt)]))
        print("mean point error after similarity alignment, % inter-ocular")
        keys = ["all", *PARTS]
        width = max(len(n) for n in rows) + 2
        print(f"{'':{width}s}" + "".join(f"{k:>8s}" for k in keys))
        for name, r in rows.items():
            print(f"{name:{width}s}" + "".join(f"{r[k]:8.2f}" for k in keys))
        report["aligned_error_io"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
