"""Per-face latency of the landmark model: nnlite (Numba, NumPy backend) vs ONNX Runtime vs PyTorch.

    python -m tools.bench.runtimes                         # weights/demo.h5, 1 and 2 threads
    python -m tools.bench.runtimes --weights weights/full.h5 --runs 200 --json bench.json
    python -m tools.bench.runtimes --random full --threads 1 2   # random weights, full-size config
    python -m tools.bench.runtimes --layers --threads 1    # + nnlite layer by layer, vs matmul peak
    python -m tools.bench.runtimes --layers --no-table     # only the layer profile (no torch needed)

All runtimes run the same exported weights (PyTorch and ONNX Runtime get a model
rebuilt from the HDF5 file) on the same batch-1 input in one process. After a
warm-up the runtimes take turns in blocks of --block calls (default 10, each
block led by one untimed call), so a burst of load from another process hits them
all alike while each runtime is timed in its steady state. ONNX Runtime's workers
spin for ~40 ms after each call and hold the second core that a 2-thread nnlite call
waits for: --settle 50 sleeps that long after each block (but then every block
starts on idle cores, whose first calls are slow on a VM); taking turns call by call
(--block 1) times each call right after another runtime's; --sequential runs each
runtime's calls back to back. The table gives the median (and the file the 10th and 90th
percentiles) of --runs calls each. Machines are shared and noisy: compare the
ratios, not the absolute times.

Without the weights file (e.g. no trained weights/demo.h5 yet), or with
--random CONFIG, a model of that config (tools.landmarks.config: demo, lite or full)
with random weights and batch-norm statistics is exported to a temporary file
and benchmarked instead; speed does not depend on the weight values.

--layers times nnlite's forward pass step by step (TwoStageModel.profile:
median per step over --runs passes) and prints multiply-adds, achieved GFLOP/s
and the share of the machine's peak: the best GFLOP/s of a large float32 matmul
(NumPy's BLAS) on the same thread count, measured in the same process. It also
prints the ceiling of nnlite's own GEMM micro-kernel on L1-resident data. Small
steps suffer most from other processes sharing the cores (their caches are cold
after a preemption), so on a loaded machine compare the big layers.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.common import machine


def _stats(ts_ms) -> dict:
    ts = np.asarray(ts_ms)
    return {"median_ms": float(np.median(ts)), "p10_ms": float(np.percentile(ts, 10)),
            "p90_ms": float(np.percentile(ts, 90)), "runs": int(ts.size)}


def _time_interleaved(fns: dict, runs: int, warmup: int, sequential: bool = False,
                      block: int = 1, settle: float = 0.0) -> dict:
    """Median etc. of `runs` timed calls of each callable, after a warm-up.

    Calls take turns in blocks: `block` consecutive calls of one callable, then the
    next's. In a block of more than one call, one extra untimed call leads the
    block: it is where the previous runtime's threads and cache contents are still in
    the way. ``settle`` seconds of sleep end each block, so the next runtime does not
    share the cores with the last one's spinning workers (ONNX Runtime's spin for ~40
    ms after a call; a 2-thread nnlite call then waits for its second core). With
    ``sequential`` each callable's warm-up and runs go back to back instead.
    """
    ts = {name: [] for name in fns}
    if sequential:
        for name, fn in fns.items():
            for _ in range(warmup):
                fn()
            for _ in range(runs):
                t0 = time.perf_counter()
                fn()
                ts[name].append((time.perf_counter() - t0) * 1000)
        return {name: _stats(v) for name, v in ts.items()}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    block = max(1, int(block))
    while len(next(iter(ts.values()))) < runs:
        for name, fn in fns.items():
            if block > 1:
                fn()
            for _ in range(min(block, runs - len(ts[name]))):
                t0 = time.perf_counter()
                fn()
                ts[name].append((time.perf_counter() - t0) * 1000)
            if settle:
                time.sleep(settle)
    return {name: _stats(v) for name, v in ts.items()}


def random_weights(config_name: str, seed: int = 0) -> Path:
    """Export a model of config `config_name` ("demo", "lite" or "full") with random weights to a temp file."""
    from tools.landmarks import config as landmark_config
    from tools.landmarks.export import folded_arrays, write_weights
    from tools.fixtures.make_model_fixtures import random_model

    cfg = getattr(landmark_config, f"{config_name}_config")()
    path = Path(tempfile.mkdtemp()) / f"{config_name}_random.h5"
    write_weights(path, cfg, folded_arrays(random_model(cfg, seed)),
                  {"purpose": "benchmark, random weights"})
    return path


def matmul_peak_gflops(threads: int, n: int = 1024, repeats: int = 15) -> float:
    """Best GFLOP/s of an n x n float32 matmul (NumPy's BLAS) on `threads` threads."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    best = np.inf
    with threadpool_limits(limits=threads):
        a @ b
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best / 1e9


def gemm_kernel_gflops(repeats: int = 15) -> float:
    """Best GFLOP/s of nnlite's register-tiled GEMM on L1-resident data (one thread).

    (256 x 64) @ (64 x 48) with bias, 50 times per timed call inside Numba: the
    micro-kernel's own ceiling, a second reference next to the BLAS matmul peak.
    """
    from nnlite.jit import njit
    from nnlite.kernels.gemm import gemm_rows_nb, pack_matrix

    @njit
    def loop(a, w, b, lo, hi, out, n):
        for _ in range(n):
            gemm_rows_nb(a, w, b, lo, hi, out)

    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 64), dtype=np.float32)
    w8, b8 = pack_matrix(rng.standard_normal((64, 48), dtype=np.float32))
    out = np.empty((256, 48), np.float32)
    lo, hi = np.float32(-np.inf), np.float32(np.inf)
    loop(a, w8, b8, lo, hi, out, 1)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop(a, w8, b8, lo, hi, out, 50)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * 256 * 64 * 48 * 50 / best / 1e9


