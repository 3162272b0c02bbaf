"""Write the model-parity fixtures: a small random-weight model exported from PyTorch,
with stored inputs and PyTorch outputs, so tests check nnlite without importing torch.

    python -m tools.make_model_fixtures     # -> tests/fixtures/model_small.{h5,npz}

and the shipped models' parity fixtures (demo_parity.npz, full_parity.npz): their
checkpoints' outputs on two validation crops, for weights/demo.h5 and weights/full.h5.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tools.export import folded_arrays, write_weights
from tools.landmark_config import make_config
from tools.model import LandmarkNet

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures"


def random_model(cfg, seed=0) -> LandmarkNet:
    """A model with random weights *and* random batch-norm statistics (so folding is tested)."""
    torch.manual_seed(seed)
    model = LandmarkNet(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        # The refinement head starts at zero in training; make it non-trivial here.
        model.refine.weight.normal_(0, 0.3)
        model.refine.bias.normal_(0, 0.1)
        model.heatmap.weight.mul_(4.0)
    return model.eval()


def main():
    cfg = make_config(alpha=1.0 / 6.0, input_size=64, name="parity-small")
    model = random_model(cfg)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (3, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    OUT.mkdir(parents=True, exist_ok=True)
    write_weights(OUT / "model_small.h5", cfg, folded_arrays(model), {"purpose": "parity test"})
    np.savez_compressed(
        OUT / "model_small.npz", x=x,
        coarse=out["coarse"].numpy(), refined=out["refined"].numpy(),
        heatmaps=out["heatmaps"].permute(0, 2, 3, 1).numpy(),
        refine_heatmaps=out["refine_heatmaps"].permute(0, 2, 3, 1).numpy())
    print(f"wrote {OUT / 'model_small.h5'} and model_small.npz")


def shipped(checkpoint=ROOT / "tools" / "checkpoints" / "demo.pt", name="demo"):
    """Stored PyTorch outputs of a shipped checkpoint on two real face crops."""
    from tools import data as D
    from tools.train import to_tensor

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = LandmarkNet(state["config"]).eval()
    model.load_state_dict(state["model"])
    cfg = state["config"]
    pairs = D.find_pairs(ROOT.parent / "shared" / "data" / "300w")
    val = D.split_pairs(pairs, 0.1, seed=0)[1][:2]
    imgs = np.stack([D.eval_crop(s, cfg["input"]["size"], cfg["crop"]["box_scale"])[0]
                     for s in D.load_samples(val)])
    x = to_tensor(imgs, cfg, "cpu").contiguous()
    with torch.no_grad():
        out = model(x)
    np.savez_compressed(OUT / f"{name}_parity.npz", x=x.permute(0, 2, 3, 1).numpy(),
                        coarse=out["coarse"].numpy(), refined=out["refined"].numpy())
    print(f"wrote {OUT / f'{name}_parity.npz'}")


if __name__ == "__main__":
    main()
    for name in ("demo", "full"):
        shipped(ROOT / "tools" / "checkpoints" / f"{name}.pt", name)
