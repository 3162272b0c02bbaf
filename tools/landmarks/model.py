"""PyTorch definition of the two-stage landmark model (training side).

Built from a config dict (tools/landmarks/config.py); parameter names are the
names the HDF5 export keeps. Layout NCHW here; nnlite runs NHWC.

Coordinates: 0-based pixel centres of the input crop. A heatmap of size h over
an input of size S has stride s = S / h and its pixel k sits at input
coordinate (k + 0.5) * s - 0.5.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBN(nn.Module):
    """Conv (no bias) + BatchNorm + optional ReLU6; folded to conv+bias at export."""

    def __init__(self, cin, cout, k, stride=1, groups=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu6(x) if self.act else x


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, residual):
        super().__init__()
        hidden = cin * expand
        self.residual = residual
        self.expand = ConvBN(cin, hidden, 1) if expand != 1 else None
        self.dw = ConvBN(hidden, hidden, 3, stride, groups=hidden)
        self.project = ConvBN(hidden, cout, 1, act=False)

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


def backbone(cfg: dict) -> tuple[ConvBN, nn.ModuleList]:
    """The config's stem and inverted residual blocks, built in that order (so a seed gives the
    same initial weights); the caller keeps them as `stem` and `blocks`, the names in the weights."""
    st = cfg["stem"]
    stem = ConvBN(st["in"], st["out"], st["kernel"], st["stride"])
    blocks = nn.ModuleList(InvertedResidual(b["in"], b["out"], b["stride"], b["expand"], b["residual"])
                           for b in cfg["blocks"])
    return stem, blocks


def soft_argmax(h: torch.Tensor, beta=1.0) -> torch.Tensor:
    """Heatmap logits (N, C, H, W) -> expected (x, y) under a spatial softmax of beta * h, (N, C, 2).

    Units are heatmap pixels (pixel centres 0..W-1); nnlite.kernels.soft_argmax
    computes the same. beta (inverse temperature) is a float or a 0-d tensor.
    """
    n, c, hh, ww = h.shape
    p = torch.softmax(beta * h.reshape(n, c, hh * ww), dim=-1).reshape(n, c, hh, ww)
    xs = torch.arange(ww, dtype=h.dtype, device=h.device)
    ys = torch.arange(hh, dtype=h.dtype, device=h.device)
    x = (p.sum(2) * xs).sum(-1)
    y = (p.sum(3) * ys).sum(-1)
    return torch.stack([x, y], dim=-1)


def roi_align(feat: torch.Tensor, centres: torch.Tensor, size: int, spacing: float) -> torch.Tensor:
    """Bilinear windows around points, torchvision "aligned" RoI-align semantics.

    feat (N, C, H, W); centres (N, L, 2) in feature pixel centres. Returns
    (N, L, C, size, size): sample (i, j) of landmark l is taken at
    centre + ((j, i) - (size - 1) / 2) * spacing, one sample per bin. As in
    torchvision's CPU kernel, a sample further than one pixel outside the map
    is 0 and one within that pixel is clamped to the border.
    """
    n, c, h, w = feat.shape
    lm = centres.shape[1]
    k = (torch.arange(size, dtype=feat.dtype, device=feat.device) - (size - 1) / 2.0) * spacing
    xs = centres[..., 0:1] + k  # (N, L, size)
    ys = centres[..., 1:2] + k
    gx = xs[:, :, None, :].expand(n, lm, size, size)
    gy = ys[:, :, :, None].expand(n, lm, size, size)
    valid = ((gx >= -1) & (gx <= w) & (gy >= -1) & (gy <= h)).to(feat.dtype)
    gx = gx.clamp(0, w - 1)
    gy = gy.clamp(0, h - 1)
    # align_corners=True maps -1..1 to pixel centres 0..W-1.
    grid = torch.stack([gx * (2.0 / max(w - 1, 1)) - 1, gy * (2.0 / max(h - 1, 1)) - 1], dim=-1)
    out = F.grid_sample(feat, grid.reshape(n, lm * size, size, 2), mode="bilinear",
                        padding_mode="border", align_corners=True)
    out = out.reshape(n, c, lm, size, size) * valid[:, None]
    return out.permute(0, 2, 1, 3, 4)


class LandmarkNet(nn.Module):
    """Two-stage heatmap regression network; see ../shared/DESIGN.md."""

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.stem, self.blocks = backbone(cfg)
        hm = cfg["heatmap"]
        lm = cfg["num_landmarks"]
        self.heatmap = nn.Conv2d(hm["in"], lm, 1)
        rf = cfg["refine"]
        convs, cin = [], rf["in"]
        for cout in rf["convs"]:
            convs.append(ConvBN(cin, cout, 3))
            cin = cout
        self.refine_convs = nn.Sequential(*convs)
        self.refine = nn.Conv2d(lm * cin, lm, rf["kernel"], 1, rf["kernel"] // 2, groups=lm)
        # A zero-initialised refinement head predicts "no change" at the start.
        nn.init.zeros_(self.refine.weight)
        nn.init.zeros_(self.refine.bias)
        # The decoders' inverse temperatures (stage 1, stage 2), learnt only when the
        # recipe asks: the heatmap loss fixes the logits' scale for a per-pixel sigmoid,
        # and the soft-argmax may want them sharper or softer than that.
        betas = [float(cfg["heatmap"].get("beta", 1.0)), float(rf.get("beta", 1.0))]
        self.log_beta = nn.Parameter(torch.log(torch.tensor(betas)),
                                     requires_grad=bool(cfg.get("training", {}).get("learn_beta")))

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """As nn.Module's; checkpoints from before the learnt temperature keep the config's."""
        if "log_beta" not in state_dict:
            state_dict = {**state_dict, "log_beta": self.log_beta.detach().clone()}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def betas(self) -> tuple[float, float]:
        """The decoders' inverse temperatures (stage 1, stage 2), as the export stores them."""
        b = self.log_beta.detach().exp()
        return float(b[0]), float(b[1])

    def forward(self, x):
        """x (N, 3, S, S) normalised -> dict of heatmaps and points in input pixels."""
        branch_block = self.cfg["refine"]["branch_block"]
        y = self.stem(x)
        branch = None
        for i, blk in enumerate(self.blocks):
            y = blk(y)
            if i == branch_block:
                branch = y
        # The backbone may run in bfloat16 (train --bf16); the heads, whose logits the decoders
        # read to a fraction of a pixel, and the RoI sampling stay float32 (8 mantissa bits
        # would put 0.4% noise on the logits).
        with torch.autocast(x.device.type, enabled=False):
            return self._heads(y.float(), branch.float())

    def _heads(self, y, branch):
        """Stage-1 features y and the branch point's features (float32) -> forward's dict."""
        rf = self.cfg["refine"]
        s1 = self.cfg["heatmap"]["stride"]
        s2 = rf["stride"]
        heat1 = self.heatmap(y)
        beta = self.log_beta.exp()
        coarse = (soft_argmax(heat1, beta[0]) + 0.5) * s1 - 0.5  # input pixels
        feat = self.refine_convs(branch)
        # RoI placement does not backpropagate into the coarse points.
        centres = (coarse.detach() + 0.5) / s2 - 0.5
        crops = roi_align(feat, centres, rf["roi_size"], rf["roi_spacing"])
        n, lm, c, r, _ = crops.shape
        heat2 = self.refine(crops.reshape(n, lm * c, r, r))
        offset = (soft_argmax(heat2, beta[1]) - (r - 1) / 2.0) * rf["roi_spacing"] * s2
        refined = coarse + offset
        return {"heatmaps": heat1, "refine_heatmaps": heat2, "coarse": coarse,
                "refined": refined}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
