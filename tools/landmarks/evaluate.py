"""Evaluate shipped weights (through nnlite, not torch) on 300-W style folders.

    python -m tools.landmarks.evaluate --weights weights/demo.h5 FOLDER [FOLDER ...]
    python -m tools.landmarks.evaluate --weights weights/demo.h5 --split val ../shared/data/300w
    python -m tools.landmarks.evaluate --weights demo --fit-report --bias ../shared/data/300w

`--compare W` runs a second model on the same faces and prints the paired per-face difference
of the NME with a bootstrap interval: whether the faces tell the two models apart.
`--fit-report` scores the training and the validation split side by side (a model
that fits its training faces far better than unseen ones overfits; one that
scores them alike underfits). `--bias` adds the mean *signed* error per landmark
and over the face: unbiased predictions average to about zero. `--contour` splits each
part's error into its component along the contour the points lie on (a point slid along
the jaw line) and across it (off the line): 300-W places points along the jaw and brows
by loose rules, so a large along-contour share there is where annotators disagree.

Each face is cropped from its ground-truth landmark box, as papers do, with the
crop geometry stored in the weights file. Prints NME by inter-pupil and
inter-ocular distance, NME per part, failure rates, AUC@8% and the same for the
stage-1 (coarse) points; writes a CED plot (PNG) and, with --json, the figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from tools.common import inter_ocular, inter_pupil, point_errors
from tools.landmarks import data as D
from tracker.geometry import box_to_crop, landmark_box
from tracker.landmarks import Landmarker

PARTS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
         "eyes": range(36, 48), "lips": range(48, 68)}


# The 68-point markup's contours, as point chains: (first, last, closed).
CONTOURS = ((0, 16, False), (17, 21, False), (22, 26, False), (27, 30, False), (31, 35, False),
            (36, 41, True), (42, 47, True), (48, 59, True), (60, 67, True))


def contour_tangents(gt: np.ndarray) -> np.ndarray:
    """Unit tangents (N, 68, 2) of the ground truth's contours at each point: the direction
    from its previous to its next point in `CONTOURS` (one-sided at an open chain's ends)."""
    t = np.zeros(gt.shape, np.float64)
    for a, b, closed in CONTOURS:
        idx = np.arange(a, b + 1)
        if closed:
            prev, nxt = np.roll(idx, 1), np.roll(idx, -1)
        else:
            prev, nxt = np.maximum(idx - 1, a), np.minimum(idx + 1, b)
        t[:, idx] = gt[:, nxt] - gt[:, prev]
    return t / np.maximum(np.linalg.norm(t, axis=2, keepdims=True), 1e-9)


def contour_errors(pred, gt) -> dict:
    """Per part, the mean error along its contour and across it, % inter-ocular.

    pred, gt (N, 68, 2) -> {part: {"along": float, "across": float, "share": float}}; share is
    the part's fraction of the summed point errors (along^2 + across^2 = each point's error^2).
    """
    io = inter_ocular(gt)[:, None]
    e = (pred - gt).astype(np.float64)
    t = contour_tangents(np.asarray(gt, np.float64))
    along = np.abs((e * t).sum(2)) / io * 100
    across = np.abs(e[..., 0] * t[..., 1] - e[..., 1] * t[..., 0]) / io * 100
    total = np.hypot(along, across)
    return {part: {"along": float(along[:, list(idx)].mean()),
                   "across": float(across[:, list(idx)].mean()),
                   "share": float(total[:, list(idx)].sum() / max(total.sum(), 1e-12))}
            for part, idx in PARTS.items()}


def format_contour(rows: dict) -> str:
    """Along / across table, one column group per row of `rows` (`contour_errors` results)."""
    names = list(rows)
    lines = [f"{'part':>8s}" + "".join(f"{n + ' along':>22s}{'across':>8s}{'share':>7s}"
                                        for n in names)]
    for part in PARTS:
        lines.append(f"{part:>8s}" + "".join(
            f"{rows[n][part]['along']:22.2f}{rows[n][part]['across']:8.2f}"
            f"{rows[n][part]['share']:7.2f}" for n in names))
    return "\n".join(lines)


def nme_per_face(pred, gt):
    """pred, gt (N, 68, 2) -> dict of per-face error arrays (fractions)."""
    err = point_errors(pred, gt)  # (N, 68)
    io, ip = inter_ocular(gt), inter_pupil(gt)
    out = {"ip": err.mean(1) / ip, "io": err.mean(1) / io}
    for part, idx in PARTS.items():
        out[part] = err[:, list(idx)].mean(1) / io
    return out


def auc(errors, limit):
    """Area under the CED curve up to `limit`, normalised to [0, 1]."""
    xs = np.linspace(0, limit, 1001)
    ced = (np.sort(errors)[None, :] <= xs[:, None]).mean(1)
    return float(np.trapezoid(ced, xs) / limit)


def summary(pred, gt) -> dict:
    e = nme_per_face(pred, gt)
    return {
        "faces": int(len(gt)),
        "nme_ip": float(e["ip"].mean() * 100), "nme_io": float(e["io"].mean() * 100),
        **{f"nme_{p}": float(e[p].mean() * 100) for p in PARTS},
        "fr8_io": float((e["io"] > 0.08).mean() * 100),
        "fr10_io": float((e["io"] > 0.10).mean() * 100),
        "auc8_io": float(auc(e["io"], 0.08)),
    }


#: Bootstrap resamples behind `paired_difference`'s interval.
RESAMPLES = 10_000


def paired_difference(a, b, resamples: int = RESAMPLES, seed: int = 0) -> dict:
    """How far apart two models are on the same faces, and how sure that is.

    a, b : float (N,) per-face errors of two models on the same N faces, in the same order.
    -> {"faces", "mean_a", "mean_b", "diff" (mean of b - a), "rel" (diff / mean_a),
    "ci95" ([low, high] of the diff: percentiles of `resamples` bootstrap resamples of the faces,
    drawn with `seed`), "b_closer" (share of faces where b's error is below a's)}. Pairing the
    faces removes what all models find hard; an interval holding 0 means these faces do not
    tell the two apart.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"expected two per-face error arrays of one length, got {a.shape} and {b.shape}")
    d = b - a
    idx = np.random.default_rng(seed).integers(0, len(d), (resamples, len(d)))
    boot = d[idx].mean(1)
    return {"faces": int(len(d)), "mean_a": float(a.mean()), "mean_b": float(b.mean()),
            "diff": float(d.mean()), "rel": float(d.mean() / a.mean()),
            "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "b_closer": float((d < 0).mean())}


def bias(pred, gt) -> dict:
    """Mean signed error (pred - gt) in % of the inter-ocular distance.

    pred, gt (N, L, 2) -> {"x": [L], "y": [L], "mean_x": float, "mean_y": float}:
    per landmark over the faces, and over faces and landmarks.
    """
    io = inter_ocular(gt)
    e = (pred - gt) / io[:, None, None] * 100  # (N, L, 2)
    per = e.mean(0)
    return {"x": per[:, 0].tolist(), "y": per[:, 1].tolist(),
            "mean_x": float(per[:, 0].mean()), "mean_y": float(per[:, 1].mean())}


def format_bias(rows: dict) -> str:
    """Per-landmark signed error table (one column pair per row of `rows`)."""
    names = list(rows)
    head = f"{'landmark':>8s}" + "".join(f"{n + ' x':>18s}{n + ' y':>18s}" for n in names)
    lines = [head]
    for i in range(len(rows[names[0]]["x"])):
        lines.append(f"{i:8d}" + "".join(f"{rows[n]['x'][i]:18.2f}{rows[n]['y'][i]:18.2f}"
                                           for n in names))
    lines.append(f"{'mean':>8s}" + "".join(f"{rows[n]['mean_x']:18.2f}{rows[n]['mean_y']:18.2f}"
                                           for n in names))
    return "\n".join(lines)


def plot_ced(curves: dict, path, limit=0.10, size=(640, 480)):
    """Cumulative error distribution (inter-ocular NME) drawn with OpenCV -> PNG."""
    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    x0, y0, x1, y1 = 60, h - 50, w - 20, 20
    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    for i in range(6):
        fx = x0 + (x1 - x0) * i / 5
        cv2.putText(img, f"{limit * 100 * i / 5:.0f}%", (int(fx) - 12, y0 + 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        fy = y0 - (y0 - y1) * i / 5
        cv2.putText(img, f"{i / 5:.1f}", (x0 - 35, int(fy) + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.line(img, (int(fx), y0), (int(fx), y1), (220, 220, 220), 1)
        cv2.line(img, (x0, int(fy)), (x1, int(fy)), (220, 220, 220), 1)
    colours = [(200, 60, 0), (0, 140, 255), (0, 160, 0), (160, 0, 160)]
    for j, (name, errors) in enumerate(curves.items()):
        xs = np.linspace(0, limit, 200)
        ced = (np.sort(errors)[None, :] <= xs[:, None]).mean(1)
        pts = np.stack([x0 + (x1 - x0) * xs / limit, y0 - (y0 - y1) * ced], 1)
        cv2.polylines(img, [np.round(pts).astype(np.int32)], False, colours[j % 4], 2, cv2.LINE_AA)
        cv2.putText(img, name, (x1 - 220, y0 - 20 - 20 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colours[j % 4], 1, cv2.LINE_AA)
    cv2.putText(img, "NME (inter-ocular)", (w // 2 - 60, h - 8), cv2.FONT_HERSHEY_SIMPLEX,
                0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), img)


def read_faces(pairs, progress=True):
    """Yield (uint8 BGR image, float (68, 2) ground truth) per (image, .pts) pair, checked;
    progress every 100 faces on stderr."""
    t0 = time.time()
    for i, (img_path, pts_path) in enumerate(pairs):
        img = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{img_path}: unreadable image")
        gt = D.read_pts(pts_path)
        if gt.shape != (68, 2):
            raise ValueError(f"{pts_path}: expected 68 points, found {len(gt)}")
        yield img, gt
        if progress and (i + 1) % 100 == 0:
            print(f"  {i + 1}/{len(pairs)} faces, {(i + 1) / (time.time() - t0):.0f} faces/s",
                  file=sys.stderr, flush=True)


def run(weights, pairs, backend=None, progress=True, flip_average=False):
    """-> (refined, coarse, gt) arrays (N, 68, 2) in frame pixels."""
    lm = Landmarker(weights, backend=backend, flip_average=flip_average)
    return run_landmarkers([lm], pairs, progress)[0]


def run_landmarkers(landmarkers, pairs, progress=True):
    """Several models on the same faces, each image read once.

    -> one (refined, coarse, gt) per `tracker.landmarks.Landmarker`, as `run` returns.
    """
    points = [([], []) for _ in landmarkers]
    gts = []
    for img, gt in read_faces(pairs, progress):
        box = landmark_box(gt)
        for lm, (refined, coarse) in zip(landmarkers, points):
            res = lm.run(img, [box_to_crop(box, lm.crop_scale)])[0]
            refined.append(res.points)
            coarse.append(res.coarse)
        gts.append(gt)
    gt = np.stack(gts)
    return [(np.stack(refined), np.stack(coarse), gt) for refined, coarse in points]


def format_table(rows: dict) -> str:
    keys = ["faces", "nme_ip", "nme_io", *(f"nme_{p}" for p in PARTS), "fr8_io", "fr10_io",
            "auc8_io"]
    width = max(18, *(len(name) + 1 for name in rows))
    lines = [f"{'':{width}s}" + "".join(f"{k:>10s}" for k in keys)]
    for name, s in rows.items():
        lines.append(f"{name:{width}s}" + "".join(
            f"{s[k]:10d}" if k == "faces" else f"{s[k]:10.3f}" for k in keys))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="folders of image + .pts pairs (searched recursively)")
    ap.add_argument("--weights", default="demo", help="a shipped model's name (demo, lite, full) or a file")
    ap.add_argument("--split", choices=["all", "train", "val"], default="all",
                    help="evaluate only this part of the fixed-seed training split")
    ap.add_argument("--fit-report", action="store_true",
                    help="score the training and the validation split side by side")
    ap.add_argument("--bias", action="store_true",
                    help="also print the mean signed error per landmark (%% inter-ocular)")
    ap.add_argument("--contour", action="store_true",
                    help="also split each part's error along its contour and across it")
    ap.add_argument("--ced", default="ced.png", help="CED plot output (PNG)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--backend", choices=["numba", "numpy"])
    ap.add_argument("--flip-average", action="store_true",
                    help="average each face with its mirrored crop (tracker.landmarks.Landmarker)")
    ap.add_argument("--compare", metavar="WEIGHTS",
                    help="also run these weights on the same faces and print the paired per-face "
                         "difference of the inter-pupil NME (compare - weights) with a bootstrap 95%% interval")
    args = ap.parse_args(argv)
    try:
        pairs = [p for f in args.folders for p in D.find_pairs(f)]
        if not pairs:
            raise ValueError(f"no image + .pts pairs under {', '.join(args.folders)}")
        if args.fit_report:
            train, val = D.split_pairs(pairs, 0.1, seed=0)
            splits = {"train": train, "val": val}
        elif args.split != "all":
            train, val = D.split_pairs(pairs, 0.1, seed=0)
            splits = {args.split: val if args.split == "val" else train}
        else:
            splits = {"all": pairs}
        # Both models load before any face is read (a bad second file fails at once), and
        # with --compare each image is read once for both.
        models = [Landmarker(w, backend=args.backend, flip_average=args.flip_average)
                  for w in [args.weights] + ([args.compare] if args.compare else [])]
        runs = {name: run_landmarkers(models, ps) for name, ps in splits.items()}
        results = {name: r[0] for name, r in runs.items()}
        others = {name: r[1] for name, r in runs.items()} if args.compare else {}
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows, biases, contours = {}, {}, {}
    for name, (refined, coarse, gt) in results.items():
        label = "" if len(results) == 1 else f"{name} "
        rows[f"{label}refined (stage 2)"] = summary(refined, gt)
        rows[f"{label}coarse (stage 1)"] = summary(coarse, gt)
        biases[f"{label}refined"] = bias(refined, gt)
        biases[f"{label}coarse"] = bias(coarse, gt)
        if args.contour:
            contours[f"{label}refined"] = contour_errors(refined, gt)
    described = ", ".join(f"{n}: {len(ps)}" for n, ps in splits.items())
    print(f"{args.weights} on faces from {', '.join(args.folders)} ({described}"
          f"{', flip-averaged' if args.flip_average else ''}); NME in %, failure rates in % of faces")
    print(format_table(rows))
    report = {"summary": rows}
    if args.fit_report:
        ratios = {part: rows[f"train {part} (stage {k})"]["nme_io"] / rows[f"val {part} (stage {k})"]["nme_io"]
                  for part, k in (("refined", 2), ("coarse", 1))}
        print("fit: training / validation NME (inter-ocular): "
              + ", ".join(f"{part} {r:.2f}" for part, r in ratios.items()))
        report["fit_ratio_io"] = ratios
    if args.bias:
        print("mean signed error per landmark, % of the inter-ocular distance (pred - truth)")
        print(format_bias(biases))
        report["bias"] = biases
    else:
        print("global mean signed error (% inter-ocular): " + ", ".join(
            f"{n} x {b['mean_x']:+.2f} y {b['mean_y']:+.2f}" for n, b in biases.items()))
        report["bias"] = {n: {"mean_x": b["mean_x"], "mean_y": b["mean_y"]} for n, b in biases.items()}
    if args.contour:
        print("mean error along each part's contour and across it, % inter-ocular; share: the "
              "part's fraction of all point error (refined points)")
        print(format_contour(contours))
        report["contour"] = contours
    if others:
        print(f"paired per face, inter-pupil NME %: {args.compare} minus {args.weights} "
              f"(95% interval from {RESAMPLES:,} bootstrap resamples of the faces)")
        report["compare"] = {"weights": str(args.compare)}
        for name, (refined, _, gt) in results.items():
            p = paired_difference(nme_per_face(refined, gt)["ip"] * 100,
                                  nme_per_face(others[name][0], gt)["ip"] * 100)
            print(f"  {name}: {p['mean_b']:.3f} - {p['mean_a']:.3f} = {p['diff']:+.3f} "
                  f"({p['rel'] * 100:+.1f}%), 95% [{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}]; "
                  f"{args.compare} closer on {p['b_closer'] * 100:.0f}% of {p['faces']} faces")
            report["compare"][name] = p
    refined, coarse, gt = results[next(iter(results))] if len(results) == 1 else results["val"]
    plot_ced({"refined": nme_per_face(refined, gt)["io"],
              "coarse": nme_per_face(coarse, gt)["io"]}, args.ced)
    print(f"CED plot: {args.ced}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