def step_shapes(model, x_shape) -> dict:
    """Output shape of each profiled step of a TwoStageModel (names as in profile)."""
    shapes = {}
    shape = shapes["stem"] = model.stem.out_shape(x_shape)
    for i, block in enumerate(model.blocks):
        shape = shapes[f"blocks.{i}"] = block.out_shape(shape)
        if i == model.branch_block:
            branch = shape
    shapes["heatmap"] = model.heatmap.out_shape(shape)
    n, k = x_shape[0], model.num_keypoints
    shapes["soft_argmax"] = (n, k, 2)
    shape = branch
    for i, conv in enumerate(model.refine_convs):
        shape = shapes[f"refine_convs.{i}"] = conv.out_shape(shape)
    r = model.roi_size
    shapes["roi_align+refine"] = (n, r, r, k)
    shapes["soft_argmax (refine)"] = (n, k, 2)
    shapes["confidence"] = (n, k)
    return shapes


def layer_profile(model, x, runs: int, warmup: int) -> list[dict]:
    """Median time per forward step over `runs` profiled passes, with MACs and shapes."""
    from nnlite.model import layer_macs

    for _ in range(warmup):
        model.profile(x)
    passes = [model.profile(x) for _ in range(runs)]
    names = [name for name, _ in passes[0]]
    times = np.array([[t for _, t in p] for p in passes]) * 1000
    macs = dict(layer_macs(model.config))
    shapes = step_shapes(model, x.shape)
    return [{"step": name, "shape": list(shapes.get(name, ())), "macs": macs.get(name, 0),
             "median_ms": float(np.median(times[:, i])), "p10_ms": float(np.percentile(times[:, i], 10))}
            for i, name in enumerate(names)]


