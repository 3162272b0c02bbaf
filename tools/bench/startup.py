"""Start-up and embedding costs: import time, first frame (cold and warm Numba cache), memory,
per-face latency on both backends, and tracker speed on the NumPy backend.

    python -m tools.bench.startup                          # weights/demo.h5
    python -m tools.bench.startup --weights W.h5 --frames 30 --json startup.json
    python -m tools.bench.startup --per-face-only --threads 1 --runs 100

Every start-up number comes from a fresh interpreter (a subprocess), as a user or
a server would see it:

- import: `import tracker`, and every module a tracker with makeup needs;
- first frame: from `Tracker.from_weights(...)` to the first tracked and rendered
  frame of the sample clip, opened after building as the CLIs do, with a cold Numba
  cache (a new, empty NUMBA_CACHE_DIR: every kernel compiles) and with a warm one
  (the same folder again; median of --repeats interpreters); once more with the frame
  arriving after the tracker's background preparation (`tracker.startup`: Numba's
  set-up, the models' and the default look's kernels loaded) is done, as behind a
  camera's start-up; and with `Tracker.warmup()` called right
  after building, which moves the compile or cache-load cost to start-up and leaves
  the first frame at its steady-state cost;
- memory: resident set size after building and warming one tracker, beyond an
  interpreter with numpy, numba (initialised), OpenCV, h5py and the tracker
  modules loaded; and what a second tracker in the same process adds;
- per face: `Landmarker.run` on one face crop, numba vs numpy backend, both in one
  process with the same thread cap (--threads: Numba threads and BLAS threads), warmed
  up, taking turns call by call; medians of --runs calls each;
- tracker: frames/s over the first --frames frames of the sample clip, tracking
  only and tracking + makeup, on Numba, and on NumPy in a process where numba
  cannot be imported (the whole tracker then runs its NumPy code paths).

Without weights/demo.h5 it falls back to tests/fixtures/model_small.h5 (a 64 px
parity model) for a smoke run: those numbers show the harness works, not the
speed of the shipped model. Shared machines are noisy; compare ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "weights" / "demo.h5"
SMOKE = ROOT / "tests" / "fixtures" / "model_small.h5"
SAMPLE = ROOT / "tracker" / "data" / "sample.mp4"

TARGETS = {  # informative, from the Embedding issue and the Speed issue (first frames)
    "import_s": 1.0,          # import of tracker (everything a tracker with makeup needs)
    "warm_first_frame_s": 2.0,  # build + first frame, warm cache
    "warm_first_frame_ms": 100.0,  # the first frame alone (tracked and rendered), warm cache
    "cold_first_frame_s": 10.0,    # build + open + first frame, empty cache
    "rss_mb": 50.0,
    "numpy_over_numba": 5.0,  # per face
}

_PRELUDE = """
import json, os, sys, time
t_start = time.perf_counter()
"""

_IMPORT = _PRELUDE + """
import tracker
t_pkg = time.perf_counter()
import tracker.tracking, tracker.landmarks, tracker.detection, tracker.makeup, tracker.pipeline, tracker.io
t_all = time.perf_counter()
print(json.dumps({"package_s": t_pkg - t_start, "all_s": t_all - t_start}))
"""

_FIRST_FRAME = _PRELUDE + """
from tracker.sources import open_file as open_video
from tracker.makeup import load_look, render
from tracker.tracking import Tracker
import nnlite.jit
t_import = time.perf_counter()
weights, sample, mode = sys.argv[1], sys.argv[2], sys.argv[3]
look = load_look("natural")
t0 = time.perf_counter()
tracker = Tracker.from_weights(weights)
t_build = time.perf_counter() - t0
# The order of the CLIs: build the tracker, then open the source and read from it.
t_warmup = tracker.warmup() if mode == "warmup" else 0.0
t_ready = 0.0
if mode == "ready":  # the frame arrives once the background preparation is done
    t = time.perf_counter()
    prep = getattr(tracker, "preparation", None)  # tracker.startup; older trees: Numba's set-up only
    prep.finish() if prep is not None else getattr(nnlite.jit, "wait_compiler_init", lambda: True)()
    t_ready = time.perf_counter() - t
with open_video(sample) as reader:
    frames = [f for _, f in zip(range(2), reader)]
t_open = time.perf_counter() - t0 - t_build - t_warmup - t_ready
times, faces, track = [], [], []
for frame in frames:
    t = time.perf_counter()
    found = tracker.process(frame)
    t1 = time.perf_counter()
    render(frame, found, look)
    times.append(time.perf_counter() - t)
    track.append(t1 - t)
    faces.append(len(found))
