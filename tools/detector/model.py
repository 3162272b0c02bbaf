"""PyTorch definition of the single-shot face detector (training side).

Built from a config dict (tools/detector/config.py); parameter names are the
names the HDF5 export keeps (stem, blocks.I.{expand,dw,project}, heads.J.cls,
heads.J.reg), and the layers are tools.landmarks.model's ConvBN / InvertedResidual, so
tools.landmarks.export.folded_arrays folds the batch-norms. Layout NCHW here; nnlite runs
NHWC. Anchors, box encoding and decoding are nnlite.detector's (one definition
for training and run time).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from nnlite.detector import make_anchors
from tools.landmarks.model import backbone

PRIOR = 0.01  # initial face probability of every anchor (RetinaNet-style bias init)


class DetectorHead(nn.Module):
    """1x1 convs: one logit per anchor (cls) and dx, dy, dw, dh per anchor (reg)."""

    def __init__(self, cin: int, anchors: int):
        super().__init__()
        self.cls = nn.Conv2d(cin, anchors, 1)
        self.reg = nn.Conv2d(cin, 4 * anchors, 1)
        nn.init.normal_(self.cls.weight, 0, 0.01)
        nn.init.constant_(self.cls.bias, -float(np.log((1 - PRIOR) / PRIOR)))
        nn.init.normal_(self.reg.weight, 0, 0.01)
        nn.init.zeros_(self.reg.bias)

    def forward(self, x):
        """x (N, C, H, W) -> logits (N, H*W*A), deltas (N, H*W*A, 4), NHWC anchor order."""
        n = x.shape[0]
        logits = self.cls(x).permute(0, 2, 3, 1).reshape(n, -1)
        deltas = self.reg(x).permute(0, 2, 3, 1).reshape(n, -1, 4)
        return logits, deltas


class FaceDetectorNet(nn.Module):
    """Stem + inverted residual blocks + one anchor head per configured block."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.stem, self.blocks = backbone(cfg)
        self.heads = nn.ModuleList(DetectorHead(h["in"], len(h["anchors"])) for h in cfg["heads"])
        self.register_buffer("anchors", torch.from_numpy(make_anchors(cfg)), persistent=False)

    def forward(self, x):
        """x (N, 3, S, S) normalised -> (logits (N, A), deltas (N, A, 4))."""
        taps = {h["block"]: None for h in self.cfg["heads"]}
        y = self.stem(x)
        for i, blk in enumerate(self.blocks):
            y = blk(y)
            if i in taps:
                taps[i] = y
        outs = [head(taps[h["block"]]) for head, h in zip(self.heads, self.cfg["heads"])]
        return torch.cat([o[0] for o in outs], 1), torch.cat([o[1] for o in outs], 1)

    def decode(self, deltas):
        """deltas (N, A, 4) -> boxes (N, A, 4) x0, y0, x1, y1 (as nnlite.detector.decode_boxes)."""
        box = self.cfg["box"]
        v0, v1 = box["variance"]
        m = box["max_log_scale"]
        a = self.anchors
        cx = a[:, 0] + deltas[..., 0] * v0 * a[:, 2]
        cy = a[:, 1] + deltas[..., 1] * v0 * a[:, 3]
        hw = 0.5 * a[:, 2] * torch.exp(torch.clamp(deltas[..., 2] * v1, -m, m))
        hh = 0.5 * a[:, 3] * torch.exp(torch.clamp(deltas[..., 3] * v1, -m, m))
        return torch.stack([cx - hw, cy - hh, cx + hw, cy + hh], -1)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
