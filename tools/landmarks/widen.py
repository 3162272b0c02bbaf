"""Widen a trained landmark checkpoint to a larger width multiplier (Net2WiderNet).

    python -m tools.landmarks.widen tools/checkpoints/demo.pt runs/full_init.pt --factor 3

Every channel of every feature map is copied `factor` times (new channel j is
old channel j % C). A layer that reads a widened map splits each old input
weight among its copies with random shares that sum to one, so the wide
network computes exactly what the narrow one did, while the copies receive
different gradients and can drift apart in training. The demo table
(alpha 1/3) times 3 is the full table (alpha 1), so this turns the trained demo
model into a trained starting point for the full one, at a fraction of the cost
of training the full model from scratch on a CPU.

Check: the script runs both models on random inputs and refuses to write a
checkpoint whose outputs differ.
"""
from __future__ import annotations

import argparse
import copy
import sys

import torch

from tools.landmarks.config import make_config
from tools.landmarks.model import LandmarkNet


def _shares(c_old: int, factor: int, spread: float, gen: torch.Generator) -> torch.Tensor:
    """(factor * c_old,) weights; the `factor` copies of each old channel sum to 1."""
    s = 1.0 + spread * (2 * torch.rand(factor, c_old, generator=gen) - 1)
    s = s / s.sum(0, keepdim=True)
    return s.reshape(-1)


def widen_config(cfg: dict, factor: int) -> dict:
    """The config of `cfg`'s architecture with every width times `factor`."""
    alpha = cfg["alpha"] * factor
    new = make_config(alpha=alpha, input_size=cfg["input"]["size"],
                      num_landmarks=cfg["num_landmarks"], roi_size=cfg["refine"]["roi_size"])
    widths = [(b["in"], b["out"]) for b in cfg["blocks"]]
    if [(i * factor, o * factor) for i, o in widths] != [(b["in"], b["out"]) for b in new["blocks"]]:
        raise ValueError(f"alpha {cfg['alpha']:g} times {factor} is not an exact multiple "
                         "of the block table")
    for key in ("loss", "training", "crop", "input", "flip"):
        if key in cfg:
            new[key] = copy.deepcopy(cfg[key])
    return new


def widen_state(narrow: LandmarkNet, wide: LandmarkNet, factor: int, spread: float = 0.2,
                seed: int = 0) -> dict:
    """State dict for `wide` that computes what `narrow` does."""
    gen = torch.Generator().manual_seed(seed)
    src = narrow.state_dict()
    out = {}

    def idx(c_new):
        return torch.arange(c_new) % (c_new // factor)

    for name, w_new in wide.state_dict().items():
        w = src[name]
        if w.ndim == 0 or w.shape == w_new.shape:  # num_batches_tracked; unwidened layers
            out[name] = w.clone()
            continue
        # Batch-norm vectors and conv weights (cout, cin / groups, k, k): copy the outputs...
        v = w[idx(w_new.shape[0])] if w_new.shape[0] != w.shape[0] else w
        # ...and split each input weight among its copies (not for depthwise convs, whose
        # one input per group is the output copy's own channel).
        if w.ndim == 4 and w_new.shape[1] != w.shape[1]:
            v = v[:, idx(w_new.shape[1])] * _shares(w.shape[1], factor, spread, gen)[None, :, None, None]
        out[name] = v.contiguous()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="narrow checkpoint (.pt with config and model)")
    ap.add_argument("dst", help="where to write the widened checkpoint")
    ap.add_argument("--factor", type=int, default=3)
    ap.add_argument("--spread", type=float, default=0.2,
                    help="how unequal the copies' shares of an input weight are (0 = equal)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    ckpt = torch.load(args.src, map_location="cpu", weights_only=False)
    narrow = LandmarkNet(ckpt["config"])
    narrow.load_state_dict(ckpt["model"])
    cfg = widen_config(ckpt["config"], args.factor)
    cfg["name"] = "full" if abs(cfg["alpha"] - 1) < 1e-6 else f"alpha{cfg['alpha']:g}"
    wide = LandmarkNet(cfg)
    wide.load_state_dict(widen_state(narrow, wide, args.factor, args.spread, args.seed))

    narrow.eval()
    wide.eval()
    x = torch.randn(4, 3, cfg["input"]["size"], cfg["input"]["size"],
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = narrow(x), wide(x)
    err = max(float((a[k] - b[k]).abs().max()) for k in ("coarse", "refined"))
    print(f"{sum(p.numel() for p in narrow.parameters())} -> "
          f"{sum(p.numel() for p in wide.parameters())} params; "
          f"largest point difference {err:.2e} px")
    if err > 1e-3:
        print("error: the widened model does not reproduce the narrow one", file=sys.stderr)
        return 1
    torch.save({"config": cfg, "model": wide.state_dict(),
                "widened_from": {"file": args.src, "factor": args.factor,
                                 "spread": args.spread, "seed": args.seed}}, args.dst)
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
