"""Smooth curves through landmarks: centripetal Catmull-Rom splines, arc-length resampling,
normals. Points are float (N, 2) (x, y) frame pixels; results are float64.

`catmull_rom`, `resample` and `normals` are Numba kernels, each with its NumPy reference beside
it (`catmull_rom_reference`, `resample_reference`, `normals_reference`), used without Numba.
"""
from __future__ import annotations

import numpy as np

from nnlite.jit import HAVE_NUMBA, njit


def catmull_rom(points, samples: int = 8, closed: bool = False) -> np.ndarray:
    """Centripetal Catmull-Rom curve through points (N, 2) -> float64 (M, 2).

    `samples` points per segment; the curve passes through every input point. Open
    curves are extended at the ends by reflecting the neighbouring point. M is
    N * samples (closed) or (N - 1) * samples + 1 (open); fewer than 3 points are
    returned as they are. Numba kernel; `catmull_rom_reference` is its NumPy twin.
    """
    p = np.ascontiguousarray(points, dtype=np.float64)
    if not HAVE_NUMBA or len(p) < 3 or p.ndim != 2 or p.shape[1] != 2:
        return catmull_rom_reference(p, samples, closed)
    return _catmull_rom_nb(p, int(samples), bool(closed))


@njit(cache=True, inline="always")
def _knot(ax, ay, bx, by):  # centripetal parametrisation: sqrt of the chord length
    return max(np.hypot(bx - ax, by - ay), 1e-6) ** 0.5


@njit(cache=True)
def _catmull_rom_nb(p, samples, closed):
    n = p.shape[0]
    segs = n if closed else n - 1
    out = np.empty((segs * samples + (0 if closed else 1), 2))
    ext = np.empty((n + 3, 2))  # p with one point before and two after
    # Element by element: a row assigned from an array (ext[k] = p[k]) makes Numba compile
    # its shape-mismatch message (string formatting), ~4 s of a first run's compile time.
    for j in range(2):
        for k in range(n):
            ext[k + 1, j] = p[k, j]
        if closed:
            ext[0, j] = p[n - 1, j]
            ext[n + 1, j] = p[0, j]
            ext[n + 2, j] = p[1, j]
        else:
            ext[0, j] = 2.0 * p[0, j] - p[1, j]
            ext[n + 1, j] = 2.0 * p[n - 1, j] - p[n - 2, j]
    step = 1.0 / samples
    for s in range(segs):
        x0, y0 = ext[s, 0], ext[s, 1]
        x1, y1 = ext[s + 1, 0], ext[s + 1, 1]
        x2, y2 = ext[s + 2, 0], ext[s + 2, 1]
        x3, y3 = ext[s + 3, 0], ext[s + 3, 1]
        t0 = 0.0
        t1 = t0 + _knot(x0, y0, x1, y1)
        t2 = t1 + _knot(x1, y1, x2, y2)
        t3 = t2 + _knot(x2, y2, x3, y3)
        for q in range(samples):
            tt = t1 + (q * step) * (t2 - t1)
            a1x = ((t1 - tt) * x0 + (tt - t0) * x1) / (t1 - t0)
            a1y = ((t1 - tt) * y0 + (tt - t0) * y1) / (t1 - t0)
            a2x = ((t2 - tt) * x1 + (tt - t1) * x2) / (t2 - t1)
            a2y = ((t2 - tt) * y1 + (tt - t1) * y2) / (t2 - t1)
            a3x = ((t3 - tt) * x2 + (tt - t2) * x3) / (t3 - t2)
            a3y = ((t3 - tt) * y2 + (tt - t2) * y3) / (t3 - t2)
            b1x = ((t2 - tt) * a1x + (tt - t0) * a2x) / (t2 - t0)
            b1y = ((t2 - tt) * a1y + (tt - t0) * a2y) / (t2 - t0)
            b2x = ((t3 - tt) * a2x + (tt - t1) * a3x) / (t3 - t1)
            b2y = ((t3 - tt) * a2y + (tt - t1) * a3y) / (t3 - t1)
            out[s * samples + q, 0] = ((t2 - tt) * b1x + (tt - t1) * b2x) / (t2 - t1)
            out[s * samples + q, 1] = ((t2 - tt) * b1y + (tt - t1) * b2y) / (t2 - t1)
    if not closed:
        out[segs * samples, 0] = p[n - 1, 0]
        out[segs * samples, 1] = p[n - 1, 1]
    return out


def resample(curve, n: int) -> np.ndarray:
    """n points evenly spaced by arc length along an open polyline (M, 2).

    Numba kernel; `resample_reference` is its NumPy twin.
    """
    c = np.ascontiguousarray(curve, dtype=np.float64)
    if not HAVE_NUMBA or c.ndim != 2 or c.shape[1] != 2 or len(c) < 2 or n < 2:
        return resample_reference(c, n)
    return _resample_nb(c, int(n))