def print_layer_table(rows: list[dict], threads: int, peak: float, forward_ms: float,
                      kernel_peak: float) -> None:
    total = sum(r["median_ms"] for r in rows)
    print(f"\nnnlite layer by layer, {threads} thread(s); matmul peak {peak:.1f} GFLOP/s "
          f"(NumPy float32 1024^3, best of 15); nnlite GEMM tile in L1 {kernel_peak:.1f} GFLOP/s "
          f"(1 thread); forward median {forward_ms:.2f} ms")
    print(f"{'step':22s}{'output':>17s}{'MACs (M)':>10s}{'ms':>9s}{'share':>7s}"
          f"{'GFLOP/s':>9s}{'% peak':>8s}{'% tile':>8s}")
    for r in rows:
        gf = 2 * r["macs"] / (r["median_ms"] * 1e6) if r["macs"] else 0.0
        shape = "x".join(str(d) for d in r["shape"])
        gf_s = (f"{gf:9.1f}{100 * gf / peak:7.0f}%{100 * gf / kernel_peak / threads:7.0f}%"
                if r["macs"] else f"{'-':>9s}{'-':>8s}{'-':>8s}")
        print(f"{r['step']:22s}{shape:>17s}{r['macs'] / 1e6:10.2f}{r['median_ms']:9.3f}"
              f"{100 * r['median_ms'] / total:6.1f}%{gf_s}")
    macs = sum(r["macs"] for r in rows)
    gf = 2 * macs / (total * 1e6)
    print(f"{'sum of step medians':22s}{'':>17s}{macs / 1e6:10.2f}{total:9.3f}{100.0:6.1f}%"
          f"{gf:9.1f}{100 * gf / peak:7.0f}%{100 * gf / kernel_peak / threads:7.0f}%")
    print("% peak: of the matmul peak at this thread count; % tile: of the GEMM tile's "
          "1-thread ceiling times the thread count")
    print(f"compute floor at the matmul peak: {2 * macs / (peak * 1e6):.2f} ms")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/demo.h5")
    ap.add_argument("--random", choices=["demo", "lite", "full"], default=None,
                    help="benchmark random weights of this config instead of --weights "
                         "(default when --weights does not exist: demo)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip", nargs="*", default=[], help="runtimes to skip: numpy ort torch")
    ap.add_argument("--layers", action="store_true",
                    help="also profile nnlite layer by layer against the matmul peak")
    ap.add_argument("--no-table", action="store_true",
                    help="skip the side-by-side runtime table (with --layers: profile only)")
    ap.add_argument("--block", type=int, default=10,
                    help="consecutive timed calls per runtime per turn (1: call by call)")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="milliseconds of sleep after each block (e.g. 50, longer than ONNX "
                         "Runtime's workers spin; default 0: none)")
    ap.add_argument("--sequential", action="store_true",
                    help="time each runtime's calls back to back (warm caches) instead of "
                         "round-robin")
    ap.add_argument("--json", default="bench.json")
    args = ap.parse_args(argv)

    import numba
    from threadpoolctl import threadpool_limits

    from nnlite.model import TwoStageModel, count_macs

    path = Path(args.weights)
    source = str(path)
    if args.random or not path.exists():
        name = args.random or "demo"
        if not args.random:
            print(f"{path} not found: benchmarking random weights of the {name} config")
        path = random_weights(name)
        source = f"random weights, {name} config"
    n_threads = max(args.threads)
    nn_numba = TwoStageModel.load(path, backend="numba", threads=n_threads)
    cfg = nn_numba.config
    s = nn_numba.input_size
    x = np.random.default_rng(0).normal(0, 1, (1, s, s, 3)).astype(np.float32)
    params = sum(int(np.prod(a.shape)) for a in
                 __import__("nnlite.weights", fromlist=["load"]).load(path)[1].values())
    macs = count_macs(cfg)
    size_kb = path.stat().st_size / 1024
    print(f"machine: {machine()}")
    print(f"model: {source} ({cfg.get('name')}): {params:,} params, {macs / 1e6:.1f}M "
          f"multiply-adds, file {size_kb:.0f} KB; batch 1, input {s}x{s}")
    out = {"machine": machine(), "weights": source, "params": params, "macs": macs,
           "file_kb": size_kb, "runs": args.runs, "warmup": args.warmup}

    if not args.no_table:
        out["results"] = side_by_side(args, nn_numba, path, x)
    if args.layers:
        out["layers"] = {}
        numba.set_num_threads(1)
        kernel_peak = gemm_kernel_gflops()
        out["gemm_kernel_gflops_1thread"] = kernel_peak
        for t in args.threads:
            numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
            with threadpool_limits(limits=t):
                peak = matmul_peak_gflops(t)
                fwd = _time_interleaved({"f": lambda: nn_numba.forward(x)}, args.runs,
                                        args.warmup)["f"]["median_ms"]
                rows = layer_profile(nn_numba, x, args.runs, args.warmup)
            print_layer_table(rows, t, peak, fwd, kernel_peak)
            out["layers"][str(t)] = {"matmul_peak_gflops": peak, "forward_median_ms": fwd,
                                     "steps": rows}
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"saved {args.json}")
    return 0


