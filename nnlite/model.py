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

import threading
import time
from dataclasses import dataclass

import numpy as np

from nnlite.jit import thread_limit
from nnlite.kernels.numpy_ops import Workspace
from nnlite.layers import Conv, RoiGroupConv
from nnlite.network import Network
from nnlite.weights import WeightsError

#: The config key holding the number of keypoints K (heatmap channels), named as the
#: weights file format names it.
KEYPOINTS_KEY = "num_landmarks"
#: Values of the config's ``heatmap.confidence`` (see `ModelOutput.peaks`).
CONFIDENCES = ("sigmoid_peak", "softmax_peak")


@dataclass(frozen=True)
class ModelOutput:
    """Results for a batch of N inputs with K keypoints (all float32).

    Attributes
    ----------
    coarse, refined : float32 ndarray (N, K, 2)
        x, y in input pixels (stage 1, stage 1 + 2).
    heatmaps : float32 ndarray (N, h, h, K), NHWC
        Stage-1 logits.
    refine_heatmaps : float32 ndarray (N, r, r, K), NHWC
        Stage-2 logits.
    peaks : float32 ndarray (N, K)
        Confidence of each stage-1 heatmap in [0, 1], as the config's
        ``heatmap.confidence`` says: "softmax_peak", the largest probability of the
        softmax the coarse points are decoded from, or "sigmoid_peak" (the default, for
        files without the key), the sigmoid of the largest logit, which means something
        only for a model trained with a sigmoid heatmap loss.
    """
    coarse: np.ndarray
    refined: np.ndarray
    heatmaps: np.ndarray
    refine_heatmaps: np.ndarray
    peaks: np.ndarray


