"""Tune the tracker on validation data: the tracking-score threshold and the One Euro filter.

USAGE
    python -m tools.landmarks.tune_tracking --weights weights/demo.h5
    python -m tools.landmarks.tune_tracking --weights weights/demo.h5 --faces 15 --json tune_tracking.json

Everything comes from the validation split of 300-W (`tools.landmarks.data.split_pairs(pairs,
0.1, seed=0)[1]`) and from the detection photos of those same validation photos;
never from training faces or test data. Run it again on every new weights file
and copy the printed values (see "what to set" at the end of its output).

1. min_tracking_score (goes into the weights config as "tracking": {"min_score": ...}).
   The landmark score (mean over landmarks of the peak sigmoid of each stage-1
   heatmap) is measured on
     positives: every validation face, cropped the ways the tracker crops it:
       "track"  from its landmarks (roll removed) with the frame-to-frame drift
                of a moving face (centre +/-10% of the crop side, size +/-10%,
                roll +/-10 degrees) and mild sensor noise;
       "detect" upright from a perturbed landmark box (centre +/-8%, size
                +/-15%), as a detection starts a track;
     negatives:
       "background" crops of the validation photos (detect/ folder) that stay
                clear of every labelled face (caveat: unlabelled faces exist);
       "off-face" crops of validation faces shifted by 0.6-1 crop side, or
                2.5-4x too large, or 3-4x too small (a track that lost its face;
                the image border is replicated as in the tracker).
   The threshold is the highest one that keeps at least --keep (default 99%)
   of the "track" positives; the true/false accept rates at it are printed, with a warning
   when it accepts more than 2% of either kind of negative (a score that does not separate).

2. Crop deadband and One Euro parameters (tracker.tracking.CROP_DEADBAND,
   tracker.smoothing.SmoothingParams defaults). For each deadband of
   --deadbands the tracker follows each validation face through the synthetic
   "still" and "moving" sequences of tools.sequences (oracle start, the
   threshold from step 1), raw output recorded once; then every (min_cutoff,
   beta, d_cutoff) of a grid is applied to it. Admitted: the settings whose
   lag on the moving face grows by at most --lag-budget and whose moving-face
   NME grows by at most --nme-budget (% of inter-ocular distance) over the raw
   output of the plain tracker (deadband 0, no smoothing). Chosen among them:
   the highest min_cutoff (a slow drift is followed sooner), then the least
   lag, among those whose still-face jitter is within --jitter-slack (25%) of
   the lowest.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import cv2
import numpy as np

from tools import sequences as S
from tools.common import SHARED_DATA, machine, nme
from tools.landmarks import data as D
from tracker.geometry import CropBox, box_to_crop, landmark_box, landmarks_to_crop
from tracker.smoothing import SmoothingParams

DETECT_ROOT = SHARED_DATA / "detect"
GRID = {"min_cutoff": [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0],
        "beta": [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0],
        "d_cutoff": [0.5, 1.0, 2.0]}
DEADBANDS = [0.0, 0.02, 0.04]


# -- 1. score threshold ----------------------------------------------------------------------

def _noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild camera-like change: gain/offset and sensor noise."""
    f = image.astype(np.float32) * math.exp(rng.uniform(-0.2, 0.2)) + rng.uniform(-20, 20)
    f += rng.normal(0, rng.uniform(1, 5), f.shape).astype(np.float32)
    return np.clip(f, 0, 255).astype(np.uint8)


def positive_crops(sample: D.Sample, scale: float, rng: np.random.Generator, n: int = 3):
    """-> [(kind, image, CropBox)]: n tracking-like and n detection-like crops of a face."""
    out = []
    base = landmarks_to_crop(sample.points, scale)
    for _ in range(n):
        side = base.side * math.exp(rng.uniform(-0.1, 0.1))
        out.append(("track", _noisy(sample.image, rng), CropBox(
            base.cx + rng.uniform(-0.1, 0.1) * base.side, base.cy + rng.uniform(-0.1, 0.1) * base.side,
            side, base.angle + math.radians(rng.uniform(-10, 10)))))
    x0, y0, x1, y1 = landmark_box(sample.points)
    up = box_to_crop((x0, y0, x1, y1), scale)
    for _ in range(n):
        side = up.side * math.exp(rng.uniform(-0.15, 0.15))
        out.append(("detect", _noisy(sample.image, rng), CropBox(
            up.cx + rng.uniform(-0.08, 0.08) * up.side, up.cy + rng.uniform(-0.08, 0.08) * up.side, side, 0.0)))
    return out