print(json.dumps({"import_s": t_import - t_start, "build_s": t_build, "warmup_s": t_warmup,
                  "ready_s": t_ready, "open_s": t_open, "first_s": times[0], "first_track_s": track[0],
                  "second_s": times[1], "faces": faces}))
"""

_RSS = _PRELUDE + """
import gc
def rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak, KiB on Linux
import numpy, numba, cv2, h5py
numba.njit(lambda v: v + 1)(1)  # initialise numba's compiler and runtime
from tracker.tracking import Tracker
import tracker.makeup, tracker.pipeline
gc.collect()
base = rss_mb()
one = Tracker.from_weights(sys.argv[1]); one.warmup()
gc.collect()
first = rss_mb()
two = Tracker.from_weights(sys.argv[1]); two.warmup()
gc.collect()
second = rss_mb()
print(json.dumps({"base_mb": base, "first_tracker_mb": first - base, "next_tracker_mb": second - first}))
"""

_FPS = _PRELUDE + """
if sys.argv[3] == "numpy":
    sys.modules["numba"] = None  # the whole tracker on its NumPy code paths
import warnings
warnings.simplefilter("ignore")
from tracker.sources import open_file as open_video
from tracker.makeup import load_look, render
from tracker.tracking import Tracker
weights, sample, n = sys.argv[1], sys.argv[2], int(sys.argv[4])
with open_video(sample) as reader:
    frames = [f for _, f in zip(range(n), reader)]
tracker = Tracker.from_weights(weights)
tracker.warmup()
look = load_look("natural")
render(frames[0], tracker.process(frames[0]), look)  # warm the makeup kernels too
tracker.reset()
track_s = render_s = 0.0
with_faces = 0
for frame in frames:
    t = time.perf_counter()
    faces = tracker.process(frame)
    t1 = time.perf_counter()
    render(frame, faces, look)
    t2 = time.perf_counter()
    track_s += t1 - t
    render_s += t2 - t1
    with_faces += bool(faces)
print(json.dumps({"frames": len(frames), "with_faces": with_faces, "backend": tracker.landmarker.model.ops.name,
                  "track_fps": len(frames) / track_s, "track_render_fps": len(frames) / (track_s + render_s)}))
"""

_PER_FACE = _PRELUDE + """
# Both backends in one process, same crop, same thread cap: Numba's via threads=,
# BLAS's (the NumPy backend's matmuls) via OPENBLAS/OMP/MKL_NUM_THREADS, set by the
# parent before numpy is imported. After a warm-up the two take turns call by call,
# so load from other processes hits both alike; medians of the same number of calls.
import numpy as np
from tracker.detection import CascadeDetector
from tracker.geometry import box_to_crop
from tracker.sources import open_file as open_video
from tracker.landmarks import Landmarker
weights, sample, runs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open_video(sample) as reader:
    frame = next(iter(reader))
boxes = CascadeDetector().detect(frame)
lms = {b: Landmarker(weights, backend=b, threads=threads) for b in ("numba", "numpy")}
crop = box_to_crop(boxes[0].as_tuple(), lms["numba"].crop_scale) if boxes else None
if crop is None:
    from tracker.geometry import CropBox
    crop = CropBox(frame.shape[1] / 2, frame.shape[0] / 2, min(frame.shape[:2]) / 2)
for lm in lms.values():
    lm.warmup()
    for _ in range(5):
        lm.run(frame, [crop])
ts = {b: [] for b in lms}
for _ in range(runs):
    for b, lm in lms.items():
        t = time.perf_counter()
        lm.run(frame, [crop])
        ts[b].append(time.perf_counter() - t)
print(json.dumps({b: {"backend": b, "median_ms": 1000 * float(np.median(v)),
                      "p90_ms": 1000 * float(np.percentile(v, 90)), "runs": runs,
                      "threads": lms[b].threads, "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS")}
                  for b, v in ts.items()}))
