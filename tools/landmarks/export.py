"""Export a training checkpoint to the nnlite HDF5 weights file (batch-norm folded).

    python -m tools.landmarks.export runs/demo/best.pt weights/demo.h5

The file layout is described in nnlite/weights.py (FORMAT, VERSION).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

from nnlite.weights import FORMAT, VERSION
from tools.landmarks.data import FLIP_68
from tools.landmarks.model import ConvBN, LandmarkNet


def fold_bn(m: ConvBN) -> tuple[np.ndarray, np.ndarray]:
    """ConvBN -> (weight (cout, cin/g, k, k), bias (cout,)) with BN folded in, float32."""
    bn = m.bn
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    w = m.conv.weight.detach() * scale[:, None, None, None]
    b = bn.bias.detach() - bn.running_mean * scale
    return w.numpy().astype(np.float32), b.numpy().astype(np.float32)


def folded_arrays(model: LandmarkNet) -> dict[str, np.ndarray]:
    """Every layer's folded weight and bias, keyed '<module path>.weight' / '.bias'."""
    arrays = {}
    for name, mod in model.named_modules():
        if isinstance(mod, ConvBN):
            w, b = fold_bn(mod)
        elif isinstance(mod, torch.nn.Conv2d) and not name.endswith(".conv"):
            w = mod.weight.detach().numpy().astype(np.float32)
            b = mod.bias.detach().numpy().astype(np.float32)
        else:
            continue
        arrays[f"{name}.weight"] = w
        arrays[f"{name}.bias"] = b
    return arrays


def write_weights(path, config: dict, arrays: dict[str, np.ndarray], meta: dict | None = None):
    """Write the HDF5 file atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        # libver="latest" keeps per-dataset headers small; shuffle+gzip trims ~10% more.
        with h5py.File(tmp, "w", libver="latest") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["config"] = json.dumps(config)
            f.attrs["meta"] = json.dumps(meta or {})
            for key, arr in arrays.items():
                layer, param = key.rsplit(".", 1)
                f.require_group(layer).create_dataset(param, data=arr, compression="gzip",
                                                      shuffle=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path) -> tuple[LandmarkNet, dict]:
    """A training checkpoint -> (its model in eval mode, the whole checkpoint dict)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = LandmarkNet(state["config"])
    model.load_state_dict(state["model"])
    return model.eval(), state


def model_from_weights(path) -> LandmarkNet:
    """Rebuild the PyTorch model from an nnlite HDF5 file (BN set to identity).

    Lets benchmarks run PyTorch and ONNX Runtime on exactly the shipped weights.
    """
    from nnlite.weights import load

    config, arrays, _ = load(path)
    model = LandmarkNet(config).eval()
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, ConvBN):
                mod.conv.weight.copy_(torch.from_numpy(arrays[f"{name}.weight"]))
                bn = mod.bn
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(arrays[f"{name}.bias"]))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)  # sqrt(var + eps) == 1 exactly
            elif isinstance(mod, torch.nn.Conv2d) and not name.endswith(".conv"):
                mod.weight.copy_(torch.from_numpy(arrays[f"{name}.weight"]))
                mod.bias.copy_(torch.from_numpy(arrays[f"{name}.bias"]))
    return model


def model_config(model: LandmarkNet) -> dict:
    """The config a weights file stores: the checkpoint's, tagged with its type (older
    checkpoints lack the tag), with the decoders' inverse temperatures unless both are 1 and
    the softmax peak as the landmark score (it means the same whether or not the model was
    trained with the heatmap loss; the sigmoid peak does not: EXPERIMENTS.md section 13)."""
    config = copy.deepcopy({"type": "two_stage_heatmap", **model.cfg})
    config["heatmap"]["confidence"] = "softmax_peak"
    b1, b2 = model.betas()
    if (b1, b2) != (1.0, 1.0):
        config["heatmap"]["beta"], config["refine"]["beta"] = b1, b2
    return config


def export_last(folder: Path, **meta) -> tuple[Path, LandmarkNet, dict, dict]:
    """Export folder/last.pt (a tools.landmarks.train run folder) to folder/last.h5.

    Returns (weights path, model, checkpoint state, BN-folded arrays); `meta` goes into
    the file's metadata beside the epoch.
    """
    model, state = load_checkpoint(Path(folder) / "last.pt")
    arrays = folded_arrays(model)
    weights = Path(folder) / "last.h5"
    write_weights(weights, model_config(model), arrays,
                  {"epoch": state["epoch"], **meta})
    return weights, model, state, arrays


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    ap.add_argument("--min-tracking-score", type=float,
                    help="tracking-score threshold chosen by tools.landmarks.tune_tracking for these weights")
    args = ap.parse_args(argv)
    model, state = load_checkpoint(args.checkpoint)
    arrays = folded_arrays(model)
    meta = {"epoch": state.get("epoch"), "metrics": state.get("metrics", {}),
            "params": int(sum(a.size for a in arrays.values()))}
    config = model_config(model)
    if config.get("landmarks") == "300w-68":
        config["flip"] = FLIP_68.tolist()  # mirrored landmark order, for flip averaging
    if args.min_tracking_score is not None:
        config["tracking"] = {"min_score": args.min_tracking_score}
    write_weights(args.output, config, arrays, meta)
    size = Path(args.output).stat().st_size
    print(f"{args.output}: {len(arrays)} arrays, {meta['params']} params, {size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
