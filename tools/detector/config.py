"""Architecture configs for the single-shot face detector (plain dicts, no torch).

The same dict is stored as JSON in the exported weights file; nnlite builds its
graph, anchors, box decoding and NMS from it alone (nnlite/detector.py), and
tools/detector/model.py builds the PyTorch model from it.

Input: the whole frame letterboxed into a square of `input.size` pixels (scaled
so its longer side fills the square, placed at the top-left, the rest filled
with `letterbox.pad_value`). Backbone: stem conv 3x3 s2 + inverted residual
blocks (every block states stride, expansion and residual). Heads: on the
output of block `head.block`, a 1x1 conv gives one face logit per anchor and
another the box regression (dx, dy, dlog w, dlog h) per anchor. Anchors are
squares of `head.anchors` input pixels centred on every feature pixel k at
input coordinate (k + 0.5) * stride - 0.5; their order is head, row, column,
anchor size (the NHWC order of the head outputs).

Boxes are 68-landmark boxes (the bounding box of the landmarks, jaw to brows,
no forehead; shared/data/detect/*.txt), 0-based pixel coordinates.
"""
from __future__ import annotations

import copy

BOX_CONVENTION = "68-landmark box: x0 y0 x1 y1 of the 68 landmarks (jaw to brows), 0-based pixels"


def _block(cin, cout, stride, expand):
    return {"in": cin, "out": cout, "stride": stride, "expand": expand,
            "residual": stride == 1 and cin == cout}


def make_config(input_size: int = 160, widths=(16, 24, 32, 48), expand: int = 4,
                name: str = "blaze160") -> dict:
    """Build a detector config.

    widths: channels at stride 2, 4, 8 and 16. Blocks: 1 at stride 2 (expansion 1),
    2 at stride 4, 3 at stride 8 (head 0 reads the last), 4 at stride 16 (head 1);
    the first block of each stride level downsamples. The stride-16 blocks expand by
    `expand - 1` to keep the parameter count under ~100K.
    """
    c2, c4, c8, c16 = widths
    blocks = [_block(c2, c2, 1, 1),
              _block(c2, c4, 2, expand), _block(c4, c4, 1, expand),
              _block(c4, c8, 2, expand), _block(c8, c8, 1, expand), _block(c8, c8, 1, expand)]
    head8 = len(blocks) - 1
    blocks += [_block(c8, c16, 2, expand)] + [_block(c16, c16, 1, expand - 1) for _ in range(3)]
    head16 = len(blocks) - 1
    # Anchor sides 1.5x apart from 12 px up: a face of any size between them overlaps
    # its nearest anchor with IoU >= 0.44 when centred. Scaled with the input size.
    k = input_size / 160.0
    return {
        "type": "single_shot_detector",
        "name": name,
        "input": {"size": input_size, "channels": "bgr", "mean": 127.5, "std": 127.5},
        "letterbox": {"align": "top_left", "pad_value": 127.5,
                      "rule": "scale = size / max(H, W); resize to (round(W * scale), "
                              "round(H * scale)); pixel centres map as u = (x + 0.5) * sx - 0.5 "
                              "with sx = resized W / W (sy likewise)"},
        "stem": {"in": 3, "out": c2, "kernel": 3, "stride": 2},
        "blocks": blocks,
        "heads": [
            {"block": head8, "in": c8, "stride": 8,
             "anchors": [round(a * k, 2) for a in (12.0, 18.0, 27.0)]},
            {"block": head16, "in": c16, "stride": 16,
             "anchors": [round(a * k, 2) for a in (40.0, 60.0, 90.0, 135.0)]},
        ],
        "box": {"convention": BOX_CONVENTION, "variance": [0.1, 0.2], "max_log_scale": 6.0,
                "encoding": "dx = (cx - acx) / (a * v0), dy likewise, dw = log(w / a) / v1, "
                            "dh = log(h / a) / v1; a = anchor side; v1 * dw clipped to "
                            "+-max_log_scale before exp"},
        "score_threshold": 0.5,
        "nms": {"iou": 0.3, "mode": "weighted", "pre_nms_top_k": 200, "max_detections": 50},
        "matching": {"positive_iou": 0.5, "negative_iou": 0.3, "neg_pos_ratio": 3,
                     "min_negatives": 16},
    }


def default_config() -> dict:
    return make_config()


def small_config() -> dict:
    """A tiny config for parity fixtures and quick tests (64 px input, narrow)."""
    cfg = make_config(input_size=64, widths=(8, 8, 12, 16), expand=3, name="parity-small")
    cfg["score_threshold"] = 0.3
    return cfg


CONFIGS = {"blaze160": default_config, "small": small_config}


def with_overrides(cfg: dict, **kw) -> dict:
    out = copy.deepcopy(cfg)
    out.update(kw)
    return out
