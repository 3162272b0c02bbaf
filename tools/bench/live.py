"""Live try-on benchmark: a clip played as a camera through the live loop, with and without makeup.

USAGE
    python -m tools.bench.live [--weights weights/demo.h5] [--source tracker/data/sample.mp4]
                               [--look natural] [--runs 1] [--backend numba|numpy] [--threads N]

The clip (default: the shipped 640x480 sample, 30 frames/s, one face) is played
at its own frame rate as a live source (`tracker.live.run_live`: capture in its
own thread, always the newest frame, stale frames dropped). Reported per mode
(full look / no makeup, with the detector on its own thread as
`tracker.camera` runs it, and the full look with the detector inline in the
loop for comparison): frames shown vs dropped, frames/s, median and
95th-percentile capture-to-display latency, median detection / landmark /
render times, and how many frames ran the detector. Headless: the sink is
nothing, so "display" is the moment the frame with its status line is ready.
Numba kernels are warmed up before timing. Uses the real landmark model;
without trained weights it says so and exits 2.

Targets (informative): 640x480, one face, the full look: no frames dropped
at 30 frames/s on 2 cores; median capture-to-display latency under 33 ms.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from tools.common import machine
from tracker.detection import DETECTORS, BackgroundDetector
from tracker.errors import TrackerError
from tracker.cli import add_engine_arguments
from tracker.landmarks import load_landmarker
from tracker.makeup import available_looks, load_look, makeup_renderer
from tracker.resources import SAMPLE


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SAMPLE, help="clip played as the live source")
    ap.add_argument("--look", default="natural", choices=available_looks(), help="the full look")
    ap.add_argument("--runs", type=int, default=1, help="runs per mode")
    add_engine_arguments(ap)
    args = ap.parse_args(argv)
    if not args.weights.is_file():
        print(f"bench_live needs trained landmark weights: {args.weights} not found "
              "(train and export a model, or pass --weights)", file=sys.stderr)
        return 2

    from tracker.live import run_live, warmup
    from tracker.sources import open_source
    from tracker.tracking import Tracker

    try:
        landmarker = load_landmarker(args.weights, backend=args.backend, threads=args.threads)
        with open_source(args.source) as source:
            size, fps, count = source.size, source.fps, source.frame_count
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    look = load_look(args.look)
    background = BackgroundDetector(DETECTORS[args.detector]())
    trackers = {"background": Tracker(landmarker, background, fps=fps, threads=args.threads),
                "inline": Tracker(landmarker, background.detector, fps=fps, threads=args.threads)}
    warm = warmup(trackers["inline"], makeup_renderer(look), size)

    print(f"live benchmark: {args.source.name} ({size[0]}x{size[1]}, {count or '?'} frames) played at "
          f"{fps:.0f} frames/s, weights {args.weights.name}, detector {args.detector}, warm-up {warm:.1f} s")
    print(f"machine: {machine()}")
    print(f"{'mode':<12} {'detector':<10} {'shown':>5} {'dropped':>7} {'fps':>5} {'lat p50':>8} {'lat p95':>8} "
          f"{'detect':>7} {'landmk':>7} {'render':>7} {'det runs':>8}   (ms)")
    try:
        modes = ((look.name, makeup_renderer(look), "background"), ("no makeup", None, "background"),
                 (look.name, makeup_renderer(look), "inline"))
        for name, render, detection in modes:
            for _ in range(max(1, args.runs)):
                with open_source(args.source) as source:
                    s = run_live(source, trackers[detection], render, None, pace=True)
                background.wait()
                ran = s.detect_ms > 0
                print(f"{name:<12} {detection:<10} {s.frames_processed:>5} {s.frames_dropped:>7} {s.frames_per_second:5.1f} "
                      f"{s.latency_median_ms:8.1f} {s.latency_p95_ms:8.1f} "
                      f"{np.median(s.detect_ms[ran]) if ran.any() else 0.0:7.1f} "
                      f"{np.median(s.landmarks_ms):7.1f} {np.median(s.render_ms):7.1f} {int(ran.sum()):>8}")
        print("detector: background = on its own thread (as tracker.camera runs it), inline = in the "
              "loop. detect: median loop time over the frames that ran (or handed a frame to) the detector; "
              "landmk / render: median over all frames shown. Wall times grow when other jobs share the cores.")
    finally:
        background.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