@njit(cache=True)
def _resample_nb(c, n):
    m = c.shape[0]
    s = np.empty(m)
    s[0] = 0.0
    for k in range(1, m):
        s[k] = s[k - 1] + np.hypot(c[k, 0] - c[k - 1, 0], c[k, 1] - c[k - 1, 1])
    out = np.empty((n, 2))
    if s[m - 1] <= 0.0:
        for i in range(n):  # element by element, as in _catmull_rom_nb
            out[i, 0] = c[0, 0]
            out[i, 1] = c[0, 1]
        return out
    k = 0
    for i in range(n):  # u = linspace(0, s[-1], n), as np.interp does it
        u = s[m - 1] * i / (n - 1) if i < n - 1 else s[m - 1]
        while k < m - 2 and s[k + 1] <= u:
            k += 1
        d = s[k + 1] - s[k]
        f = (u - s[k]) / d if d > 0.0 else 0.0
        out[i, 0] = c[k, 0] + f * (c[k + 1, 0] - c[k, 0])
        out[i, 1] = c[k, 1] + f * (c[k + 1, 1] - c[k, 1])
    return out


def catmull_rom_reference(points, samples: int = 8, closed: bool = False) -> np.ndarray:
    """NumPy reference of `catmull_rom`."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    if n < 3:
        return p.copy()
    if closed:
        ext = np.vstack([p[-1:], p, p[:2]])
    else:
        ext = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    segs = n if closed else n - 1
    i = np.arange(segs)
    p0, p1, p2, p3 = ext[i][:, None], ext[i + 1][:, None], ext[i + 2][:, None], ext[i + 3][:, None]

    def knot(a, b):  # centripetal parametrisation: sqrt of the chord length
        return np.maximum(np.hypot(*(b - a)[..., 0, :].T), 1e-6)[:, None, None] ** 0.5

    t0 = np.zeros((segs, 1, 1))
    t1 = t0 + knot(p0, p1)
    t2 = t1 + knot(p1, p2)
    t3 = t2 + knot(p2, p3)
    tt = t1 + np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None] * (t2 - t1)
    a1 = ((t1 - tt) * p0 + (tt - t0) * p1) / (t1 - t0)
    a2 = ((t2 - tt) * p1 + (tt - t1) * p2) / (t2 - t1)
    a3 = ((t3 - tt) * p2 + (tt - t2) * p3) / (t3 - t2)
    b1 = ((t2 - tt) * a1 + (tt - t0) * a2) / (t2 - t0)
    b2 = ((t3 - tt) * a2 + (tt - t1) * a3) / (t3 - t1)
    out = (((t2 - tt) * b1 + (tt - t1) * b2) / (t2 - t1)).reshape(-1, 2)
    if not closed:
        out = np.vstack([out, p[-1:]])
    return out


def resample_reference(curve, n: int) -> np.ndarray:
    """NumPy reference of `resample`."""
    c = np.asarray(curve, dtype=np.float64)
    seg = np.hypot(*np.diff(c, axis=0).T)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(c[:1], n, axis=0)
    u = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(u, s, c[:, 0]), np.interp(u, s, c[:, 1])], axis=1)


def normals(curve: np.ndarray, toward: np.ndarray) -> np.ndarray:
    """Unit normals float64 (M, 2) of a polyline (M, 2), M >= 2, each flipped to point along
    `toward` (2,). Numba kernel; `normals_reference` is its NumPy twin."""
    c = np.ascontiguousarray(curve, dtype=np.float64)
    t = np.asarray(toward, dtype=np.float64)
    if not HAVE_NUMBA or c.ndim != 2 or c.shape[1] != 2 or len(c) < 2 or t.shape != (2,):
        return normals_reference(c, t)
    return _normals_nb(c, float(t[0]), float(t[1]))


@njit(cache=True)
def _normals_nb(c, tx, ty):
    m = c.shape[0]
    out = np.empty((m, 2))
    for k in range(m):  # np.gradient along the curve: central differences inside
        a, b = max(k - 1, 0), min(k + 1, m - 1)
        dx, dy = c[b, 0] - c[a, 0], c[b, 1] - c[a, 1]
        if 0 < k < m - 1:
            dx, dy = 0.5 * dx, 0.5 * dy
        n = max(np.hypot(dx, dy), 1e-9)
        nx, ny = -(dy / n), dx / n
        if nx * tx + ny * ty < 0.0:
            nx, ny = -nx, -ny
        out[k, 0] = nx
        out[k, 1] = ny
    return out


def normals_reference(curve: np.ndarray, toward: np.ndarray) -> np.ndarray:
    """NumPy reference of `normals`."""
    c = np.asarray(curve, dtype=np.float64)
    tan = np.empty_like(c)  # np.gradient along the curve: central differences inside
    tan[1:-1] = 0.5 * (c[2:] - c[:-2])
    tan[0] = c[1] - c[0]
    tan[-1] = c[-1] - c[-2]
    tan /= np.maximum(np.hypot(tan[:, 0], tan[:, 1]), 1e-9)[:, None]
    nrm = np.empty_like(tan)
    nrm[:, 0] = -tan[:, 1]
    nrm[:, 1] = tan[:, 0]
    nrm[(nrm @ toward) < 0] *= -1
    return nrm
