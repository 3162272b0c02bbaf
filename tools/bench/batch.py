"""Batch throughput: files/s and frames/s of `tracker.batch` for 1 and 2 workers and a local Ray.

USAGE
    python -m tools.bench.batch
    python -m tools.bench.batch --clips 8 --frames 60 --photos 16 --size 320x240 --repeat 3 \
        --json bench_batch.json

A library is cut from the bundled sample clip (tracker/data/sample.mp4): CLIPS
clips of FRAMES frames each (consecutive stretches of the sample, resized to
SIZE) and PHOTOS single frames as JPEG. Each configuration processes the whole
library into a fresh output folder with the default makeup look (or none with
--no-makeup) and the shipped demo model, and the wall time of the whole batch
is measured, worker start-up and model loading included (what a user waits
for). Before the runs, one in-process pass compiles or loads the Numba kernels.

Configurations: `workers=1`, `workers=2` (local processes), and `ray local`: a
local Ray with 2 CPUs, started anew before each timed run (its start-up time is
reported apart); skipped when Ray is not installed (pip install -e ".[ray]").
They take turns, round by round, and each run starts its workers afresh.

Reported per configuration: the median wall seconds over REPEAT runs, files/s,
frames/s (over all workers), and the speed-up against workers=1. On a machine
shared with other work the absolute figures move from run to run; the ratios
between configurations run back to back are the figures to read.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2

from tracker import batch
from tracker.sources import open_file as open_video

SAMPLE = Path(__file__).resolve().parents[2] / "tracker" / "data" / "sample.mp4"


def make_library(root: Path, clips: int, frames: int, photos: int, size: tuple[int, int]) -> int:
    """Write the clips and photos under root (clips/, photos/); -> total frames (a photo is one)."""
    with open_video(SAMPLE) as reader:
        sample = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in reader]
    (root / "clips").mkdir(parents=True)
    (root / "photos").mkdir()
    for i in range(clips):
        writer = cv2.VideoWriter(str(root / "clips" / f"clip{i:03d}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                 30.0, size)
        start = (i * frames) % max(1, len(sample) - frames)
        for frame in sample[start:start + frames]:
            writer.write(frame)
        writer.release()
    for i in range(photos):
        cv2.imwrite(str(root / "photos" / f"photo{i:03d}.jpg"), sample[(i * 7) % len(sample)])
    return clips * frames + photos


def _warm(library: Path) -> None:
    from tracker.makeup import DEFAULT_LOOK, load_look, render
    from tracker.tracking import Tracker

    image = cv2.imread(str(next((library / "photos").glob("*.jpg"))))
    with Tracker.from_weights(threads=1) as tracker:
        render(image, tracker.process(image), load_look(DEFAULT_LOOK))


def time_run(library: Path, out_root: Path, look, **where) -> tuple[float, list[dict]]:
    """Seconds of one whole batch into a fresh folder, and its rows."""
    out = Path(tempfile.mkdtemp(dir=out_root))
    start = time.perf_counter()
    rows = batch.run([library], out, look=look, **where)
    seconds = time.perf_counter() - start
    shutil.rmtree(out)
    return seconds, rows


def _ray_run(library: Path, work: Path, look) -> tuple[float, list[dict], float]:
    """One batch on a fresh local Ray (2 CPUs); -> seconds (Ray's start excluded), rows, Ray start s."""
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}})
    ray_start = time.perf_counter() - start
    try:
        seconds, rows = time_run(library, work, look, ray=True)
    finally:
        ray.shutdown()
    return seconds, rows, ray_start


def bench(library: Path, work: Path, repeat: int, look) -> list[dict]:
    """Median seconds, files/s, frames/s per configuration.

    The configurations take turns (round r starts at configuration r mod 3), so slow
    phases of other work on the machine spread over all of them; every run starts
    fresh worker processes (a new local Ray for each Ray run), so each pays its
    workers' model loading.
    """
    configs = {"workers=1": dict(workers=1), "workers=2": dict(workers=2)}
    try:
        import ray  # noqa: F401
        configs["ray local"] = None
    except ImportError:
        print("ray local: skipped (Ray is not installed)", file=sys.stderr)
    names = list(configs)
    runs: dict[str, list] = {name: [] for name in names}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if configs[name] is None:
                runs[name].append(_ray_run(library, work, look))
            else:
                runs[name].append((*time_run(library, work, look, **configs[name]), None))
    results = []
    for name in names:
        rows = runs[name][0][1]
        bad = [row for row in rows if row["status"] != "done"]
        if bad:
            raise RuntimeError(f"{name}: {len(bad)} inputs not done, e.g. {bad[0]['error']}")
        seconds = statistics.median(s for s, _, _ in runs[name])
        frames = sum(row["frames"] for row in rows)
        result = {"config": name, "files": len(rows), "frames": frames, "seconds": round(seconds, 2),
                  "all_seconds": [round(s, 2) for s, _, _ in runs[name]],
                  "files_per_s": round(len(rows) / seconds, 2), "frames_per_s": round(frames / seconds, 1)}
        if configs[name] is None:
            result["ray_start_s"] = round(statistics.median(x for _, _, x in runs[name]), 2)
        results.append(result)
    base = results[0]["seconds"]
    for result in results:
        result["speedup_vs_1"] = round(base / result["seconds"], 2)
    return results


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--photos", type=int, default=16)
    parser.add_argument("--size", type=_size, default=(320, 240), metavar="WxH")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (median)")
    parser.add_argument("--no-makeup", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    look = None if args.no_makeup else "default"
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "library"
        make_library(library, args.clips, args.frames, args.photos, args.size)
        _warm(library)
        results = bench(library, Path(tmp), args.repeat, look)
    w, h = args.size
    print(f"{args.clips} clips x {args.frames} frames + {args.photos} photos, {w}x{h}, "
          f"{'no makeup' if args.no_makeup else 'default look'}, {os.cpu_count()} cores; "
          f"median of {args.repeat}; whole batch incl. worker start-up")
    print(f"{'config':<10} {'seconds':>8} {'files/s':>8} {'frames/s':>9} {'vs 1':>6}")
    for r in results:
        extra = f"  (Ray start {r['ray_start_s']} s, not included)" if "ray_start_s" in r else ""
        extra = f"  runs {r['all_seconds']}{extra}"
        print(f"{r['config']:<10} {r['seconds']:>8.2f} {r['files_per_s']:>8.2f} {r['frames_per_s']:>9.1f} "
              f"{r['speedup_vs_1']:>5.2f}x{extra}")
    if args.json is not None:
        args.json.write_text(json.dumps({"clips": args.clips, "frames": args.frames, "photos": args.photos,
                                         "size": [w, h], "makeup": not args.no_makeup,
                                         "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
