"""Overfit check: can the landmark model fit a few faces it trains on, without augmentation?

    python -m tools.landmarks.overfit_check --out runs/overfit                  # 64 faces, demo recipe
    python -m tools.landmarks.overfit_check --out runs/overfit_l1 -- --coord-loss l1 --lambda-coord 10

Trains `tools.landmarks.train` from scratch on the first N faces of the fixed training
shuffle, on their evaluation crops (no augmentation), and scores the same faces
each `--eval-every` epochs. A model and recipe that cannot bring these faces
close to 1% inter-ocular NME are limited by something other than data (the
coordinate chain, the decoding, the loss): find that before regularising.
Arguments after `--` go to tools.landmarks.train unchanged. Prints the fit curve and a
verdict against `--target`; exit status 0 when the target is met, 1 when not.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from tools.common import split_passthrough
from tools.landmarks import train


def fit_curve(log_path: Path) -> list[dict]:
    """Rows of a tools.landmarks.train log.csv as dicts of floats (epoch as int)."""
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k == "epoch" else float(v)) for k, v in r.items() if v != ""}
            for r in rows]


def main(argv=None):
    argv, extra = split_passthrough(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="run folder (log.csv, last.pt, best.pt)")
    ap.add_argument("--config", default="demo")
    ap.add_argument("--faces", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=400)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--target", type=float, default=1.5,
                    help="inter-ocular NME (%%) on the trained faces that counts as fitting")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if (out / "last.pt").exists():
        raise SystemExit(f"{out}: holds a run already; use another --out")
    train.main(["--config", args.config, "--out", str(out), "--subset", str(args.faces),
                "--augment", "none", "--fit-faces", str(args.faces), "--epochs", str(args.epochs),
                "--batch", str(args.batch), "--eval-every", str(args.eval_every),
                "--threads", str(args.threads), *extra])
    rows = fit_curve(out / "log.csv")
    print(f"\nfit on the {args.faces} training faces (no augmentation) vs the validation split, NME io %")
    print(f"{'epoch':>6s} {'fit':>8s} {'fit coarse':>11s} {'val':>8s}")
    for r in rows:
        print(f"{r['epoch']:6d} {r['fit_nme_io'] * 100:8.2f} {r['fit_coarse_nme_io'] * 100:11.2f} "
              f"{r['val_nme_io'] * 100:8.2f}")
    final = rows[-1]["fit_nme_io"] * 100
    ok = final <= args.target
    print(f"overfit check: {final:.2f}% on the trained faces, target {args.target:.2f}%: "
          f"{'fits' if ok else 'DOES NOT FIT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
