"""The two-stage heatmap keypoint model, built from a weights file's config alone.

Stage 1: stem conv + inverted residual blocks -> 1x1 conv -> one heatmap per
keypoint -> soft-argmax -> coarse points. Stage 2: shared convs on an
intermediate feature map -> RoI align of a small window around each coarse
point -> one group conv (groups = keypoints) -> refinement heatmaps ->
soft-argmax -> offsets. Nothing here knows what the keypoints are.

Coordinates are 0-based pixel centres of the model input. A map of stride s
has its pixel k at input coordinate (k + 0.5) * s - 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnlite.backend import get_backend
from nnlite.layers import Conv, InvertedResidual
from nnlite.weights import ArraySource, WeightsError, load


@dataclass(frozen=True)
class ModelOutput:
    """Results for a batch of N inputs with K keypoints (all float32).

    coarse, refined : (N, K, 2) x, y in input pixels (stage 1, stage 1 + 2).
    heatmaps : (N, h, h, K) stage-1 logits, NHWC. refine_heatmaps : (N, r, r, K).
    peaks : (N, K) max sigmoid of each stage-1 heatmap, a confidence in [0, 1].
    """
    coarse: np.ndarray
    refined: np.ndarray
    heatmaps: np.ndarray
    refine_heatmaps: np.ndarray
    peaks: np.ndarray


class TwoStageModel:
    """Build with `TwoStageModel.load(path)`; call `forward(x)` on (N, S, S, 3) float32 NHWC."""

    def __init__(self, config: dict, arrays: dict, source="<arrays>", backend: str | None = None):
        self.config = config
        self.ops = ops = get_backend(backend)
        src = ArraySource(arrays, source)
        try:
            st, hm, rf = config["stem"], config["heatmap"], config["refine"]
            k = config["num_landmarks"]
            self.input_size = int(config["input"]["size"])
            self.stem = Conv(src, "stem", st["in"], st["out"], st["kernel"], st["stride"],
                             act="relu6", ops=ops)
            self.blocks = [InvertedResidual(src, f"blocks.{i}", spec, ops)
                           for i, spec in enumerate(config["blocks"])]
            self.heatmap = Conv(src, "heatmap", hm["in"], k, 1, ops=ops)
            self.refine_convs = []
            cin = rf["in"]
            for i, cout in enumerate(rf["convs"]):
                self.refine_convs.append(Conv(src, f"refine_convs.{i}", cin, cout, 3,
                                              act="relu6", ops=ops))
                cin = cout
            self.refine = Conv(src, "refine", k * cin, k, rf["kernel"], groups=k, ops=ops)
            self.stride1, self.stride2 = hm["stride"], rf["stride"]
            self.branch_block = rf["branch_block"]
            self.roi_size, self.roi_spacing = rf["roi_size"], float(rf["roi_spacing"])
            self.num_keypoints = k
        except (KeyError, TypeError) as e:
            raise WeightsError(f"{source}: config is missing or has a malformed field ({e})") from None
        src.check_all_used()

    @classmethod
    def load(cls, path, backend: str | None = None) -> "TwoStageModel":
        config, arrays, _ = load(path)
        return cls(config, arrays, path, backend)

    def forward(self, x: np.ndarray) -> ModelOutput:
        """x float32 (N, S, S, 3) NHWC, normalised as config["input"] says."""
        x = np.asarray(x)
        s = self.input_size
        if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (s, s, 3):
            raise ValueError(f"model input must be float32 (N, {s}, {s}, 3), "
                             f"got {x.dtype} {x.shape}")
        y = self.stem(np.ascontiguousarray(x))
        branch = None
        for i, block in enumerate(self.blocks):
            y = block(y)
            if i == self.branch_block:
                branch = y
        heat1 = self.heatmap(y)
        coarse = (self.ops.soft_argmax(heat1) + 0.5) * self.stride1 - 0.5
        feat = branch
        for conv in self.refine_convs:
            feat = conv(feat)
        heat2 = self.refine(self._gather_windows(feat, coarse))
        r = self.roi_size
        offset = (self.ops.soft_argmax(heat2) - (r - 1) / 2.0) * (self.roi_spacing * self.stride2)
        return ModelOutput(coarse.astype(np.float32), (coarse + offset).astype(np.float32),
                           heat1, heat2, self.ops.heatmap_peak(heat1))

    def _gather_windows(self, feat, coarse):
        """RoI-align an r x r window, samples roi_spacing apart, around each point.

        feat (N, H, W, C), coarse (N, K, 2) input pixels -> (N, r, r, K*C), the
        channel order a group conv with groups=K expects (keypoint-major).
        """
        n, k = coarse.shape[:2]
        c = feat.shape[3]
        r, sp = self.roi_size, self.roi_spacing
        centres = (coarse + 0.5) / self.stride2 - 0.5  # feature pixel centres
        # "aligned" RoI align samples bin centres at x0 - 0.5 + (j + 0.5) * bin.
        x0 = centres - r * sp / 2.0 + 0.5
        rois = np.empty((n * k, 5), np.float32)
        rois[:, 0] = np.repeat(np.arange(n), k)
        rois[:, 1:3] = x0.reshape(-1, 2)
        rois[:, 3:5] = (x0 + r * sp).reshape(-1, 2)
        win = self.ops.roi_align(feat, rois, r, 1.0, 1, True)  # (N*K, r, r, C)
        win = win.reshape(n, k, r, r, c).transpose(0, 2, 3, 1, 4)
        return np.ascontiguousarray(win.reshape(n, r, r, k * c))


def count_macs(config: dict) -> int:
    """Multiply-adds of one forward pass (convolutions only, batch 1)."""
    s = config["input"]["size"]
    st = config["stem"]
    h = (s + 2 * (st["kernel"] // 2) - st["kernel"]) // st["stride"] + 1
    macs = h * h * st["out"] * st["in"] * st["kernel"] ** 2
    branch_hw = None
    for i, b in enumerate(config["blocks"]):
        hidden = b["in"] * b["expand"]
        if b["expand"] != 1:
            macs += h * h * b["in"] * hidden
        h = (h - 1) // b["stride"] + 1
        macs += h * h * hidden * 9 + h * h * hidden * b["out"]
        if i == config["refine"]["branch_block"]:
            branch_hw = h
    k = config["num_landmarks"]
    macs += h * h * config["heatmap"]["in"] * k
    rf = config["refine"]
    cin = rf["in"]
    for cout in rf["convs"]:
        macs += branch_hw * branch_hw * cin * cout * 9
        cin = cout
    r = rf["roi_size"]
    macs += r * r * k * cin * rf["kernel"] ** 2
    return int(macs)