def off_face_crops(sample: D.Sample, scale: float, rng: np.random.Generator, n: int = 3):
    """-> [("off-face", image, CropBox)]: crops that have lost the face."""
    base = landmarks_to_crop(sample.points, scale)
    out = []
    for k in range(n):
        kind = k % 3
        if kind == 0:      # drifted off: the face centre at or past the crop edge
            d, a = rng.uniform(0.6, 1.0) * base.side, rng.uniform(0, 2 * math.pi)
            box = CropBox(base.cx + d * math.cos(a), base.cy + d * math.sin(a), base.side, base.angle)
        elif kind == 1:    # far too large: the face is a small part of the crop
            box = CropBox(base.cx, base.cy, base.side * rng.uniform(2.5, 4.0), base.angle)
        else:              # far too small: a patch of skin
            s = base.side / rng.uniform(3.0, 4.0)
            box = CropBox(base.cx + rng.uniform(-0.2, 0.2) * base.side,
                          base.cy + rng.uniform(-0.2, 0.2) * base.side, s, base.angle)
        out.append(("off-face", _noisy(sample.image, rng), box))
    return out


def background_crops(detect_root, photo_ids: set[str], rng: np.random.Generator, per_image: int = 4,
                     clearance: float = 1.5):
    """-> [("background", image, CropBox)] from detection photos whose photo id is in photo_ids,
    each crop clear of every labelled landmark box grown `clearance` times about its centre."""
    out = []
    for folder in sorted(Path(detect_root).iterdir()) if Path(detect_root).is_dir() else []:
        for img_path in sorted(folder.glob("*.jpg")):
            stem = img_path.stem
            base = stem.rsplit("_", 1)[0] if "_" in stem else stem
            txt = img_path.with_suffix(".txt")
            if base not in photo_ids or not txt.exists():
                continue
            image = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
            if image is None:
                continue
            boxes = [list(map(float, ln.split())) for ln in txt.read_text().splitlines() if ln.strip()]
            grown = [_grow(b, clearance) for b in boxes]
            h, w = image.shape[:2]
            found, tries = 0, 0
            while found < per_image and tries < 200:
                tries += 1
                side = rng.uniform(50, 0.8 * min(h, w))
                cx, cy = rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2)
                sq = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
                if any(_overlap(sq, g) for g in grown):
                    continue
                out.append(("background", image, CropBox(cx, cy, side, math.radians(rng.uniform(-15, 15)))))
                found += 1
    return out


