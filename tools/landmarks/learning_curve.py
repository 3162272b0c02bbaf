"""Learning curve: the same recipe trained on a quarter, a half and all of the training faces.

    python -m tools.landmarks.learning_curve --out runs/lc --epochs 120 -- --bf16 --no-heatmap-loss ...
    python -m tools.landmarks.learning_curve --out runs/lc --evaluate-only
        (flags after -- go to every run's tools.landmarks.train: a recipe, --bf16, --eval-every)

Is the model limited by the number of faces? One run per size (`--faces`, default a
quarter, a half and all of the training split), each on the first N faces of the fixed
training shuffle (`train --subset N`, `tools.landmarks.data.training_order`), each for the
same number of epochs, so every face is seen as often and the smaller runs take fewer
steps; give enough epochs for each to reach its plateau, or the curve measures the
schedule, not the data. Runs are trained, resumed and skipped as `tools.landmarks.ablation`
does (OUT/nN per size).

Each run's last epoch is scored through nnlite on the validation split and on (up to 133
of) its own training faces (the fit). Per size: validation NME, the fit, and the error per
part; then the gain per doubling of the faces, which extrapolated says what more faces of
the same kind would be worth. Written to OUT/learning_curve.md and .json.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from tools.common import split_passthrough
from tools.landmarks import data as D
from tools.landmarks import evaluate as E
from tools.landmarks.ablation import add_run_arguments, run_ready
from tools.landmarks.experiments import score_run

FIT_FACES = 133  # as many of a run's own faces as the validation split has


def sizes_for(n_train: int, asked: list[int] | None) -> list[int]:
    """The subset sizes to train: `asked` (each 1..n_train), else a quarter, a half and all."""
    if not asked:
        return [max(1, n_train // 4), max(1, n_train // 2), n_train]
    bad = [n for n in asked if not 0 < n <= n_train]
    if bad:
        raise SystemExit(f"--faces {bad}: each must be 1..{n_train} (the training split)")
    return sorted(set(asked))


def score(run: Path, own: list, val: list) -> dict:
    """Export run/last.pt and score its refined points on its own faces and the validation
    faces (`tools.landmarks.experiments.score_run`) -> {"epochs", "own", "val"}."""
    r = score_run(run, {"own": own, "val": val})
    return {"epochs": r["epochs"], "own": r["own"]["refined"], "val": r["val"]["refined"]}


def per_doubling(rows: dict) -> float | None:
    """The relative change of validation NME (ip) per doubling of the faces: the slope of a
    least-squares line through (log2 faces, log NME); None with fewer than two sizes.
    -0.05 means 5% less error each time the faces double."""
    if len(rows) < 2:
        return None
    xs = [math.log2(n) for n in rows]
    ys = [math.log(r["val"]["nme_ip"]) for r in rows.values()]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(slope) - 1.0


def markdown(rows: dict) -> str:
    parts = list(E.PARTS)
    lines = ["| training faces | epochs | own faces io | val ip | val io | "
             + " | ".join(f"val {p} io" for p in parts) + " |",
             "|---" * (5 + len(parts)) + "|"]
    for n, r in rows.items():
        v = r["val"]
        lines.append(f"| {n:,} | {r['epochs']} | {r['own']['nme_io']:.2f} | {v['nme_ip']:.2f} | "
                     f"{v['nme_io']:.2f} | " + " | ".join(f"{v['nme_' + p]:.2f}" for p in parts) + " |")
    return "\n".join(lines)


def main(argv=None):
    argv, train_flags = split_passthrough(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(ap, out="runs/learning_curve", epochs=120, what="size")
    ap.add_argument("--faces", type=int, nargs="+", help="subset sizes (default: 1/4, 1/2, all)")
    args = ap.parse_args(argv)
    args.train_flags = train_flags

    out = Path(args.out)
    try:
        pairs = [p for root in args.data for p in D.find_pairs(root)]
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    train, val = D.split_pairs(pairs, 0.1, seed=0)
    order = D.training_order(len(train))
    rows = {}
    for n in sizes_for(len(train), args.faces):
        run = out / f"n{n}"
        if not run_ready(run, ["--subset", str(n)] if n < len(train) else [], args, f"{n} faces"):
            continue
        own = [train[i] for i in order[:min(n, FIT_FACES)]]
        rows[n] = score(run, own, val)
        print(f"{n} faces: {rows[n]['val']['nme_ip']:.2f}% inter-pupil on validation after "
              f"{rows[n]['epochs']} epochs", flush=True)
    if not rows:
        print("error: no finished run to evaluate", file=sys.stderr)
        return 2
    table = markdown(rows)
    slope = per_doubling(rows)
    print(f"\nValidation split ({len(val)} faces), through nnlite, crops from the ground-truth box:\n")
    print(table)
    if slope is not None:
        print(f"\nvalidation NME (ip) per doubling of the training faces: {slope * 100:+.1f}%")
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning_curve.md").write_text(table + "\n")
    (out / "learning_curve.json").write_text(json.dumps(
        {"rows": {str(n): r for n, r in rows.items()}, "per_doubling": slope}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
