"""Interim face detector: OpenCV's LBP frontal-face cascade, evaluated in Numba.

OpenCV 5 no longer has `cv2.CascadeClassifier` (cascades moved to
opencv_contrib) and opencv-python 5 ships no cascade files, so this module reads
the cascade XML (OpenCV's trained-cascade format, `featureType` LBP) and runs it
itself: the same multi-scale scan, 3x3-block LBP codes and categorical stumps as
OpenCV's `CascadeClassifier.detectMultiScale`, then OpenCV-style grouping of the
hits. The cascade file and everything tunable live in a JSON configuration
(`weights/cascade_calibration.json`, written by `tools/detector/calibrate_cascade.py`):
scan settings, the linear map from cascade boxes to 68-landmark boxes, and the
map from a group's neighbour count to a score.

A trained detector will replace this one; until then it finds frontal and
mildly turned faces only (no strong roll or profile), which is enough to start
and re-acquire tracks: the tracker follows the face through roll by itself.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nnlite.jit import HAVE_NUMBA, njit, warn_numba_missing
from tracker.resources import resource
from tracker.detection.core import BoxCalibration
from tracker.errors import InputError
from tracker.types import Box

DEFAULT_CONFIG = resource("weights", "cascade_calibration.json")
CONFIG_FORMAT = "facelite-cascade-detector"
CONFIG_VERSION = 1
_THRESHOLD_EPS = 1e-5  # OpenCV subtracts this from every stage threshold at load


@dataclass(frozen=True)
class Cascade:
    """A boosted cascade of LBP stumps (OpenCV trained-cascade format).

    win : (width, height) of the detection window;
    features : int32 (F, 4) block rect (x, y, w, h) of each LBP feature;
    stages : int32 (S, 2) first weak classifier and count per stage;
    thresholds : float64 (S,) stage thresholds;
    weak_feature : int32 (K,) feature index of each stump;
    weak_subset : uint32 (K, 8) 256-bit set of LBP codes that take the first leaf;
    weak_leaves : float64 (K, 2) leaf values (code in subset, code not in subset).
    """
    win: tuple[int, int]
    features: np.ndarray
    stages: np.ndarray
    thresholds: np.ndarray
    weak_feature: np.ndarray
    weak_subset: np.ndarray
    weak_leaves: np.ndarray

    @classmethod
    def load(cls, path: str | Path) -> "Cascade":
        """Read an OpenCV cascade XML with LBP features and stump classifiers."""
        path = Path(path)
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as exc:
            raise InputError(f"cannot read cascade file {path}: {exc}") from exc
        node = root.find("cascade")
        if node is None or (node.findtext("featureType") or "").strip() != "LBP":
            raise InputError(f"{path} is not an OpenCV LBP cascade")
        win = (int(node.findtext("width")), int(node.findtext("height")))
        features = [[int(v) for v in f.findtext("rect").split()]
                    for f in node.find("features")]
        stages, thresholds, weak_feature, weak_subset, weak_leaves = [], [], [], [], []
        for stage in node.find("stages"):
            weaks = list(stage.find("weakClassifiers"))
            stages.append((len(weak_feature), len(weaks)))
            thresholds.append(float(stage.findtext("stageThreshold")) - _THRESHOLD_EPS)
            for weak in weaks:
                nodes = [int(v) for v in weak.findtext("internalNodes").split()]
                leaves = [float(v) for v in weak.findtext("leafValues").split()]
                if len(nodes) != 11 or len(leaves) != 2:
                    raise InputError(f"{path}: only depth-1 stumps over 256 LBP codes are supported")
                weak_feature.append(nodes[2])
                weak_subset.append([v & 0xFFFFFFFF for v in nodes[3:]])
                weak_leaves.append(leaves)
        return cls(win, np.array(features, np.int32).reshape(-1, 4),
                   np.array(stages, np.int32).reshape(-1, 2), np.array(thresholds, np.float64),
                   np.array(weak_feature, np.int32), np.array(weak_subset, np.uint32).reshape(-1, 8),
                   np.array(weak_leaves, np.float64).reshape(-1, 2))

    def scan(self, gray: np.ndarray, step: int) -> np.ndarray:
        """Window origins (x, y), int32 (N, 2), that pass every stage on one scale.

        gray : uint8 (H, W); windows every `step` pixels.
        """
        integral = cv2.integral(gray, sdepth=cv2.CV_32S)
        model = (self.features, self.stages, self.thresholds, self.weak_feature,
                 self.weak_subset, self.weak_leaves)
        return _SCAN(integral, step, self.win[0], self.win[1], model)


@njit(cache=True, nogil=True)
def _scan(integral, step, win_w, win_h, model):
    """Window origins passing every stage; integral int32 (H+1, W+1) of one scale level."""
    features, stages, thresholds, weak_feature, weak_subset, weak_leaves = model
    height = integral.shape[0] - 1
    width = integral.shape[1] - 1
    stride = integral.shape[1]
    flat = integral.ravel()
    # Each LBP feature is a 3x3 grid of w x h blocks: 4x4 corners, offsets from the window origin.
    ofs = np.empty((features.shape[0], 16), np.int64)
    for f in range(features.shape[0]):
        for r in range(4):
            for c in range(4):
                ofs[f, 4 * r + c] = ((features[f, 1] + r * features[f, 3]) * stride
                                     + features[f, 0] + c * features[f, 2])
    ny = max(0, (height - win_h) // step + 1)
    nx = max(0, (width - win_w) // step + 1)
    hits = np.empty((ny * nx, 2), np.int32)
    p = np.empty(16, np.int64)
    n = 0
    for iy in range(ny):
        y = iy * step
        for ix in range(nx):
            x = ix * step
            base = y * stride + x
            passed = True
            for s in range(stages.shape[0]):
                total = 0.0
                first = stages[s, 0]
                for k in range(first, first + stages[s, 1]):
                    f = weak_feature[k]
                    for i in range(16):
                        p[i] = flat[base + ofs[f, i]]
                    # Block sums; bits clockwise from the top-left block, set when
                    # that block's sum >= the centre block's (OpenCV's order).
                    c = p[5] - p[6] - p[9] + p[10]
                    code = 0
                    if p[0] - p[1] - p[4] + p[5] >= c:
                        code |= 128
                    if p[1] - p[2] - p[5] + p[6] >= c:
                        code |= 64
                    if p[2] - p[3] - p[6] + p[7] >= c:
                        code |= 32
                    if p[6] - p[7] - p[10] + p[11] >= c:
                        code |= 16
                    if p[10] - p[11] - p[14] + p[15] >= c:
                        code |= 8
                    if p[9] - p[10] - p[13] + p[14] >= c:
                        code |= 4
                    if p[8] - p[9] - p[12] + p[13] >= c:
                        code |= 2
                    if p[4] - p[5] - p[8] + p[9] >= c:
                        code |= 1
                    if (weak_subset[k, code >> 5] >> (code & 31)) & 1:
                        total += weak_leaves[k, 0]
                    else:
                        total += weak_leaves[k, 1]
                if total < thresholds[s]:
                    passed = False
                    break
            if passed:
                hits[n, 0] = x
                hits[n, 1] = y
                n += 1
    return hits[:n]


def scan_reference(integral, step, win_w, win_h, model):
    """NumPy version of the Numba scan: the same hits in the same order, about 3x slower.

    Parameters
    ----------
    integral : int32 ndarray (H+1, W+1), integral image of one scale level
    step : int, pixels between window origins
    win_w, win_h : int, window size
    model : tuple of the `Cascade` arrays (features, stages, thresholds,
        weak_feature, weak_subset, weak_leaves)

    Returns int32 (N, 2) window origins (x, y), row-major order. Each stage is
    evaluated on all windows still alive at once, adding the stumps in the
    kernel's order, so the float64 stage sums are bit-identical.
    """
    features, stages, thresholds, weak_feature, weak_subset, weak_leaves = model
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    stride = integral.shape[1]
    flat = np.ascontiguousarray(integral).ravel()
    corner = np.arange(4)
    fx, fy, fw, fh = (features[:, i].astype(np.int64)[:, None, None] for i in range(4))
    ofs = ((fy + corner[None, :, None] * fh) * stride + fx + corner[None, None, :] * fw).reshape(-1, 16)
    ny = max(0, (height - win_h) // step + 1)
    nx = max(0, (width - win_w) // step + 1)
    iy, ix = np.divmod(np.arange(ny * nx, dtype=np.int64), nx)
    base = iy * (step * stride) + ix * step
    for s in range(stages.shape[0]):
        if base.size == 0:
            break
        total = np.zeros(base.size)
        first = stages[s, 0]
        for k in range(first, first + stages[s, 1]):
            p = [flat.take(base + o) for o in ofs[weak_feature[k]]]  # the 16 corners, int32
            c = p[5] - p[6] - p[9] + p[10]
            code = ((p[0] - p[1] - p[4] + p[5]) >= c).astype(np.int32) << 7
            code |= ((p[1] - p[2] - p[5] + p[6]) >= c).astype(np.int32) << 6
            code |= ((p[2] - p[3] - p[6] + p[7]) >= c).astype(np.int32) << 5
            code |= ((p[6] - p[7] - p[10] + p[11]) >= c).astype(np.int32) << 4
            code |= ((p[10] - p[11] - p[14] + p[15]) >= c).astype(np.int32) << 3
            code |= ((p[9] - p[10] - p[13] + p[14]) >= c).astype(np.int32) << 2
            code |= ((p[8] - p[9] - p[12] + p[13]) >= c).astype(np.int32) << 1
            code |= ((p[4] - p[5] - p[8] + p[9]) >= c).astype(np.int32)
            inside = (weak_subset[k][code >> 5] >> (code & 31).astype(np.uint32)) & 1
            total += np.where(inside == 1, weak_leaves[k, 0], weak_leaves[k, 1])
        alive = total >= thresholds[s]
        base, iy, ix = base[alive], iy[alive], ix[alive]
    return np.stack([ix * step, iy * step], axis=1).astype(np.int32).reshape(-1, 2)

if HAVE_NUMBA:
    _SCAN = _scan
else:  # _scan stays plain Python without numba; the vectorised version is far faster
    _SCAN = scan_reference
    warn_numba_missing()


def group_rectangles(rects: np.ndarray, min_neighbors: int, eps: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Merge overlapping hits the way OpenCV's groupRectangles does.

    rects : int (N, 4) x, y, w, h. Hits are linked when every edge is within
    eps * mean(min width, min height) of the other's; each connected group
    becomes its mean rectangle with its size as neighbour count. Groups with
    fewer than `min_neighbors` members are dropped, and so are small groups
    inside a larger, better supported one.

    Returns (float64 (G, 4) x, y, w, h, int64 (G,) neighbour counts).
    """
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    if len(rects) == 0:
        return np.zeros((0, 4)), np.zeros(0, np.int64)
    x, y, w, h = rects.T
    delta = eps * (np.minimum(w[:, None], w[None, :]) + np.minimum(h[:, None], h[None, :])) * 0.5
    linked = ((np.abs(x[:, None] - x[None, :]) <= delta)
              & (np.abs(y[:, None] - y[None, :]) <= delta)
              & (np.abs((x + w)[:, None] - (x + w)[None, :]) <= delta)
              & (np.abs((y + h)[:, None] - (y + h)[None, :]) <= delta))
    labels = np.arange(len(rects))
    while True:  # connected components: propagate the smallest label
        new = np.where(linked, labels[None, :], len(rects)).min(axis=1)
        new = new[new]
        if np.array_equal(new, labels):
            break
        labels = new
    _, labels, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), 4))
    np.add.at(sums, labels, rects)
    groups = np.round(sums / counts[:, None])
    keep = []
    for i in range(len(groups)):
        n1 = counts[i]
        if n1 < min_neighbors:
            continue
        gx, gy, gw, gh = groups[i]
        inside = False
        for j in range(len(groups)):
            n2 = counts[j]
            if j == i or n2 < min_neighbors:
                continue
            ox, oy, ow, oh = groups[j]
            dx, dy = round(ow * eps), round(oh * eps)
            if (gx >= ox - dx and gy >= oy - dy and gx + gw <= ox + ow + dx
                    and gy + gh <= oy + oh + dy and (n2 > max(3, n1) or n1 < 3)):
                inside = True
                break
        if not inside:
            keep.append(i)
    return groups[keep], counts[keep].astype(np.int64)


