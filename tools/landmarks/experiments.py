"""Score training runs side by side for tools/EXPERIMENTS.md: fit and validation, coarse and refined.

    python -m tools.landmarks.experiments runs/ft_base runs/ft_l1 ... [--json runs/exp.json]

For each run folder, its last.pt (the end of its schedule, not the epoch its
validation score picked) is exported to RUN/last.h5 and evaluated through nnlite
on the whole training split and on the validation split (crops from the
ground-truth box, as tools.landmarks.evaluate does). Prints one Markdown row per run:
variant (what its config and recipe differ in), parameters (batch-norm folded),
multiply-adds, epochs, training / validation NME (inter-pupil and inter-ocular,
refined and coarse), their ratio and the global signed error in x.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nnlite.model import count_macs
from tools.landmarks import data as D
from tools.landmarks.config import INPUT_SIZE
from tools.landmarks import evaluate as E
from tools.landmarks.export import export_last, model_config
from tools.landmarks.train import DEFAULT_DATA

HEADER = ("| variant | params | MACs | epochs | train ip | train io | val ip | val io | "
          "val io coarse | train/val io | val bias x |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def describe(cfg: dict) -> str:
    """What a run's loss and recipe say, in one short string."""
    loss, recipe = cfg["loss"], cfg.get("recipe", {})
    parts = [f"{loss.get('coord', 'l2')} x{loss['lambda_l2']:g}"]
    if loss.get("coord_norm", "none") != "none":
        parts[0] += f" per {loss['coord_norm']}"  # e.g. "l1 x10 per ip"
    if cfg["input"]["size"] != INPUT_SIZE:
        parts.append(f"input {cfg['input']['size']}")
    if loss["sigma1"] != 1.0:
        parts.append(f"sigma {loss['sigma1']:g}")
    parts.append(f"augment {recipe.get('augment', 'full')}")
    if recipe.get("flip") is not None:
        parts.append(f"flip {recipe['flip']:g}")
    shift = recipe.get("flip_shift")
    if isinstance(shift, list):
        parts.append("flip shift per landmark")
    elif shift:
        parts.append(f"flip shift {shift:g}")
    rf = cfg["refine"]
    if rf.get("roi_spacing", 1.0) != 1.0 or rf["roi_size"] != 8:
        parts.append(f"RoI {rf['roi_size']} x{rf['roi_spacing']:g}")
    training = cfg.get("training", {})
    off = [k[4:] for k, v in training.items() if k.startswith("use_") and not v]
    if off:
        parts.append("no " + " ".join(off))  # e.g. "no heatmap": a loss term left out
    if training.get("learn_beta"):
        parts.append("learnt beta")
    if recipe.get("teacher"):
        parts.append(f"teacher {Path(recipe['teacher']).stem} x{recipe['distill']:g}")
        if recipe.get("distill_heatmap"):
            parts.append(f"teacher's heatmaps x{recipe['distill_heatmap']:g}")
    return ", ".join(parts)


def score_run(run: Path, splits: dict) -> dict:
    """Export run/last.pt and evaluate it through nnlite on each split -> figures."""
    weights, model, state, arrays = export_last(run, run=run.name)
    out = {"run": run.name, "variant": describe(model.cfg), "epochs": int(state["epoch"]) + 1,
           "params": int(sum(a.size for a in arrays.values())), "macs": count_macs(model_config(model))}
    for name, pairs in splits.items():
        refined, coarse, gt = E.run(weights, pairs, progress=False)
        out[name] = {"refined": E.summary(refined, gt), "coarse": E.summary(coarse, gt),
                     "bias": {k: v for k, v in E.bias(refined, gt).items() if k.startswith("mean")}}
    return out


def markdown_row(r: dict) -> str:
    t, v = r["train"]["refined"], r["val"]["refined"]
    return (f"| {r['run']}: {r['variant']} | {r['params']:,} | {r['macs'] / 1e6:.1f}M | {r['epochs']} | "
            f"{t['nme_ip']:.2f} | {t['nme_io']:.2f} | {v['nme_ip']:.2f} | {v['nme_io']:.2f} | "
            f"{r['val']['coarse']['nme_io']:.2f} | {t['nme_io'] / v['nme_io']:.2f} | "
            f"{r['val']['bias']['mean_x']:+.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders of tools.landmarks.train (each with last.pt)")
    ap.add_argument("--data", nargs="+", default=[str(DEFAULT_DATA)])
    ap.add_argument("--json", help="also write every figure here")
    args = ap.parse_args(argv)
    pairs = [p for root in args.data for p in D.find_pairs(root)]
    train, val = D.split_pairs(pairs, 0.1, seed=0)
    rows = []
    print(HEADER)
    for run in map(Path, args.runs):
        if not (run / "last.pt").exists():
            print(f"{run}: no last.pt, left out", file=sys.stderr)
            continue
        rows.append(score_run(run, {"train": train, "val": val}))
        print(markdown_row(rows[-1]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0 if rows else 2


if __name__ == "__main__":
    sys.exit(main())