def _grow(b, f):
    cx, cy, hw, hh = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, (b[2] - b[0]) / 2 * f, (b[3] - b[1]) / 2 * f
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def _overlap(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def measure_scores(landmarker, samples, detect_root, photo_ids, seed: int = 0) -> dict[str, np.ndarray]:
    """Landmark scores per crop kind: track, detect (positives), background, off-face (negatives)."""
    rng = np.random.default_rng(seed)
    crops = []
    for s in samples:
        crops += positive_crops(s, landmarker.crop_scale, rng)
        crops += off_face_crops(s, landmarker.crop_scale, rng)
    crops += background_crops(detect_root, photo_ids, rng)
    scores: dict[str, list] = {}
    for kind, image, box in crops:
        scores.setdefault(kind, []).append(landmarker.run(image, [box])[0].score)
    return {k: np.array(v) for k, v in scores.items()}


def choose_threshold(positives: np.ndarray, keep: float = 0.99) -> float:
    """Highest threshold (2 decimals, rounded down) accepting at least `keep` of the positives."""
    t = float(np.quantile(positives, 1.0 - keep, method="lower"))
    return math.floor(t * 100) / 100


def separation_warning(rates_at: dict[str, float], most: float = 0.02) -> str | None:
    """A warning when the chosen threshold accepts more than `most` of a negative kind
    (background, off-face): the score does not tell faces from the rest (a model trained
    without the heatmap loss scored by the sigmoid peak accepted 25% / 50%), else None."""
    bad = {k: v for k, v in rates_at.items() if k in ("background", "off-face") and v > most}
    if not bad:
        return None
    return ("warning: this landmark score does not separate faces from the rest: the threshold accepts "
            + ", ".join(f"{100 * v:.1f}% of {k} crops" for k, v in bad.items())
            + "; the tracker would keep lost tracks (check the weights config's heatmap.confidence)")


def rates(scores: dict[str, np.ndarray], t: float) -> dict[str, float]:
    """Fraction of each kind accepted (score >= t)."""
    return {k: float((v >= t).mean()) for k, v in scores.items()}


def roc_table(scores: dict[str, np.ndarray], thresholds) -> str:
    kinds = list(scores)
    lines = [f"{'threshold':>10s}" + "".join(f"{k + ' acc.':>16s}" for k in kinds)]
    for t in thresholds:
        r = rates(scores, t)
        lines.append(f"{t:10.2f}" + "".join(f"{100 * r[k]:15.1f}%" for k in kinds))
    return "\n".join(lines)


# -- 2. One Euro parameters ------------------------------------------------------------------

def record_raw(landmarker, samples, min_tracking_score, crop_deadband: float = 0.0, noise: float = 2.0,
               progress=True):
    """Oracle-start tracker runs (smoothing off) of the still and moving sequences of each face."""
    oracle = S.OracleDetector()
    timed = S.TimedDetector(oracle)
    tracker = S.make_tracker(landmarker, timed, min_tracking_score, crop_deadband)
    recs = []
    for k, s in enumerate(samples):
        seqs = S.build_sequences(s.image, s.points, seed=k, noise=noise)
        recs.append({name: S.run_sequence(seqs[name], tracker, timed, oracle) for name in ("still", "moving")})
        if progress:
            print(f"  deadband {crop_deadband:g}: face {k + 1}/{len(samples)} {s.name}", file=sys.stderr,
                  flush=True)
    return recs


def evaluate_params(recs, params: SmoothingParams) -> dict:
    """Mean over faces of still jitter and moving lag / NME (in %) for one parameter set."""
    jit, lag, err, jit_raw, lag_raw, err_raw, nme_still, nme_still_raw = ([] for _ in range(8))
    for r in recs:
        st, mv = r["still"], r["moving"]
        s_st, _ = S.smooth_track(st.raw, st.track, params)
        s_mv, _ = S.smooth_track(mv.raw, mv.track, params)
        jit.append(S.jitter(s_st, st.truth, st.track, S.STILL_WARMUP))
        jit_raw.append(S.jitter(st.raw, st.truth, st.track, S.STILL_WARMUP))
        nme_still.append(np.nanmean(nme(s_st, st.truth)))
        nme_still_raw.append(np.nanmean(nme(st.raw, st.truth)))
        lag.append(S.lag(s_mv, mv.truth))
        lag_raw.append(S.lag(mv.raw, mv.truth))
        err.append(np.nanmean(nme(s_mv, mv.truth)))
        err_raw.append(np.nanmean(nme(mv.raw, mv.truth)))

    def m(v):
        return 100.0 * float(np.nanmean(v))

    return {"jitter": m(jit), "jitter_raw": m(jit_raw), "lag": m(lag), "lag_raw": m(lag_raw),
            "nme_moving": m(err), "nme_moving_raw": m(err_raw),
            "nme_still": m(nme_still), "nme_still_raw": m(nme_still_raw)}


def within_budget(f: dict, base: dict, lag_budget: float, nme_budget: float) -> bool:
    """Lag and moving-face NME at most the budgets above the plain tracker's raw output (base)."""
    return (f["lag"] - base["lag_raw"] <= lag_budget
            and f["nme_moving"] - base["nme_moving_raw"] <= nme_budget)


def pick(rows, slack: float):
    """Among (deadband, params, figures) rows: the highest min_cutoff, then the least lag, of
    those whose jitter is within `slack` (fraction) of the lowest; None when rows is empty."""
    if not rows:
        return None
    low = min(f["jitter"] for _, _, f in rows)
    near = [r for r in rows if r[2]["jitter"] <= low * (1.0 + slack) + 1e-9]
    return max(near, key=lambda r: (r[1].min_cutoff, -r[2]["lag"], -r[0]))


def best_within(rows, deadband: float, base: dict, lag_budget: float, nme_budget: float,
                slack: float = 0.25):
    """The chosen (params, figures) of one deadband within the budgets (see `pick`), or None."""
    best = pick([r for r in rows if r[0] == deadband and within_budget(r[2], base, lag_budget, nme_budget)],
                slack)
    return None if best is None else best[1:]


def tune_smoothing(recs_by_deadband: dict, lag_budget: float, nme_budget: float, grid=GRID,
                   slack: float = 0.25):
    """-> (deadband, SmoothingParams, its figures, all rows). See the module docstring.

    recs_by_deadband maps each crop deadband to its `record_raw` output; it must hold 0.0,
    the plain tracker, whose raw output the budgets are measured from."""
    base = evaluate_params(recs_by_deadband[0.0], SmoothingParams())
    rows = []
    for db, recs in recs_by_deadband.items():
        for mc, beta, dc in itertools.product(grid["min_cutoff"], grid["beta"], grid["d_cutoff"]):
            p = SmoothingParams(mc, beta, dc)
            rows.append((db, p, evaluate_params(recs, p)))
    best = pick([r for r in rows if within_budget(r[2], base, lag_budget, nme_budget)], slack)
    if best is None:
        raise ValueError("no setting meets the lag and NME budgets; raise them")
    return best[0], best[1], best[2], rows


# -- driver -----------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/demo.h5")
    ap.add_argument("--data", default=str(S.DATA_ROOT), help="300-W folder (its validation split is used)")
    ap.add_argument("--detect", default=str(DETECT_ROOT), help="detection photos (background crops)")
    ap.add_argument("--faces", type=int, default=15, help="faces for the One Euro sequences")
    ap.add_argument("--keep", type=float, default=0.99, help="fraction of tracking positives to keep")
    ap.add_argument("--lag-budget", type=float, default=0.5,
                    help="most extra lag on the moving face, %% of inter-ocular distance")
    ap.add_argument("--nme-budget", type=float, default=0.25,
                    help="most extra NME on the moving face, %% of inter-ocular distance")
    ap.add_argument("--jitter-slack", type=float, default=0.25,
                    help="settings within this fraction of the lowest jitter count as equal")
    ap.add_argument("--min-tracking-score", type=float,
                    help="skip step 1 and use this threshold for step 2")
    ap.add_argument("--deadbands", type=float, nargs="+", default=DEADBANDS,
                    help="crop deadbands to try (0 is always included)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="tune_tracking.json")
    args = ap.parse_args(argv)

    try:
        landmarker = S.load_landmarker(args.weights, args.threads)
        pairs = D.find_pairs(args.data)
        _, val = D.split_pairs(pairs, 0.1, seed=0)
        if not val:
            raise ValueError(f"no validation faces under {args.data}")
        val_samples = D.load_samples(val)
        seq_samples = S.validation_faces(args.data, args.faces)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.weights}; machine: {machine()}")
    report = {"weights": str(args.weights), "machine": machine()}

    # 1. threshold
    if args.min_tracking_score is None:
        photo_ids = {D.photo_id(p[0]).split("/", 1)[1] for p in val}
        scores = measure_scores(landmarker, val_samples, args.detect, photo_ids)
        threshold = choose_threshold(scores["track"], args.keep)
        print(f"\nlandmark score on {len(val_samples)} validation faces and {len(scores.get('background', []))} "
              f"background crops of {len(photo_ids)} validation photos:")
        for k, v in scores.items():
            q = np.percentile(v, [1, 5, 25, 50, 75, 95, 99])
            print(f"  {k:11s} n={len(v):4d}  p1 {q[0]:.3f}  p5 {q[1]:.3f}  p25 {q[2]:.3f}  median {q[3]:.3f}"
                  f"  p75 {q[4]:.3f}  p95 {q[5]:.3f}  p99 {q[6]:.3f}")
        grid = sorted({round(x, 2) for x in np.arange(0.05, 0.96, 0.05)} | {threshold})
        print(roc_table(scores, grid))
        r = rates(scores, threshold)
        print(f"chosen min_tracking_score {threshold:.2f}: keeps {100 * r['track']:.1f}% of tracking crops and "
              f"{100 * r['detect']:.1f}% of detection crops; accepts {100 * r.get('background', 0):.1f}% of "
              f"background and {100 * r['off-face']:.1f}% of off-face crops")
        warning = separation_warning(r)
        if warning:
            print(warning)
        report["score"] = {"threshold": threshold, "keep": args.keep, "rates": r, "warning": warning,
                           "percentiles": {k: np.percentile(v, [1, 5, 25, 50, 75, 95, 99]).round(4).tolist()
                                           for k, v in scores.items()},
                           "counts": {k: len(v) for k, v in scores.items()}}
    else:
        threshold = args.min_tracking_score

    # 2. crop deadband + One Euro
    print(f"\nOne Euro and crop deadband: oracle-start tracking of {len(seq_samples)} validation faces "
          f"(still + moving), min_tracking_score {threshold:.2f}")
    deadbands = sorted({0.0, *args.deadbands})
    recs = {db: record_raw(landmarker, seq_samples, threshold, db) for db in deadbands}
    deadband, params, fig, rows = tune_smoothing(recs, args.lag_budget, args.nme_budget,
                                                 slack=args.jitter_slack)
    base = evaluate_params(recs[0.0], SmoothingParams())
    print("still jitter / still NME / moving NME / lag in % of inter-ocular distance:")
    for db in deadbands:
        raw = evaluate_params(recs[db], SmoothingParams())
        print(f"  deadband {db:<5g} raw output       jitter {raw['jitter_raw']:.3f}  NME {raw['nme_still_raw']:.2f}"
              f"  moving NME {raw['nme_moving_raw']:.2f}  lag {raw['lag_raw']:.2f}")
        print(f"  deadband {db:<5g} current smoothing jitter {raw['jitter']:.3f}  NME {raw['nme_still']:.2f}"
              f"  moving NME {raw['nme_moving']:.2f}  lag {raw['lag']:.2f}")
        best = best_within(rows, db, base, args.lag_budget, args.nme_budget, args.jitter_slack)
        if best is not None:
            p, f = best
            print(f"  deadband {db:<5g} best smoothing   jitter {f['jitter']:.3f}  NME {f['nme_still']:.2f}"
                  f"  moving NME {f['nme_moving']:.2f}  lag {f['lag']:.2f}  (min_cutoff {p.min_cutoff:g}, "
                  f"beta {p.beta:g}, d_cutoff {p.d_cutoff:g})")
    print(f"chosen: crop_deadband {deadband:g}, min_cutoff {params.min_cutoff:g}, beta {params.beta:g}, "
          f"d_cutoff {params.d_cutoff:g}: still jitter {fig['jitter']:.3f}% (raw {fig['jitter_raw']:.3f}%), "
          f"still NME {fig['nme_still']:.2f}%, moving NME {fig['nme_moving']:.2f}%, lag {fig['lag']:.2f}%")
    report["smoothing"] = {"chosen": {"crop_deadband": deadband, "min_cutoff": params.min_cutoff,
                                      "beta": params.beta, "d_cutoff": params.d_cutoff}, "figures": fig,
                           "lag_budget": args.lag_budget, "nme_budget": args.nme_budget,
                           "grid": [{"crop_deadband": d, "min_cutoff": p.min_cutoff, "beta": p.beta,
                                     "d_cutoff": p.d_cutoff, **f} for d, p, f in rows]}
    print("\nwhat to set:")
    print(f'  weights config (export): "tracking": {{"min_score": {threshold:.2f}}}')
    print(f"  tracker/smoothing.py: SmoothingParams(min_cutoff={params.min_cutoff:g}, beta={params.beta:g}, "
          f"d_cutoff={params.d_cutoff:g})")
    print(f"  tracker/tracking.py: CROP_DEADBAND = {deadband:g}")
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