def side_by_side(args, nn_numba, path, x) -> list[dict]:
    """The runtime table: nnlite (Numba, NumPy), ONNX Runtime, PyTorch; prints it, returns rows."""
    import numba
    import torch
    from threadpoolctl import threadpool_limits

    from nnlite.model import TwoStageModel
    from tools.landmarks.export import model_from_weights

    nn_numpy = TwoStageModel.load(path, backend="numpy")
    tmodel = model_from_weights(path)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    tmodel_cl = model_from_weights(path).to(memory_format=torch.channels_last)
    xt_cl = xt.contiguous(memory_format=torch.channels_last)

    runtimes = {"nnlite (numba)": lambda: nn_numba.forward(x)}
    if "numpy" not in args.skip:
        runtimes["nnlite (numpy backend)"] = lambda: nn_numpy.forward(x)
    sessions = {}
    if "ort" not in args.skip:
        import onnxruntime as ort

        class Wrap(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                o = self.m(x)
                return o["coarse"], o["refined"], o["heatmaps"], o["refine_heatmaps"]

        onnx_path = Path(tempfile.mkdtemp()) / "model.onnx"
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Wrap(tmodel), (xt,), str(onnx_path), dynamo=False,
                              opset_version=17, input_names=["x"])
        xo = xt.numpy()
        for t in args.threads:
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            sessions[t] = ort.InferenceSession(str(onnx_path), so,
                                               providers=["CPUExecutionProvider"])
        runtimes["ONNX Runtime"] = None  # bound per thread count below
        check = sessions[args.threads[0]].run(None, {"x": xo})[1]
        ort_err = float(np.abs(check - nn_numba.forward(x).refined).max())
    if "torch" not in args.skip:
        def torch_eager():
            with torch.no_grad():
                tmodel(xt)

        def torch_cl():
            with torch.no_grad():
                tmodel_cl(xt_cl)
        runtimes["PyTorch eager"] = torch_eager
        runtimes["PyTorch channels_last"] = torch_cl

    results = {}
    for t in args.threads:
        numba.set_num_threads(min(t, numba.config.NUMBA_NUM_THREADS))
        torch.set_num_threads(t)
        with threadpool_limits(limits=t):
            fns = {name: (fn if name != "ONNX Runtime" else
                          (lambda sess=sessions[t]: sess.run(None, {"x": xo})))
                   for name, fn in runtimes.items()}
            for name, r in _time_interleaved(fns, args.runs, args.warmup, args.sequential,
                                             args.block, args.settle / 1000.0).items():
                results[(name, t)] = r

    order = ("back to back" if args.sequential else
             f"taking turns in blocks of {args.block}" if args.block > 1 else "taking turns call by call")
    if not args.sequential and args.settle:
        order += f", {args.settle:g} ms apart"
    print(f"side by side: median of {args.runs} calls each, {order}, after "
          f"{args.warmup} warm-up")
    if "ort" not in args.skip:
        print(f"ONNX Runtime vs nnlite max |refined difference|: {ort_err:.2e} px")
    head = f"{'runtime':24s}" + "".join(f"{f'{t} thr ms':>11s}{'ratio':>8s}" for t in args.threads)
    print(head)
    for name in runtimes:
        row = f"{name:24s}"
        for t in args.threads:
            r = results[(name, t)]
            base = results[("nnlite (numba)", t)]["median_ms"]
            row += f"{r['median_ms']:11.2f}{r['median_ms'] / base:8.2f}"
        print(row)
    print("ratio = runtime's median / nnlite (numba) median at the same thread count")
    if len(args.threads) > 1:
        t0, t1 = args.threads[0], args.threads[-1]
        speedups = ", ".join(
            f"{name} {results[(name, t0)]['median_ms'] / results[(name, t1)]['median_ms']:.2f}x"
            for name in runtimes)
        print(f"speed-up {t1} vs {t0} threads: {speedups}")
        ratios = ", ".join(
            f"{name} {results[(name, t1)]['median_ms'] / results[(name, t0)]['median_ms']:.2f}"
            for name in runtimes)
        target = "; target for nnlite (numba), demo model: <= 0.60" if (t0, t1) == (1, 2) else ""
        print(f"time ratio {t1}-thread / {t0}-thread: {ratios}{target}")
    return [{"runtime": n, "threads": t, **r} for (n, t), r in results.items()]


if __name__ == "__main__":
    sys.exit(main())