"""


def _blas_env(threads: int) -> dict:
    """Environment that caps the BLAS/OpenMP pools of a fresh interpreter to `threads`."""
    return {name: str(threads) for name in
            ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


_CODE_ROOT = ROOT  # where the subprocesses import nnlite and tracker from (see --no-snapshot)


def _snapshot_sources(dest: Path) -> Path:
    """Copy the runtime packages (and weights/, setup.py, so resources resolve) to `dest`."""
    shutil.copy2(ROOT / "setup.py", dest)
    for folder in ("nnlite", "tracker", "weights"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _run(code: str, args: list[str], env_extra: dict | None = None, timeout: float = 600) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "NNLITE_BACKEND"}
    env["PYTHONPATH"] = str(_CODE_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=_CODE_ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _sources_state() -> dict:
    """mtime of every runtime source file: an edit during the run invalidates cache timings."""
    return {str(p.relative_to(ROOT)): p.stat().st_mtime_ns
            for pkg in ("nnlite", "tracker") for p in (ROOT / pkg).rglob("*.py")}


def _median_of(runs: int, code: str, args: list[str], key: str, env_extra=None) -> dict:
    results = [_run(code, args, env_extra) for _ in range(runs)]
    results.sort(key=lambda r: r[key])
    return results[len(results) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, default=None,
                    help="landmark model (default weights/demo.h5; falls back to the small test model)")
    ap.add_argument("--frames", type=int, default=30, help="frames of the sample clip for the fps runs")
    ap.add_argument("--runs", type=int, default=50, help="timed calls per backend for the per-face latency")
    ap.add_argument("--threads", type=int, default=None,
                    help="thread cap of both backends for the per-face latency: Numba threads and "
                         "BLAS threads alike (default: nnlite's default, one core fewer than available)")
    ap.add_argument("--per-face-only", action="store_true",
                    help="only the per-face latency of both backends (with the usual Numba cache)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="fresh interpreters for the import time and each warm-cache first frame (median)")
    ap.add_argument("--first-frame-only", action="store_true",
                    help="only the first-frame times (cold and warm cache), not import, memory and speed")
    ap.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    ap.add_argument("--no-snapshot", action="store_true",
                    help="run the working tree itself (default: a copy taken at the start, so edits made "
                         "while the benchmark runs cannot invalidate the cache timings)")
    args = ap.parse_args(argv)

    weights = args.weights or (DEMO if DEMO.is_file() else SMOKE)
    smoke = weights.resolve() == SMOKE.resolve()
    if not weights.is_file():
        print(f"error: weights not found: {weights}", file=sys.stderr)
        return 2
    if smoke:
        print(f"SMOKE RUN: {DEMO} does not exist, using the 64 px parity model {SMOKE}; "
              "these numbers check the harness, they are not the shipped model's speed.\n")
    w, s = str(weights.resolve()), str(SAMPLE)
    from nnlite.jit import resolve_threads

    threads = resolve_threads(args.threads)
    out = {"weights": w, "smoke_run": smoke, "targets": TARGETS}

    global _CODE_ROOT
    sources = _sources_state()
    load_before = _load_average()
    with tempfile.TemporaryDirectory(prefix="nnlite-bench-") as scratch:
        if not args.no_snapshot:
            _CODE_ROOT = _snapshot_sources(Path(scratch))
        if args.per_face_only:  # the user's Numba cache: nothing to time but the calls
            out["per_face"] = _run(_PER_FACE, [w, s, str(args.runs), str(threads)],
                                   _blas_env(threads))
            print(f"weights: {w}")
            print(_per_face_line(out["per_face"], threads))
            _write_json(args.json, out)
            return 0
        cache = str(Path(scratch) / "numba-cache")
        env = {"NUMBA_CACHE_DIR": cache}
        out["cold"] = _run(_FIRST_FRAME, [w, s, "plain"], env)
        # Fresh interpreters on the same (now warm) cache; medians by first-frame time.
        out["warm"] = _median_of(args.repeats, _FIRST_FRAME, [w, s, "plain"], "first_s", env)
        out["warm_ready"] = _median_of(args.repeats, _FIRST_FRAME, [w, s, "ready"], "first_s", env)
        out["warm_warmup"] = _median_of(args.repeats, _FIRST_FRAME, [w, s, "warmup"], "first_s", env)
        if not args.first_frame_only:
            out["import"] = _median_of(args.repeats, _IMPORT, [], "all_s")
            out["rss"] = _run(_RSS, [w], env)
            out["per_face"] = _run(_PER_FACE, [w, s, str(args.runs), str(threads)],
                                   {**env, **_blas_env(threads)})
            out["fps"] = {b: _run(_FPS, [w, s, b, str(args.frames)], env) for b in ("numba", "numpy")}

    cold, warm, ready, ww = out["cold"], out["warm"], out["warm_ready"], out["warm_warmup"]
    warm_first = warm["build_s"] + warm["open_s"] + warm["first_s"]
    out["summary"] = {"warm_first_frame_s": warm_first, "warm_first_frame_ms": 1000 * warm["first_s"],
                      "ready_first_frame_ms": 1000 * ready["first_s"],
                      "cold_first_frame_s": cold["build_s"] + cold["open_s"] + cold["first_s"],
                      "load_average": [load_before, _load_average()]}

    def verdict(key):
        target = TARGETS.get(key, TARGETS["warm_first_frame_ms"] if key.endswith("_ms") else None)
        return "ok" if out["summary"][key] <= target else "MISSED"

    print(f"weights: {w}")
    print(f"load average (1 min) {load_before:.2f} at the start, {out['summary']['load_average'][1]:.2f} at the end "
          f"({os.cpu_count()} CPUs): other processes slow every number down")
    for name, r in (("cold cache", cold), ("warm cache", warm)):
        print(f"first frame, {name}: build {r['build_s']:.2f} s + open the clip {r['open_s']:.2f} s + first frame "
              f"{r['first_s']:.2f} s (tracking {r['first_track_s']:.2f} s) = "
              f"{r['build_s'] + r['open_s'] + r['first_s']:.2f} s (second frame {1000 * r['second_s']:.0f} ms, "
              f"faces {r['faces']})")
    print(f"  cold cache, build to first frame       {out['summary']['cold_first_frame_s']:7.2f} s   "
          f"target <= {TARGETS['cold_first_frame_s']:.0f} s: {verdict('cold_first_frame_s')}")
    print(f"  warm cache, build to first frame       {warm_first:7.2f} s   target < {TARGETS['warm_first_frame_s']} s: "
          f"{verdict('warm_first_frame_s')}")
    print(f"  warm cache, first frame right after building and opening the clip {1000 * warm['first_s']:6.0f} ms   "
          f"target <= {TARGETS['warm_first_frame_ms']:.0f} ms: {verdict('warm_first_frame_ms')}")
    print(f"  warm cache, first frame once the background preparation is done (it took {ready['ready_s']:.2f} s "
          f"after building; a camera's start-up usually takes longer) {1000 * ready['first_s']:6.0f} ms   "
          f"target <= {TARGETS['warm_first_frame_ms']:.0f} ms: {verdict('ready_first_frame_ms')} "
          f"(tracking {1000 * ready['first_track_s']:.0f} ms)")
    print(f"with Tracker.warmup() (warm cache): build {ww['build_s']:.2f} s, warmup {ww['warmup_s']:.2f} s, "
          f"first frame {1000 * ww['first_s']:.0f} ms")
    if args.first_frame_only:
        _write_json(args.json, out)
        return 0
    imp, rss, pf, fps = out["import"], out["rss"], out["per_face"], out["fps"]
    out["summary"].update({"import_s": imp["all_s"], "rss_mb": rss["first_tracker_mb"],
                           "numpy_over_numba": pf["numpy"]["median_ms"] / pf["numba"]["median_ms"]})
    print(f"import tracker (package only)           {imp['package_s']:7.3f} s")
    print(f"import tracker + modules of a tracker   {imp['all_s']:7.3f} s   target < {TARGETS['import_s']} s: "
          f"{verdict('import_s')}")
    print(f"RSS: interpreter + libraries {rss['base_mb']:.0f} MB; first tracker +{rss['first_tracker_mb']:.1f} MB "
          f"(target < {TARGETS['rss_mb']:.0f} MB: {verdict('rss_mb')}); each further tracker "
          f"+{rss['next_tracker_mb']:.1f} MB")
    print(_per_face_line(pf, threads))
    for b in ("numba", "numpy"):
        r = fps[b]
        label = "numba" if b == "numba" else "numpy, numba not importable"
        print(f"tracker fps ({label}): {r['track_fps']:.1f} tracking, {r['track_render_fps']:.1f} with makeup "
              f"({r['frames']} frames, faces in {r['with_faces']})")
    changed = sorted(k for k, v in _sources_state().items() if sources.get(k) != v)
    out["sources_changed_during_run"] = changed
    if changed and args.no_snapshot:
        print(f"WARNING: source files changed during the run ({', '.join(changed)}); Numba recompiles "
              "edited modules, so the warm-cache numbers are not valid: run again.")
    _write_json(args.json, out)
    return 0


def _per_face_line(pf: dict, threads: int) -> str:
    """The per-face comparison of both backends, with its verdict against the target."""
    ratio = pf["numpy"]["median_ms"] / pf["numba"]["median_ms"]
    verdict = "ok" if ratio < TARGETS["numpy_over_numba"] else "MISSED"
    return (f"per face (Landmarker.run, median of {pf['numba']['runs']} calls each, taking turns; "
            f"{threads} Numba thread(s), {threads} BLAS thread(s)): numba {pf['numba']['median_ms']:.2f} ms, "
            f"numpy {pf['numpy']['median_ms']:.2f} ms = {ratio:.1f}x (target < {TARGETS['numpy_over_numba']:.0f}x: "
            f"{verdict})")


def _load_average() -> float:
    """The 1-minute load average (0.0 where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def _write_json(path, out: dict) -> None:
    if path is not None:
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
