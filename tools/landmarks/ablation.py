"""Ablation like the paper's Table 1: what each part of the method is worth, on our validation split.

    python -m tools.landmarks.ablation --out runs/ablation --epochs 12 --threads 1
    python -m tools.landmarks.ablation --out runs/ablation --evaluate-only     # tables from finished runs
    python -m tools.landmarks.ablation --out runs/abl --epochs 30 -- --bf16 --coord-loss l1 ...
        (flags after -- go to every run's tools.landmarks.train: a recipe, --bf16, --eval-every)

Trains four models of one config with one schedule (tools.landmarks.train, one process per
run; an interrupted run resumes from its last.pt, a finished one is skipped):

- full: both stages, heatmap loss + L2 coordinate loss;
- no heatmap loss: only the L2 loss on the soft-argmax coordinates;
- no L2 loss: only the distance-weighted heatmap loss;
- no second stage: stage 1 alone (its coarse points are the output).

Each run's final epoch (last.pt, the end of the same cosine schedule, so no run
is picked by its validation score) is exported to HDF5 and evaluated through
nnlite on the fixed-seed validation split, crops from the ground-truth box
(tools.landmarks.evaluate). Prints a Markdown table and writes it to OUT/ablation.md
(and the figures to OUT/ablation.json).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from tools.common import split_passthrough
from tools.landmarks import data as D
from tools.landmarks import evaluate as E
from tools.landmarks.export import export_last
from tools.landmarks.train import DEFAULT_DATA

VARIANTS = {  # run folder -> (table label, tools.landmarks.train flags)
    "full": ("full model", []),
    "no_heatmap_loss": ("without heatmap loss", ["--no-heatmap-loss"]),
    "no_l2_loss": ("without L2 loss", ["--no-l2-loss"]),
    "no_stage2": ("without second stage", ["--no-stage2"]),
}


def add_run_arguments(ap: argparse.ArgumentParser, out: str, epochs: int, what: str) -> None:
    """The options of a tool that trains one run per `what` with one schedule and tabulates
    them (`train_variant` reads them): --out, --config, --epochs, --threads, --data,
    --evaluate-only."""
    ap.add_argument("--out", default=out, help=f"one run folder per {what} under it")
    ap.add_argument("--config", default="demo", help="model config for every run (demo | full | JSON)")
    ap.add_argument("--epochs", type=int, default=epochs, help="epochs per run (one cosine schedule)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)])
    ap.add_argument("--evaluate-only", action="store_true", help="skip training; tables from last.pt")


def train_variant(run: Path, flags: list[str], args) -> None:
    """Train (or resume, or skip when finished) one variant in its own process."""
    last = run / "last.pt"
    if last.exists():
        state = torch.load(last, map_location="cpu", weights_only=False)
        if state["epochs"] != args.epochs:
            raise SystemExit(f"{run}: a run of {state['epochs']} epochs is there, not {args.epochs}; "
                             "use another --out, or the same --epochs to resume it")
        if state["epoch"] + 1 >= state["epochs"]:
            print(f"{run.name}: finished ({state['epochs']} epochs), not retrained", flush=True)
            return
        cmd = ["--out", str(run), "--resume"]
    else:
        cmd = ["--config", args.config, "--out", str(run), "--epochs", str(args.epochs), *flags,
               *args.train_flags]
    cmd += ["--threads", str(args.threads), "--data", *args.data]
    print(f"{run.name}: python -m tools.landmarks.train {' '.join(cmd)}", flush=True)
    subprocess.run([sys.executable, "-m", "tools.landmarks.train", *cmd], check=True)


def run_ready(run: Path, flags: list[str], args, label: str) -> bool:
    """Train `run` (`train_variant`) unless --evaluate-only; True when it has a last.pt to
    score, else says it is left out (on stderr)."""
    if not args.evaluate_only:
        train_variant(run, flags, args)
    if (run / "last.pt").exists():
        return True
    print(f"{label}: no {run / 'last.pt'}, left out", file=sys.stderr)
    return False


def evaluate_variant(run: Path, uses_stage2: bool, pairs) -> dict:
    """Export run/last.pt to run/last.h5 and evaluate it on `pairs` through nnlite."""
    weights, _, state, _ = export_last(run, ablation=run.name)
    refined, coarse, gt = E.run(weights, pairs, progress=False)
    figures = E.summary(refined if uses_stage2 else coarse, gt)
    figures["epochs"] = int(state["epoch"]) + 1
    return figures


def markdown(rows: dict) -> str:
    lines = ["| variant | epochs | NME inter-pupil % | NME inter-ocular % | FR@10% (io) | AUC@8% (io) |",
             "|---|---|---|---|---|---|"]
    for label, s in rows.items():
        lines.append(f"| {label} | {s['epochs']} | {s['nme_ip']:.2f} | {s['nme_io']:.2f} | "
                     f"{s['fr10_io']:.1f} | {s['auc8_io']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    argv, train_flags = split_passthrough(argv)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(ap, out="runs/ablation", epochs=12, what="variant")
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = ap.parse_args(argv)
    args.train_flags = train_flags

    out = Path(args.out)
    pairs = [p for root in args.data for p in D.find_pairs(root)]
    _, val = D.split_pairs(pairs, 0.1, seed=0)
    rows = {}
    for name in args.variants:
        label, flags = VARIANTS[name]
        run = out / name
        if not run_ready(run, flags, args, name):
            continue
        rows[label] = evaluate_variant(run, "--no-stage2" not in flags, val)
        print(f"{label}: {rows[label]['nme_io']:.2f}% inter-ocular after "
              f"{rows[label]['epochs']} epochs", flush=True)
    if not rows:
        print("error: no finished run to evaluate", file=sys.stderr)
        return 2
    table = markdown(rows)
    print(f"\nValidation split ({len(val)} faces), through nnlite, crops from the ground-truth box:\n")
    print(table)
    (out / "ablation.md").write_text(table + "\n")
    (out / "ablation.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
