"""Time `tracker.makeup.render` of several checkouts side by side, in one process, calls
alternating, so that a loaded machine slows them all alike and their ratios hold.

USAGE
    git worktree add --detach ../before main           # the version to compare against
    python -m tools.bench.makeup_versions before=../before now=. [--look natural bold] [--runs 250]
    python -m tools.bench.makeup_versions before=../before now=. --steps --look bold

Each NAME=PATH is a checkout of this repository: its `tracker`, `nnlite` and `tools` packages
are imported in turn from that folder (the modules of one are set aside before the next is
imported; each keeps its own functions and globals) and `render` of each is called on the same frame and
landmarks (the synthetic face of `tools.bench.makeup`, iod 110 px, 640x480), one call of
each in turn, --runs times after warm-up. Printed per look: minimum, 25th percentile and
median ms of CPU time of this thread per version, and every version's 25th percentile over
the first's (the percentile is the robust figure on a shared machine: the median moves with
other jobs, the minimum with luck). --steps prints instead the step table of each version's
`tools.bench.makeup.render_steps` (curves, masks, blends, Lab conversions, mouth guard,
light), the same way. Run with NUMBA_NUM_THREADS=1 for one core.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

PACKAGES = ("tracker", "nnlite", "tools")


def load_version(path: Path):
    """(render, load_look, synthetic_frame, render_steps) of the checkout at `path`.

    Its top-level packages are found in `path` alone (`PathFinder` with that one folder, not
    sys.path) and put in sys.modules, so their submodules come from the same checkout.
    """
    for name in [m for m in sys.modules if m.split(".")[0] in PACKAGES]:
        del sys.modules[name]
    for name in PACKAGES:
        spec = importlib.machinery.PathFinder.find_spec(name, [str(path)])
        if spec is None:
            raise SystemExit(f"{path}: no package {name!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    makeup = importlib.import_module("tracker.makeup")
    bench = importlib.import_module("tools.bench.makeup")
    return makeup.render, makeup.load_look, bench.synthetic_frame, bench.render_steps


def print_steps(versions, frame, pts, look_name, runs) -> int:
    """Median ms of CPU time per step of each version's `render_steps`, calls alternating."""
    looks = {v: version[1](look_name) for v, version in versions.items()}
    steps = {v: {} for v in versions}
    for i in range(runs + 10):
        for v, version in versions.items():
            for key, sec in version[3](frame, pts, looks[v])[1].items():
                if i >= 10:  # warm-up
                    steps[v].setdefault(key, []).append(1e3 * sec)
    keys = list(dict.fromkeys(k for v in versions for k in steps[v]))
    print(f"steps of {look_name}, median ms of CPU time over {runs} alternating runs:")
    print(f"{'step':<24}" + "".join(f"{v:>10}" for v in versions))
    for key in keys + ["sum"]:
        name = " ".join(key) if isinstance(key, tuple) else key
        cells = [sum(np.median(t) for t in steps[v].values()) if key == "sum" else
                 np.median(steps[v][key]) if key in steps[v] else float("nan") for v in versions]
        print(f"{name:<24}" + "".join(f"{c:10.3f}" for c in cells))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("versions", nargs="+", help="NAME=PATH of a checkout (two or more)")
    ap.add_argument("--look", nargs="+", default=["natural", "bold"])
    ap.add_argument("--runs", type=int, default=250)
    ap.add_argument("--steps", action="store_true",
                    help="instead: the step table of tools.bench.makeup per version (first look)")
    args = ap.parse_args(argv)
    versions = {}
    for spec in args.versions:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path, "tracker", "makeup.py").is_file():
            ap.error(f"{spec!r}: expected NAME=PATH of a checkout with tracker/makeup.py")
        versions[name] = load_version(Path(path).resolve())
    frame, pts = next(iter(versions.values()))[2](110.0)
    if args.steps:
        return print_steps(versions, frame, pts, args.look[0], args.runs)
    print(f"render() of {', '.join(versions)}: synthetic face, iod 110 px, 640x480, "
          f"{args.runs} alternating calls each after warm-up, ms of CPU time")
    first = next(iter(versions))
    for look_name in args.look:
        looks = {v: version[1](look_name) for v, version in versions.items()}
        for v, (render, *_) in versions.items():
            for _ in range(10):
                render(frame, [pts], looks[v])
        times = {v: [] for v in versions}
        for _ in range(args.runs):
            for v, (render, *_) in versions.items():
                t0 = time.thread_time()
                render(frame, [pts], looks[v])
                times[v].append(1e3 * (time.thread_time() - t0))
        p25 = {v: float(np.percentile(t, 25)) for v, t in times.items()}
        cells = [f"{v} min {min(t):.2f} p25 {p25[v]:.2f} median {np.median(t):.2f}"
                 for v, t in times.items()]
        ratios = [f"{v}/{first} {p25[v] / p25[first]:.3f}" for v in versions if v != first]
        print(f"{look_name:<8} " + "  ".join(cells) + "  | " + "  ".join(ratios))
    return 0


if __name__ == "__main__":
    sys.exit(main())