class TwoStageModel(Network):
    """Build with `TwoStageModel.load(path)`; call `forward(x)` on (N, S, S, 3) float32 NHWC.

    Parameters
    ----------
    config : dict
        The weights file's config (the architecture).
    arrays : dict of str to ndarray
        The weights, PyTorch layout, keyed ``'layer.param'``.
    source : str or os.PathLike
        Where the weights came from, quoted in error messages.
    backend : str or None
        "numba", "numpy" or None (see `nnlite.backend.resolve_backend`).
    threads : int or None
        Most threads Numba's kernels use per call (None: `nnlite.jit.default_threads()`,
        one core fewer than available, 1 to 4).
    """

    kind = "model"

    def __init__(self, config: dict, arrays: dict, source="<arrays>", backend: str | None = None,
                 threads: int | None = None):
        kind = config.get("type", "two_stage_heatmap") if isinstance(config, dict) else None
        if kind != "two_stage_heatmap":
            raise WeightsError(f"{source}: holds a {kind!r} model, not a two-stage heatmap model")
        src = self._start(config, arrays, source, backend, threads)
        ops = self.ops
        try:
            hm, rf = config["heatmap"], config["refine"]
            k = config[KEYPOINTS_KEY]
            self.input_size = int(config["input"]["size"])
            self._backbone(src, config)
            self.heatmap = Conv(src, "heatmap", hm["in"], k, 1, ops=ops)
            self.refine_convs = []
            cin = rf["in"]
            for i, cout in enumerate(rf["convs"]):
                self.refine_convs.append(Conv(src, f"refine_convs.{i}", cin, cout, 3,
                                              act="relu6", ops=ops))
                cin = cout
            self.refine = Conv(src, "refine", k * cin, k, rf["kernel"], groups=k, ops=ops)
            self.refine_roi = RoiGroupConv(self.refine, rf["roi_size"], ops)
            self.stride1, self.stride2 = hm["stride"], rf["stride"]
            self.branch_block = rf["branch_block"]
            self._chain({self.branch_block})
            self.roi_size, self.roi_spacing = rf["roi_size"], float(rf["roi_spacing"])
            # Inverse temperatures of the two soft-argmax decoders (learnt in training).
            self.beta1, self.beta2 = float(hm.get("beta", 1.0)), float(rf.get("beta", 1.0))
            self.confidence = hm.get("confidence", "sigmoid_peak")
            if self.confidence not in CONFIDENCES:
                raise WeightsError(f"{source}: unknown heatmap confidence {self.confidence!r} "
                                   f"(one of {', '.join(CONFIDENCES)})")
            self.num_keypoints = k
        except (KeyError, TypeError) as e:
            raise WeightsError(f"{source}: config is missing or has a malformed field ({e})") from None
        src.check_all_used()
        self._tls = threading.local()  # per-thread activation buffers (and NumPy workspace)

    def profile(self, x: np.ndarray) -> list[tuple[str, float]]:
        """One forward pass timed step by step.

        Parameters
        ----------
        x : float32 ndarray (N, S, S, 3), NHWC
            Inputs, as for `forward`.

        Returns
        -------
        times : list of (str, float)
            ``(step name, seconds)`` in run order; names match `layer_macs`. Use medians
            over many calls (the timer itself costs well under a microsecond per step).
            The blocks run one by one here, not in the chains `forward` runs them in,
            so each has its own time.
        """
        x = np.asarray(x)
        times = []
        last = [time.perf_counter()]

        def tick(name):
            now = time.perf_counter()
            times.append((name, now - last[0]))
            last[0] = now
        with thread_limit(self.threads):
            self._forward(x, tick)
        return times

    def _buffers(self, x_shape):
        """Intermediate activations, reused by every call with the same input shape.

        Per calling thread: ``(buffers by step name, workspace)``, the blocks' outputs
        under ``"blocks"`` by block index, the workspace being the NumPy ops' scratch
        (`nnlite.kernels.numpy_ops.Workspace`, None with Numba, whose layers keep their own). Outputs returned to the caller are never among
        them. A new input shape replaces both, so memory stays bounded.
        """
        cached = getattr(self._tls, "buffers", None)
        if cached is not None and cached[0] == x_shape:
            return cached[1], cached[2]
        shape = self.stem.out_shape(x_shape)
        bufs = {"stem": np.empty(shape, np.float32)}
        bufs["blocks"] = {}
        for i, block in enumerate(self.blocks):
            shape = block.out_shape(shape)
            bufs["blocks"][i] = np.empty(shape, np.float32)
            if i == self.branch_block:
                branch_shape = shape
        shape = branch_shape
        for i, conv in enumerate(self.refine_convs):
            shape = conv.out_shape(shape)
            bufs[f"refine_convs.{i}"] = np.empty(shape, np.float32)
        work = Workspace() if self.ops.name == "numpy" else None
        self._tls.buffers = (x_shape, bufs, work)
        return bufs, work

    def _forward(self, x: np.ndarray, tick=None) -> ModelOutput:
        bufs, work = self._buffers(x.shape)
        y = self.stem(np.ascontiguousarray(x), bufs["stem"], work)
        tick and tick("stem")
        ends = self._run_blocks(y, bufs["blocks"], work, tick)
        heat1 = self.heatmap(ends[len(self.blocks) - 1], None, work)
        tick and tick("heatmap")
        feat = ends[self.branch_block]
        for i, conv in enumerate(self.refine_convs):
            feat = conv(feat, bufs[f"refine_convs.{i}"], work)
            tick and tick(f"refine_convs.{i}")
        return self._heads(heat1, feat, work, tick)

    def _heads(self, heat1, feat, work, tick=None) -> ModelOutput:
        """Both decoders and stage 2 from the stage-1 logits and the stage-2 features.

        heat1 (N, h, w, K) stage-1 logits, feat (N, H, W, C) the refine branch's features
        -> `ModelOutput`. `forward` and `warmup_heads` share it, so the heads a warm-up
        compiles are the ones a forward pass calls.
        """
        # The softmax peak, the score of models trained without the heatmap loss, comes out
        # of the same pass as the coarse points (its "confidence" step then takes no time).
        peaks = None
        if self.confidence == "softmax_peak":
            peaks = np.empty(heat1.shape[:1] + heat1.shape[3:], np.float32)
        coarse = (self.ops.soft_argmax(heat1, self.beta1, peak=peaks) + 0.5) * self.stride1 - 0.5
        tick and tick("soft_argmax")
        heat2 = self.refine_roi(feat, self._rois(coarse), work)
        tick and tick("roi_align+refine")
        r = self.roi_size
        offset = (self.ops.soft_argmax(heat2, self.beta2) - (r - 1) / 2.0) * (self.roi_spacing * self.stride2)
        tick and tick("soft_argmax (refine)")
        if peaks is None:
            peaks = self.ops.heatmap_peak(heat1)
        tick and tick("confidence")
        return ModelOutput(coarse.astype(np.float32), (coarse + offset).astype(np.float32),
                           heat1, heat2, peaks)

    def warmup_heads(self) -> float:
        """Compile (or load from Numba's cache) only the kernels of the heads; -> seconds taken.

        Soft-argmax, the heatmap confidence and the fused RoI align + group conv, called on zero
        inputs (batch 1) exactly as `forward` calls them, so they get the same one
        specialisation each; the stem, blocks and plain convs are not run (their kernels
        are the ones a detector built on the same blocks shares). A helper process on
        another core runs this on an empty cache while the caller compiles those shared
        kernels (see ``tracker.precompile``).
        """
        start = time.perf_counter()
        bufs, work = self._buffers((1, self.input_size, self.input_size, 3))
        last = bufs["blocks"][len(self.blocks) - 1]
        heat1 = np.zeros(self.heatmap.out_shape(last.shape), np.float32)
        feat = bufs[f"refine_convs.{len(self.refine_convs) - 1}"] if self.refine_convs \
            else bufs["blocks"][self.branch_block]
        feat.fill(0.0)
        with thread_limit(self.threads):
            self._heads(heat1, feat, work)
        return time.perf_counter() - start

    def _rois(self, coarse):
        """RoI boxes of the r x r windows, samples roi_spacing apart, around each point.

        coarse (N, K, 2) input pixels -> float32 (N*K, 5) ``[n, x0, y0, x1, y1]`` in
        feature pixels of the stage-2 map, image-major (box ``n*K + k``).
        """
        n, k = coarse.shape[:2]
        r, sp = self.roi_size, self.roi_spacing
        centres = (coarse + 0.5) / self.stride2 - 0.5  # feature pixel centres
        # "aligned" RoI align samples bin centres at x0 - 0.5 + (j + 0.5) * bin.
        x0 = centres - r * sp / 2.0 + 0.5
        rois = np.empty((n * k, 5), np.float32)
        rois[:, 0] = np.repeat(np.arange(n), k)
        rois[:, 1:3] = x0.reshape(-1, 2)
        rois[:, 3:5] = (x0 + r * sp).reshape(-1, 2)
        return rois

    def _gather_windows(self, feat, coarse):
        """The unfused stage-2 input: RoI-aligned windows in group-conv channel order.

        feat (N, H, W, C), coarse (N, K, 2) input pixels -> (N, r, r, K*C), the
        channel order a group conv with groups=K expects (keypoint-major);
        ``self.refine`` of it equals ``self.refine_roi(feat, self._rois(coarse))``.
        """
        n, k = coarse.shape[:2]
        c = feat.shape[3]
        r = self.roi_size
        win = self.ops.roi_align(feat, self._rois(coarse), r, 1.0, 1, True)  # (N*K, r, r, C)
        win = win.reshape(n, k, r, r, c).transpose(0, 2, 3, 1, 4)
        return np.ascontiguousarray(win.reshape(n, r, r, k * c))


