"""Time the makeup renderer: one face in a 640x480 frame, per product and the full look,
and the landmark model's own time per face beside it.

USAGE
    python -m tools.bench.makeup [--look natural] [--runs 200] [--iod 110]
    python -m tools.bench.makeup --image face.jpg --pts face.pts   # a real 300-W face
    python -m tools.bench.makeup --weights weights/demo.h5           # which landmark model

By default the face is synthetic: the mean 300-W shape (`tracker.regions.MEAN_SHAPE`)
with an inter-ocular distance of --iod pixels (110 is a typical webcam selfie at
640x480), centred, over a skin-toned oval. A real image + .pts is pasted, rescaled to that
inter-ocular distance, into the frame. Numba compiles (or loads from its cache) on the first
call, so every number follows warm-up runs; numbers are medians over --runs runs (>= 50),
in ms of CPU time of the benchmarking thread (robust when other jobs share the cores),
with wall-clock medians where they are reported too. Run with NUMBA_NUM_THREADS=1 to
measure one core.

Each run renders the look step by step, as `tracker.makeup.render` does, timing each step:
"curves" builds the face's contours (`FaceShape`); per product, "mask" builds its soft mask
(parts shared with a later product, such as the skin terms of foundation and blush, are
counted where they are first built) and "blend" takes its Lab statistics and blends it
into the face's Lab buffer; "lab in/out" converts the union of the masks to CIELAB and the
touched pixels back, once per face. The step-by-step output is checked to equal render()'s.
render() itself is timed as a whole too (it includes the frame copy).

The landmark model line times `tracker.landmarks.Landmarker.run` on one face crop (crop,
normalise, two-stage model, back to the frame), on --weights, else weights/demo.h5; without one the line says so.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from tools.common import inter_ocular, machine
from tracker.blend import bgr_to_lab_planes, lab_planes_to_bgr
from tracker.makeup import apply_layer, available_looks, light_for, load_look, product_mask, render
from tracker.masks import FaceShape, union_box
from tracker.mouth import guard_mask, mouth_guard
from tracker.regions import MEAN_SHAPE

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = (ROOT / "weights" / "demo.h5",)

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
    s = iod / float(inter_ocular(pts))
    img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)
    pts = (pts + 0.5) * s - 0.5
    frame = np.zeros((FRAME_H, FRAME_W, 3), np.uint8)
    c = pts.mean(axis=0)
    dx, dy = int(round(FRAME_W / 2 - c[0])), int(round(FRAME_H / 2 - c[1]))
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    frame = cv2.warpAffine(img, m, (FRAME_W, FRAME_H), borderMode=cv2.BORDER_REFLECT)
    return frame, (pts + [dx, dy]).astype(np.float32)


def median_ms(fn, runs: int, warmup: int = 5, clock=time.thread_time) -> float:
    """Median time of fn() in ms over `runs` runs after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return 1e3 * float(np.median(times))


def render_steps(frame: np.ndarray, pts: np.ndarray, look, clock=time.thread_time):
    """Render `look` on one face step by step, as render() does -> (image, {step: seconds}).

    Steps: "curves", (kind, "mask") and (kind, "blend") per product, "lab" (both
    conversions), "mouth" (the mouth guard, once per face), "light" (the face's light). Kept in step with tracker.makeup.apply_products; main() checks that the
    image equals render()'s.
    """
    t = {}
    out = frame.copy()
    t0 = clock()
    face = FaceShape(pts, frame.shape)
    t1 = clock()
    t["curves"] = t1 - t0
    work = []
    for kind, product in look.products():
        amount = product.intensity * look.intensity
        if amount <= 0.0:
            continue
        t0 = clock()
        m = product_mask(face, frame.shape, kind, product)
        empty = m.empty
        t[kind, "mask"] = clock() - t0
        if not empty:
            work.append((kind, product, amount, m))
    if not work:
        return out, t
    t0 = clock()
    x0, y0, x1, y1 = union_box(m for *_, m in work)
    view = out[y0:y1, x0:x1]
    lab = bgr_to_lab_planes(view)
    touched = np.zeros(view.shape[:2], dtype=np.uint8)
    t["lab"] = clock() - t0
    t0 = clock()
    guard = mouth_guard(face, lab, x0, y0)
    t["mouth"] = clock() - t0
    t0 = clock()
    light = light_for(out, face, work)
    t["light"] = clock() - t0
    for kind, product, amount, m in work:
        t0 = clock()
        apply_layer(lab, touched, guard_mask(m, guard), x0, y0, face, kind, product, amount,
                    light)
        t[kind, "blend"] = clock() - t0
    t0 = clock()
    lab_planes_to_bgr(lab, touched, view)
    t["lab"] += clock() - t0
    return out, t


