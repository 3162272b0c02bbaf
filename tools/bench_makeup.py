"""Time the makeup renderer: one face in a 640x480 frame, per product and the full look.

USAGE
    python tools/bench_makeup.py [--look natural] [--runs 200] [--iod 110]
    python tools/bench_makeup.py --image face.jpg --pts face.pts   # a real 300-W face

By default the face is synthetic: the mean 300-W shape (`tracker.regions.MEAN_SHAPE`)
with an inter-ocular distance of --iod pixels (110 is a typical webcam selfie at
640x480), centred, over a skin-toned oval. A real image + .pts is pasted, rescaled to that
inter-ocular distance, into the frame. Numba compiles on the first call, so each timing
starts with warm-up runs; reported numbers are medians over --runs runs (>= 100), in ms.
Per product: "mask" builds the soft mask, "total" is mask + statistics + blending
(`apply_product`); "blend" is the difference. The landmark model is timed elsewhere.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tracker.makeup import apply_product, load_look, product_mask, render  # noqa: E402
from tracker.makeup import available_looks  # noqa: E402
from tracker.masks import FaceShape  # noqa: E402
from tracker.regions import MEAN_SHAPE  # noqa: E402

FRAME_W, FRAME_H = 640, 480


def synthetic_frame(iod: float) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 frame with a plain skin-toned face and its (68, 2) landmarks."""
    rng = np.random.default_rng(0)
    pts = (np.array(MEAN_SHAPE) * iod + [FRAME_W / 2, FRAME_H * 0.42]).astype(np.float32)
    img = np.full((FRAME_H, FRAME_W, 3), (70, 80, 90), np.uint8)
    c = pts[list(range(17))].mean(axis=0)
    cv2.ellipse(img, (int(c[0]), int(c[1] - 0.3 * iod)), (int(0.85 * iod), int(1.25 * iod)),
                0, 0, 360, (140, 165, 205), -1, cv2.LINE_AA)
    cv2.fillPoly(img, [np.round(pts[48:60]).astype(np.int32)], (120, 110, 190), cv2.LINE_AA)
    noise = rng.normal(0, 4, img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8), pts


def read_pts(path: Path) -> np.ndarray:
    """300-W .pts -> float32 (68, 2), 0-based pixel centres."""
    lines = [s.strip() for s in path.read_text().splitlines()]
    start = lines.index("{") + 1
    return np.array([[float(v) for v in s.split()] for s in lines[start:start + 68]],
                    np.float32) - 1.0


def real_frame(image: Path, pts_path: Path, iod: float) -> tuple[np.ndarray, np.ndarray]:
    """A real face rescaled to the given inter-ocular distance, centred in a 640x480 frame."""
    img = cv2.imread(str(image))
    if img is None:
        raise SystemExit(f"cannot read image {image}")
    pts = read_pts(pts_path)
    s = iod / float(np.linalg.norm(pts[36] - pts[45]))
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    pts = (pts + 0.5) * s - 0.5
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    c = pts.mean(axis=0)
    dx, dy = int(round(FRAME_W / 2 - c[0])), int(round(FRAME_H / 2 - c[1]))
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    frame = cv2.warpAffine(img, m, (FRAME_W, FRAME_H), borderMode=cv2.BORDER_REFLECT)
    return frame, (pts + [dx, dy]).astype(np.float32)


def median_ms(fn, runs: int, warmup: int = 5, clock=time.perf_counter) -> float:
    """Median time of fn() in ms over `runs` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return 1e3 * float(np.median(times))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--look", default="natural", choices=available_looks())
    ap.add_argument("--runs", type=int, default=200, help="timed runs per number (>= 100)")
    ap.add_argument("--iod", type=float, default=110.0, help="inter-ocular distance, pixels")
    ap.add_argument("--image", type=Path, help="a face image (with --pts)")
    ap.add_argument("--pts", type=Path, help="its 300-W .pts landmarks")
    args = ap.parse_args(argv)
    runs = max(args.runs, 100)
    if args.image is not None:
        frame, pts = real_frame(args.image, args.pts or args.image.with_suffix(".pts"), args.iod)
        source = f"{args.image.name}, rescaled"
    else:
        frame, pts = synthetic_frame(args.iod)
        source = "synthetic mean-shape face"
    look = load_look(args.look)

    print(f"makeup benchmark: look={look.name}, {FRAME_W}x{FRAME_H}, {source}, "
          f"iod={args.iod:.0f}px, median of {runs} runs (after warm-up)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
          f"numba threads: {os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    print(f"{'product':<11} {'mask':>7} {'blend':>7} {'total':>7}  (ms)")
    work = frame.copy()
    t_shape = median_ms(lambda: FaceShape(pts, frame.shape), runs)
    face = FaceShape(pts, frame.shape)
    print(f"{'contours':<11} {t_shape:7.2f} {'':>7} {t_shape:7.2f}  (once per face)")
    sum_total = t_shape
    for kind, product in look.products():
        t_mask = median_ms(lambda: product_mask(face, frame.shape, kind, product), runs)

        def apply():
            np.copyto(work, frame)
            apply_product(work, face, kind, product)

        t_copy = median_ms(lambda: np.copyto(work, frame), runs)
        t_total = max(median_ms(apply, runs) - t_copy, 0.0)
        sum_total += t_total
        print(f"{kind:<11} {t_mask:7.2f} {max(t_total - t_mask, 0.0):7.2f} {t_total:7.2f}")
    t_render = median_ms(lambda: render(frame, [pts], look), runs)
    t_cpu = median_ms(lambda: render(frame, [pts], look), runs, clock=time.thread_time)
    print(f"{'sum':<11} {'':>7} {'':>7} {sum_total:7.2f}")
    print(f"render(): full look incl. frame copy: {t_render:.2f} ms wall "
          f"({1e3 / max(t_render, 1e-9):.0f} frames/s), {t_cpu:.2f} ms CPU time of this thread")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average during the run: {load:.2f} on {os.cpu_count()} CPUs "
          f"(wall times grow when other jobs share the cores; CPU time much less)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
