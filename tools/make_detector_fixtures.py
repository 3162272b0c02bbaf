"""Write the detector parity fixtures: a small random-weight detector exported from PyTorch,
with stored inputs and PyTorch outputs, so tests check nnlite without importing torch.

    python -m tools.make_detector_fixtures     # -> tests/fixtures/detector_small.{h5,npz}
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tools.detector_config import small_config
from tools.detector_model import FaceDetectorNet
from tools.export import folded_arrays, write_weights

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def random_model(cfg, seed=0) -> FaceDetectorNet:
    """Random weights *and* batch-norm statistics (so folding is tested), and heads that
    give a spread of scores and boxes (the training init gives every anchor ~0.01)."""
    torch.manual_seed(seed)
    model = FaceDetectorNet(cfg)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        for head in model.heads:
            head.cls.weight.normal_(0, 0.5)
            head.cls.bias.normal_(0, 1.0)
            head.reg.weight.normal_(0, 0.3)
            head.reg.bias.normal_(0, 0.3)
    return model.eval()


def main():
    cfg = small_config()
    model = random_model(cfg)
    size = cfg["input"]["size"]
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2, size, size, 3)).astype(np.float32)
    with torch.no_grad():
        logits, deltas = model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
        boxes = model.decode(deltas)
    OUT.mkdir(parents=True, exist_ok=True)
    write_weights(OUT / "detector_small.h5", cfg, folded_arrays(model), {"purpose": "parity test"})
    np.savez_compressed(OUT / "detector_small.npz", x=x, logits=logits.numpy(),
                        deltas=deltas.numpy(), boxes=boxes.numpy())
    sizes = {p.name: p.stat().st_size for p in OUT.glob("detector_small.*")}
    print(f"wrote {sizes}")


if __name__ == "__main__":
    main()