def landmark_line(weights: Path | None, frame: np.ndarray, pts: np.ndarray, runs: int) -> str:
    """The landmark model's own time for one face, or why it was not measured."""
    candidates = [weights] if weights is not None else list(DEFAULT_WEIGHTS)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return ("landmark model: not measured (no weights file: "
                + ", ".join(str(p) for p in candidates) + ")")
    from tracker.geometry import landmarks_to_crop
    from tracker.landmarks import Landmarker

    lm = Landmarker(path, threads=1)
    lm.warmup()
    crop = landmarks_to_crop(pts, lm.crop_scale)
    cpu = median_ms(lambda: lm.run(frame, [crop]), runs)
    wall = median_ms(lambda: lm.run(frame, [crop]), runs, clock=time.perf_counter)
    return (f"landmark model, one face (Landmarker.run, {path}, 1 thread): "
            f"{cpu:.2f} ms CPU, {wall:.2f} ms wall")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--look", default="natural", choices=available_looks())
    ap.add_argument("--runs", type=int, default=200, help="timed runs per number (>= 50)")
    ap.add_argument("--iod", type=float, default=110.0, help="inter-ocular distance, pixels")
    ap.add_argument("--image", type=Path, help="a face image (with --pts)")
    ap.add_argument("--pts", type=Path, help="its 300-W .pts landmarks")
    ap.add_argument("--weights", type=Path, help="landmark weights (default: weights/demo.h5)")
    args = ap.parse_args(argv)
    runs = max(args.runs, 50)
    if args.image is not None:
        frame, pts = real_frame(args.image, args.pts or args.image.with_suffix(".pts"), args.iod)
        source = f"{args.image.name}, rescaled"
    else:
        frame, pts = synthetic_frame(args.iod)
        source = "synthetic mean-shape face"
    look = load_look(args.look)

    print(f"makeup benchmark: look={look.name}, {FRAME_W}x{FRAME_H}, {source}, "
          f"iod={args.iod:.0f}px, median of {runs} runs after warm-up, ms of CPU time")
    print(f"machine: {machine()}")
    image, _ = render_steps(frame, pts, look)
    if not np.array_equal(image, render(frame, [pts], look)):
        raise SystemExit("bench_makeup: the step-by-step render differs from render(); "
                         "update render_steps to match tracker.makeup.apply_products")
    for _ in range(5):
        render_steps(frame, pts, look)
    steps: dict = {}
    for _ in range(runs):
        for key, sec in render_steps(frame, pts, look)[1].items():
            steps.setdefault(key, []).append(sec)
    med = {k: 1e3 * float(np.median(v)) for k, v in steps.items()}
    print(f"{'step':<11} {'mask':>7} {'blend':>7} {'total':>7}")
    print(f"{'curves':<11} {'':>7} {'':>7} {med['curves']:7.2f}  (contours, once per face)")
    total = med["curves"]
    for kind, _ in look.products():
        tm, tb = med.get((kind, "mask"), 0.0), med.get((kind, "blend"), 0.0)
        total += tm + tb
        print(f"{kind:<11} {tm:7.2f} {tb:7.2f} {tm + tb:7.2f}")
    total += med.get("lab", 0.0)
    print(f"{'lab in/out':<11} {'':>7} {med.get('lab', 0.0):7.2f} {med.get('lab', 0.0):7.2f}"
          f"  (BGR -> Lab -> BGR, once per face)")
    total += med.get("mouth", 0.0)
    print(f"{'mouth':<11} {med.get('mouth', 0.0):7.2f} {'':>7} {med.get('mouth', 0.0):7.2f}"
          f"  (the mouth guard, once per face)")
    total += med.get("light", 0.0)
    print(f"{'light':<11} {'':>7} {med.get('light', 0.0):7.2f} {med.get('light', 0.0):7.2f}"
          f"  (the face's light from its skin, once per face)")
    print(f"{'sum':<11} {'':>7} {'':>7} {total:7.2f}")
    t_cpu = median_ms(lambda: render(frame, [pts], look), runs)
    t_wall = median_ms(lambda: render(frame, [pts], look), runs, clock=time.perf_counter)
    print(f"render(): full look, one face, incl. frame copy: {t_cpu:.2f} ms CPU, "
          f"{t_wall:.2f} ms wall ({1e3 / max(t_wall, 1e-9):.0f} frames/s)")
    print(landmark_line(args.weights, frame, pts, runs))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average during the run: {load:.2f} on {os.cpu_count()} CPUs "
          f"(wall times grow when other jobs share the cores; CPU times much less)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
