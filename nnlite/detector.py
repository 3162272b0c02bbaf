"""A single-shot (anchor-based) object detector, built from a weights file's config alone.

Graph: stem conv + inverted residual blocks; on the output of chosen blocks,
one 1x1 conv gives a logit per anchor ("heads.J.cls") and another the box
regression ("heads.J.reg", 4 numbers per anchor). Post-processing (box decoding,
score threshold, non-maximum suppression) is plain NumPy. Nothing here knows
what the objects are; the config says (see tools/detector/config.py).

Coordinates are 0-based pixel coordinates of the model input. A feature map of
stride s has its pixel k at input coordinate (k + 0.5) * s - 0.5, where its
anchors are centred. Anchor order: head, row, column, anchor size.

Box encoding, anchor (cx, cy) with side a, variance (v0, v1):
    cx = acx + dx * v0 * a,  cy = acy + dy * v0 * a,
    w = a * exp(clip(dw * v1, -m, m)),  h = a * exp(clip(dh * v1, -m, m)),
with m = config["box"]["max_log_scale"]; boxes are returned as (x0, y0, x1, y1).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from nnlite.kernels.numpy_ops import Workspace
from nnlite.layers import Conv
from nnlite.network import Network
from nnlite.weights import WeightsError

MODEL_TYPE = "single_shot_detector"


@dataclass(frozen=True)
class DetectorOutput:
    """Raw results for a batch of N inputs over A anchors (all float32).

    Attributes
    ----------
    logits : float32 ndarray (N, A)
        Score logits (sigmoid gives the score in [0, 1]).
    deltas : float32 ndarray (N, A, 4)
        Box regression (dx, dy, dw, dh) as encoded above.
    boxes : float32 ndarray (N, A, 4)
        Decoded boxes x0, y0, x1, y1 in input pixels.
    """
    logits: np.ndarray
    deltas: np.ndarray
    boxes: np.ndarray


def run_size(config: dict) -> int:
    """The input side a detector runs at: ``input.run_size`` when the config has one, else
    the training side ``input.size``.

    The graph is fully convolutional and its anchors have fixed sides in input pixels,
    so a detector trained at one side runs at a larger one with more anchor positions:
    a frame letterboxed into the larger square shows small objects at more pixels.

    Parameters
    ----------
    config : dict
        A detector weights file's config.

    Returns
    -------
    size : int
        The side of the square input, in pixels.
    """
    inp = config["input"]
    return int(inp.get("run_size", inp["size"]))


def make_anchors(config: dict, size: int | None = None) -> np.ndarray:
    """Anchors of a detector config -> float32 (A, 4) cx, cy, w, h in input pixels.

    Parameters
    ----------
    config : dict
        Detector config with ``input.size`` and ``heads`` (each ``stride`` and
        ``anchors``, the anchor sides in input pixels).
    size : int or None
        Input side to lay the anchors out for; None: the training side ``input.size``.

    Returns
    -------
    anchors : float32 ndarray (A, 4)
        Ordered by head, row, column, anchor side (the NHWC order of the heads).
    """
    size = int(config["input"]["size"]) if size is None else int(size)
    out = []
    for head in config["heads"]:
        stride = int(head["stride"])
        n = -(-size // stride)  # feature map side (ceil: every conv pads "same")
        c = (np.arange(n, dtype=np.float64) + 0.5) * stride - 0.5
        sides = np.asarray(head["anchors"], np.float64)
        cy, cx, side = np.meshgrid(c, c, sides, indexing="ij")
        out.append(np.stack([cx, cy, side, side], axis=-1).reshape(-1, 4))
    return np.concatenate(out).astype(np.float32)


def decode_boxes(deltas: np.ndarray, anchors: np.ndarray, variance, max_log_scale: float) -> np.ndarray:
    """Box regression -> boxes (see the module docstring for the encoding).

    Parameters
    ----------
    deltas : float32 ndarray (..., A, 4)
        dx, dy, dw, dh per anchor.
    anchors : float32 ndarray (A, 4)
        cx, cy, w, h per anchor.
    variance : (float, float)
        Scale of the centre and of the log-size deltas.
    max_log_scale : float
        Bound on ``|dw * v1|`` before exp, so a wild output cannot overflow.

    Returns
    -------
    boxes : float32 ndarray (..., A, 4)
        x0, y0, x1, y1.
    """
    v0, v1 = float(variance[0]), float(variance[1])
    d = np.asarray(deltas, np.float32)
    a = np.asarray(anchors, np.float32)
    cx = a[:, 0] + d[..., 0] * np.float32(v0) * a[:, 2]
    cy = a[:, 1] + d[..., 1] * np.float32(v0) * a[:, 3]
    m = np.float32(max_log_scale)
    hw = np.float32(0.5) * a[:, 2] * np.exp(np.clip(d[..., 2] * np.float32(v1), -m, m))
    hh = np.float32(0.5) * a[:, 3] * np.exp(np.clip(d[..., 3] * np.float32(v1), -m, m))
    return np.stack([cx - hw, cy - hh, cx + hw, cy + hh], axis=-1).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a (N, 4) and b (M, 4), x0, y0, x1, y1 -> (N, M).

    Parameters
    ----------
    a : ndarray (N, 4)
        Boxes.
    b : ndarray (M, 4)
        Boxes.

    Returns
    -------
    iou : float64 ndarray (N, M)
        0 where a box is empty or the union is.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, mode: str = "hard",
        max_out: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Greedy non-maximum suppression, best score first.

    Parameters
    ----------
    boxes : ndarray (K, 4)
        x0, y0, x1, y1.
    scores : ndarray (K,)
        Higher is better.
    iou : float
        A box overlapping a kept box by more than this joins its cluster.
    mode : str
        "hard": each cluster gives its best box. "weighted": each cluster gives
        the score-weighted mean of its boxes (steadier from frame to frame).
        The cluster's score is its best score in both modes.
    max_out : int or None
        Keep at most this many clusters.

    Returns
    -------
    boxes : float32 ndarray (M, 4)
        One box per cluster, best score first.
    scores : float32 ndarray (M,)
        Their scores.
    """
    if mode not in ("hard", "weighted"):
        raise ValueError(f"nms mode must be 'hard' or 'weighted', got {mode!r}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    overlap = box_iou(boxes, boxes) > iou
    alive = np.ones(len(boxes), bool)
    out_boxes, out_scores = [], []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        cluster = alive & overlap[i]
        cluster[i] = True
        alive &= ~cluster
        if mode == "weighted":
            w = scores[cluster]
            out_boxes.append((boxes[cluster] * w[:, None]).sum(0) / max(w.sum(), 1e-12))
        else:
            out_boxes.append(boxes[i])
        out_scores.append(scores[i])
        if max_out is not None and len(out_scores) >= max_out:
            break
    return (np.array(out_boxes, np.float32).reshape(-1, 4),
            np.array(out_scores, np.float32).reshape(-1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, float32, without overflow warnings.

    Parameters
    ----------
    x : ndarray
        Logits.

    Returns
    -------
    p : float32 ndarray
        ``1 / (1 + exp(-x))``, same shape.
    """
    x = np.clip(np.asarray(x, np.float32), -80.0, 80.0)
    return (np.float32(1.0) / (np.float32(1.0) + np.exp(-x))).astype(np.float32)


class SingleShotDetector(Network):
    """Build with `SingleShotDetector.load(path)`; `forward(x)` / `detect(x)` on (N, S, S, 3) NHWC.

    Parameters
    ----------
    config : dict
        The weights file's config (``type`` must be the detector's).
    arrays : dict of str to ndarray
        The weights, PyTorch layout, keyed ``'layer.param'``.
    source : str or os.PathLike
        Where the weights came from, quoted in error messages.
    backend : str or None
        "numba", "numpy" or None (see `nnlite.backend.resolve_backend`).
    threads : int or None
        Most threads Numba's kernels use per call (None: `nnlite.jit.default_threads()`).
    input_size : int or None
        Input side S to run at (None: `run_size(config)`).
    """

    kind = "detector"

    def __init__(self, config: dict, arrays: dict, source="<arrays>", backend: str | None = None,
                 threads: int | None = None, input_size: int | None = None):
        if config.get("type") != MODEL_TYPE:
            raise WeightsError(f"{source}: config type is {config.get('type')!r}, "
                               f"expected {MODEL_TYPE!r}")
        src = self._start(config, arrays, source, backend, threads)
        ops = self.ops
        try:
            self.input_size = run_size(config) if input_size is None else int(input_size)
            if self.input_size < 16:
                raise WeightsError(f"{source}: input size {self.input_size} is too small")
            self._backbone(src, config)
            self.heads = []
            for j, head in enumerate(config["heads"]):
                n = len(head["anchors"])
                block = int(head["block"])
                if not 0 <= block < len(self.blocks):
                    raise WeightsError(f"{source}: head {j} reads block {block}, "
                                       f"but there are {len(self.blocks)} blocks")
                self.heads.append((block,
                                   Conv(src, f"heads.{j}.cls", head["in"], n, 1, ops=ops),
                                   Conv(src, f"heads.{j}.reg", head["in"], 4 * n, 1, ops=ops)))
            self._chain({b for b, _, _ in self.heads})
            box = config["box"]
            self.variance = (float(box["variance"][0]), float(box["variance"][1]))
            self.max_log_scale = float(box["max_log_scale"])
            self.score_threshold = float(config["score_threshold"])
            nm = config["nms"]
            self.nms_iou, self.nms_mode = float(nm["iou"]), str(nm["mode"])
            self.pre_nms_top_k, self.max_detections = int(nm["pre_nms_top_k"]), int(nm["max_detections"])
            self.anchors = make_anchors(config, self.input_size)
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, WeightsError):
                raise
            raise WeightsError(f"{source}: config is missing or has a malformed field ({e!r})") from None
        src.check_all_used()
        self._tls = threading.local()  # the NumPy ops' scratch, per calling thread

    def _workspace(self) -> Workspace | None:
        """This thread's scratch for the NumPy ops (None with Numba, whose layers keep their own)."""
        if self.ops.name != "numpy":
            return None
        work = getattr(self._tls, "work", None)
        if work is None:
            work = self._tls.work = Workspace()
        return work

    def _forward(self, x: np.ndarray) -> DetectorOutput:
        work = self._workspace()
        y = self.stem(np.ascontiguousarray(x), None, work)
        feats = self._run_blocks(y, None, work)
        n = x.shape[0]
        logits, deltas = [], []
        for b, cls, reg in self.heads:
            logits.append(cls(feats[b], None, work).reshape(n, -1))
            deltas.append(reg(feats[b], None, work).reshape(n, -1, 4))
        logits = np.concatenate(logits, axis=1)
        deltas = np.concatenate(deltas, axis=1)
        if logits.shape[1] != len(self.anchors):
            raise WeightsError(f"heads give {logits.shape[1]} anchors, the config {len(self.anchors)}")
        boxes = decode_boxes(deltas, self.anchors, self.variance, self.max_log_scale)
        return DetectorOutput(logits, deltas, boxes)

    def postprocess(self, out: DetectorOutput, threshold: float | None = None):
        """Score threshold, then non-maximum suppression, per input.

        Parameters
        ----------
        out : DetectorOutput
            A `forward` result.
        threshold : float or None
            Least score kept; None means ``config["score_threshold"]``.

        Returns
        -------
        results : list of (float32 ndarray (K, 4), float32 ndarray (K,))
            Per input: boxes x0, y0, x1, y1 in input pixels and their scores, best first.
        """
        t = self.score_threshold if threshold is None else float(threshold)
        results = []
        for logits, boxes in zip(out.logits, out.boxes):
            scores = sigmoid(logits)
            idx = np.flatnonzero(scores >= t)
            if len(idx) > self.pre_nms_top_k:
                idx = idx[np.argsort(-scores[idx], kind="stable")[:self.pre_nms_top_k]]
            results.append(nms(boxes[idx], scores[idx], self.nms_iou, self.nms_mode,
                               self.max_detections))
        return results

    def detect(self, x: np.ndarray, threshold: float | None = None):
        """`forward`, then `postprocess`.

        Parameters
        ----------
        x : float32 ndarray (N, S, S, 3), NHWC
            Inputs, normalised as ``config["input"]`` says.
        threshold : float or None
            Least score kept; None means ``config["score_threshold"]``.

        Returns
        -------
        results : list of (float32 ndarray (K, 4), float32 ndarray (K,))
            Per input: boxes in input pixels and scores, best first.
        """
        return self.postprocess(self.forward(x), threshold)


def count_macs(config: dict, size: int | None = None) -> int:
    """Multiply-adds of one forward pass (convolutions only, batch 1).

    Parameters
    ----------
    config : dict
        A detector weights file's config.
    size : int or None
        Input side in pixels; None means the training side ``input.size``.

    Returns
    -------
    macs : int
        Multiply-adds of the stem, the blocks and the heads.
    """
    s = int(config["input"]["size"]) if size is None else int(size)
    st = config["stem"]
    h = (s + 2 * (st["kernel"] // 2) - st["kernel"]) // st["stride"] + 1
    macs = h * h * st["out"] * st["in"] * st["kernel"] ** 2
    sizes = []
    for b in config["blocks"]:
        hidden = b["in"] * b["expand"]
        if b["expand"] != 1:
            macs += h * h * b["in"] * hidden
        h = (h - 1) // b["stride"] + 1
        macs += h * h * hidden * 9 + h * h * hidden * b["out"]
        sizes.append(h)
    for head in config["heads"]:
        h = sizes[head["block"]]
        macs += h * h * head["in"] * 5 * len(head["anchors"])
    return int(macs)


def count_params(config: dict) -> int:
    """Parameters of the BN-folded model (weights + biases).

    Parameters
    ----------
    config : dict
        A detector weights file's config.

    Returns
    -------
    n : int
        Number of float parameters.
    """
    st = config["stem"]
    n = st["out"] * (st["in"] * st["kernel"] ** 2 + 1)
    for b in config["blocks"]:
        hidden = b["in"] * b["expand"]
        if b["expand"] != 1:
            n += hidden * (b["in"] + 1)
        n += hidden * 10 + b["out"] * (hidden + 1)
    for head in config["heads"]:
        n += 5 * len(head["anchors"]) * (head["in"] + 1)
    return int(n)
