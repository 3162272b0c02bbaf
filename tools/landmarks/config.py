"""Architecture configs for the two-stage landmark model (plain dicts, no torch).

The same dict is stored as JSON in the exported weights file; nnlite builds its
graph from it alone, and tools/landmarks/model.py builds the PyTorch model from it.
Every block states stride, expansion and residual explicitly.
"""
from __future__ import annotations

import copy

# The alpha=1 ("full") table: (channels, blocks, first stride) per stage at
# expansion 6. alpha=1/3 gives the paper's demo size (16/24/32 channels,
# ~159K params, ~173M multiply-adds on 128x128).
_FULL_STAGES = ((48, 6, 1), (72, 5, 2), (96, 5, 2))
_FULL_STEM = 48
_EXPANSION = 6


def _scale(c: float, alpha: float) -> int:
    return max(4, int(round(c * alpha)))


INPUT_SIZE = 128  # crop side in pixels unless a config says otherwise (train --input-size)


def make_config(alpha: float = 1.0 / 3.0, input_size: int = INPUT_SIZE, num_landmarks: int = 68,
                roi_size: int = 8, branch_stage: int = 1, name: str = "landmarks",
                stages: tuple = _FULL_STAGES) -> dict:
    """Build a landmark-model config.

    Stage 1: stem conv 3x3 s2, then the inverted residual stages; a 1x1 conv
    gives one heatmap per landmark at input_size / 8. Stage 2 branches from
    the output of stage `branch_stage` (stride 4 for the default table).
    `stages`: (channels at alpha 1, blocks, first stride) per stage.
    """
    stem = _scale(_FULL_STEM, alpha)
    blocks = []
    cin = stem
    stride_total = 2
    branch_block = None
    for s, (c, n, first_stride) in enumerate(stages):
        cout = _scale(c, alpha)
        for i in range(n):
            stride = first_stride if i == 0 else 1
            stride_total *= stride
            blocks.append({"in": cin, "out": cout, "stride": stride, "expand": _EXPANSION,
                           "residual": stride == 1 and cin == cout})
            cin = cout
        if s == branch_stage:
            branch_block = len(blocks) - 1
            branch_channels = cout
            branch_stride = stride_total
    heatmap_size = input_size // stride_total
    return {
        "type": "two_stage_heatmap",
        "name": name,
        "alpha": alpha,
        "num_landmarks": num_landmarks,
        "landmarks": "300w-68",
        "input": {"size": input_size, "channels": "bgr", "mean": 127.5, "std": 127.5},
        "crop": {"box_scale": 1.4},
        "stem": {"in": 3, "out": stem, "kernel": 3, "stride": 2},
        "blocks": blocks,
        "heatmap": {"in": cin, "size": heatmap_size, "stride": stride_total},
        "refine": {
            "branch_block": branch_block,
            "in": branch_channels,
            "stride": branch_stride,
            "convs": [branch_channels, branch_channels],
            "roi_size": roi_size,
            "roi_spacing": 1.0,  # RoI samples are this many feature pixels apart
            "kernel": 3,
        },
        "loss": {"sigma1": 1.0, "sigma2": 1.0, "lambda_l2": 1.0, "weight_floor": 0.1},
    }


def demo_config() -> dict:
    return make_config(alpha=1.0 / 3.0, name="demo")


def lite_config() -> dict:
    """The demo model with 2 of stage 0's 6 blocks at 64x64: 108.7M multiply-adds instead of
    173.2M, the same validation error on the same 120-epoch schedule (EXPERIMENTS section 15)."""
    stages = ((_FULL_STAGES[0][0], 2, _FULL_STAGES[0][2]),) + _FULL_STAGES[1:]
    return make_config(alpha=1.0 / 3.0, name="lite", stages=stages)


def full_config() -> dict:
    return make_config(alpha=1.0, name="full")


def with_input_size(cfg: dict, size: int) -> dict:
    """The same network on size x size crops: every layer is convolutional and the decoders
    work in map pixels, so a checkpoint's weights carry over (a new dict)."""
    stride = cfg["heatmap"]["stride"]
    if size <= 0 or size % stride:
        raise ValueError(f"input size must be a positive multiple of {stride}, got {size}")
    out = copy.deepcopy(cfg)
    out["input"]["size"] = int(size)
    out["heatmap"]["size"] = int(size) // stride
    return out


def with_overrides(cfg: dict, **kw) -> dict:
    out = copy.deepcopy(cfg)
    out.update(kw)
    return out
