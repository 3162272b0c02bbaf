"""Temporal smoothing of landmarks: the One Euro filter, made scale-invariant.

One Euro filter (Casiez, Roussel, Vogel: "1 Euro Filter: A Simple Speed-based
Low-pass Filter for Noisy Input in Interactive Systems", CHI 2012): an
exponential low-pass whose cutoff rises with the signal's speed, so a still
face is smoothed hard (no jitter) and a moving one lightly (little lag):

    alpha(fc, dt) = 1 / (1 + 1 / (2 pi fc dt))
    dx_hat = lowpass(dx, alpha(d_cutoff, dt))       speed, itself smoothed
    fc     = min_cutoff + beta * |dx_hat| / scale
    x_hat  = lowpass(x, alpha(fc, dt))

Here x is a whole (N, 2) landmark array; each point has its own speed (the
norm of its 2-D velocity, so x and y share a cutoff and rotation does not
matter). The speed is measured in face sizes per second (`scale` defaults to
the inter-ocular distance |p36 - p45| of the incoming 68 landmarks), so the same
parameters behave the same on a small and a large face. Times are in seconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothingParams:
    """One Euro parameters. min_cutoff, d_cutoff in Hz; beta in Hz per (face size / s).

    Defaults (the tracker's), chosen by tools/landmarks/tune_tracking.py for
    weights/demo.h5 on synthetic still and moving sequences of validation
    faces: a still face is low-passed at 0.2 Hz; the speed, itself smoothed at
    0.5 Hz so landmark noise barely raises it, opens the filter fast (a point
    moving at 0.1 inter-ocular distances per second gets 5.2 Hz), so a moving
    face gains at most ~0.5% of the inter-ocular distance of lag.
    `OneEuroFilter()` alone keeps the gentler generic defaults (1, 5, 1).
    """
    min_cutoff: float = 0.2
    beta: float = 50.0
    d_cutoff: float = 0.5


def _alpha(cutoff, dt: float):
    return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * cutoff * dt))


def face_scale(points: np.ndarray) -> float:
    """Inter-ocular distance |p36 - p45| of 68 landmarks; the box diagonal for other point sets."""
    if len(points) == 68:
        d = float(np.linalg.norm(points[36] - points[45]))
    else:
        d = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    return max(d, 1e-6)


class OneEuroFilter:
    """One Euro filter over (N, 2) point arrays with speed relative to face size.

    Call it once per frame with the new points and the frame time; it returns
    the filtered points (float32, new array). The first call passes the points
    through. A call with a time not after the previous one returns the
    previous output unchanged.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 5.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError(f"need min_cutoff > 0, d_cutoff > 0, beta >= 0; got "
                             f"{min_cutoff}, {d_cutoff}, {beta}")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    @classmethod
    def from_params(cls, params: SmoothingParams) -> "OneEuroFilter":
        return cls(params.min_cutoff, params.beta, params.d_cutoff)

    def reset(self) -> None:
        """Forget the history; the next call passes its points through."""
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, points: np.ndarray, t: float, scale: float | None = None) -> np.ndarray:
        """Filter points (N, 2) observed at time t (seconds); scale: face size in pixels."""
        x = np.asarray(points, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"expected points of shape (N, 2), got {x.shape}")
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.astype(np.float32)
        dt = float(t) - self._t
        if dt <= 0:
            return self._x.astype(np.float32)
        size = face_scale(x) if scale is None else max(float(scale), 1e-6)
        dx = (x - self._x) / dt
        self._dx = self._dx + _alpha(self.d_cutoff, dt) * (dx - self._dx)
        speed = np.linalg.norm(self._dx, axis=1, keepdims=True) / size
        a = _alpha(self.min_cutoff + self.beta * speed, dt)
        self._x = self._x + a * (x - self._x)
        self._t = float(t)
        return self._x.astype(np.float32)