def load_config(path: str | Path) -> dict:
    """Read and check a cascade detector configuration (JSON)."""
    path = Path(path)
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"detector configuration not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read detector configuration {path}: {exc}") from exc
    if config.get("format") != CONFIG_FORMAT or config.get("version") != CONFIG_VERSION:
        raise InputError(f"{path} is not a {CONFIG_FORMAT} v{CONFIG_VERSION} file "
                         f"(format {config.get('format')!r}, version {config.get('version')!r})")
    for key in ("cascade", "scan", "calibration", "score"):
        if key not in config:
            raise InputError(f"{path}: missing key {key!r}")
    return config


class CascadeDetector:
    """LBP cascade face detector with boxes calibrated to 68-landmark boxes.

    Parameters
    ----------
    config : path of the JSON configuration (default weights/cascade_calibration.json);
        its "cascade" entry is resolved relative to the configuration's folder.
    calibrated : False returns the cascade's own boxes (used when fitting).
    """

    def __init__(self, config: str | Path = DEFAULT_CONFIG, calibrated: bool = True):
        config_path = Path(config)
        cfg = load_config(config_path)
        self.cascade = Cascade.load(config_path.parent / cfg["cascade"])
        try:
            scan = cfg["scan"]
            self.scale_factor = float(scan["scale_factor"])
            self.min_size = int(scan["min_size"])
            self.min_neighbors = int(scan["min_neighbors"])
            self.group_eps = float(scan["group_eps"])
            self.max_side = int(scan["max_side"])
            self.equalize = bool(scan["equalize_hist"])
            self.calibration = BoxCalibration(**cfg["calibration"]) if calibrated else BoxCalibration()
            self.score_a = float(cfg["score"]["a"])
            self.score_b = float(cfg["score"]["b"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{config_path}: malformed detector configuration ({exc!r})") from None
        if self.scale_factor <= 1.0 or self.max_side < self.cascade.win[0]:
            raise InputError(f"{config_path}: scale_factor must be > 1 and max_side >= the window size")

    def raw_groups(self, image_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grouped cascade hits in frame pixels: (float64 (G, 4) x, y, w, h, int (G,) neighbours)."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
            raise ValueError(f"expected a uint8 (H, W, 3) BGR image, got {image_bgr.dtype} {image_bgr.shape}")
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        shrink = max(gray.shape) / self.max_side if max(gray.shape) > self.max_side else 1.0
        if shrink > 1.0:
            size = (round(gray.shape[1] / shrink), round(gray.shape[0] / shrink))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        win_w, win_h = self.cascade.win
        rects = []
        factor = 1.0
        while True:  # OpenCV's scale loop: window grows by scale_factor each level
            size_w, size_h = round(win_w * factor), round(win_h * factor)
            scaled = (round(gray.shape[1] / factor), round(gray.shape[0] / factor))
            if scaled[0] < win_w or scaled[1] < win_h:
                break
            if min(size_w, size_h) >= self.min_size:
                level = gray if factor == 1.0 else cv2.resize(gray, scaled, interpolation=cv2.INTER_LINEAR)
                hits = self.cascade.scan(level, 1 if factor > 2.0 else 2)
                for x, y in hits:
                    rects.append((round(x * factor), round(y * factor), size_w, size_h))
            factor *= self.scale_factor
        groups, counts = group_rectangles(np.array(rects).reshape(-1, 4), self.min_neighbors, self.group_eps)
        return groups * shrink, counts

    def score(self, neighbors: np.ndarray) -> np.ndarray:
        """Neighbour count -> score in (0, 1): sigmoid(a * log(n) + b), fitted by tools/detector/calibrate_cascade.py."""
        z = self.score_a * np.log(np.maximum(np.asarray(neighbors, np.float64), 1.0)) + self.score_b
        return 1.0 / (1.0 + np.exp(-z))

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        """Faces in a uint8 (H, W, 3) BGR frame as landmark boxes, best score first."""
        groups, counts = self.raw_groups(image_bgr)
        scores = self.score(counts)
        boxes = []
        for (x, y, w, h), s in zip(groups, scores):
            x0, y0, x1, y1 = self.calibration.apply(x, y, x + w, y + h)
            boxes.append(Box(x0, y0, x1, y1, float(s)))
        boxes.sort(key=lambda b: -b.score)
        return boxes