def layer_macs(config: dict) -> list[tuple[str, int]]:
    """Multiply-adds per step of one forward pass (batch 1), in run order.

    Parameters
    ----------
    config : dict
        A two-stage model's weights config.

    Returns
    -------
    steps : list of (str, int)
        ``(step name, multiply-adds)``; names match `TwoStageModel.profile`, steps
        without convolutions count 0.
    """
    s = config["input"]["size"]
    st = config["stem"]
    h = (s + 2 * (st["kernel"] // 2) - st["kernel"]) // st["stride"] + 1
    steps = [("stem", h * h * st["out"] * st["in"] * st["kernel"] ** 2)]
    branch_hw = None
    for i, b in enumerate(config["blocks"]):
        hidden = b["in"] * b["expand"]
        macs = h * h * b["in"] * hidden if b["expand"] != 1 else 0
        h = (h - 1) // b["stride"] + 1
        macs += h * h * hidden * 9 + h * h * hidden * b["out"]
        steps.append((f"blocks.{i}", macs))
        if i == config["refine"]["branch_block"]:
            branch_hw = h
    k = config[KEYPOINTS_KEY]
    steps.append(("heatmap", h * h * config["heatmap"]["in"] * k))
    rf = config["refine"]
    cin = rf["in"]
    for i, cout in enumerate(rf["convs"]):
        steps.append((f"refine_convs.{i}", branch_hw * branch_hw * cin * cout * 9))
        cin = cout
    r = rf["roi_size"]
    steps += [("soft_argmax", 0), ("roi_align+refine", r * r * k * cin * rf["kernel"] ** 2),
              ("soft_argmax (refine)", 0), ("confidence", 0)]
    return [(name, int(m)) for name, m in steps]


def count_macs(config: dict) -> int:
    """Multiply-adds of one forward pass (convolutions only, batch 1).

    Parameters
    ----------
    config : dict
        A two-stage model's weights config.

    Returns
    -------
    macs : int
        The sum of `layer_macs`.
    """
    return sum(m for _, m in layer_macs(config))
