"""Per-face latency of the landmark model: nnlite vs NumPy reference vs ONNX Runtime vs PyTorch.

    python -m tools.bench                         # weights/demo.h5, 1 and 2 threads
    python -m tools.bench --weights weights/full.h5 --runs 200 --json bench.json

All runtimes run the same exported weights (PyTorch and ONNX Runtime get a model
rebuilt from the HDF5 file) on the same batch-1 input, one after another in one
process: warm-up, then the median (and 90th percentile) of --runs calls.
Machines are shared and noisy: compare the ratios, not the absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _time(fn, runs, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts = np.array(ts) * 1000
    return {"median_ms": float(np.median(ts)), "p90_ms": float(np.percentile(ts, 90)),
            "runs": runs}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="weights/demo.h5")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--skip", nargs="*", default=[], help="runtimes to skip: numpy ort torch")
    ap.add_argument("--json", default="bench.json")
    args = ap.parse_args(argv)

    import numba
    import torch
    from threadpoolctl import threadpool_limits

    from nnlite.model import TwoStageModel, count_macs
    from tools.export import model_from_weights

    path = Path(args.weights)
    nn_numba = TwoStageModel.load(path, backend="numba")
    nn_numpy = TwoStageModel.load(path, backend="numpy")
    cfg = nn_numba.config
    s = nn_numba.input_size
    x = np.random.default_rng(0).normal(0, 1, (1, s, s, 3)).astype(np.float32)
    tmodel = model_from_weights(path)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    tmodel_cl = model_from_weights(path).to(memory_format=torch.channels_last)
    xt_cl = xt.contiguous(memory_format=torch.channels_last)

    runtimes = {"nnlite (numba)": lambda: nn_numba.forward(x)}
    if "numpy" not in args.skip:
        runtimes["nnlite (numpy ref)"] = lambda: nn_numpy.forward(x)
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
            for name, fn in runtimes.items():
                if name == "ONNX Runtime":
                    sess = sessions[t]
                    fn = (lambda sess=sess: sess.run(None, {"x": xo}))
                results[(name, t)] = _time(fn, args.runs, args.warmup)

    params = sum(int(np.prod(a.shape)) for a in
                 __import__("nnlite.weights", fromlist=["load"]).load(path)[1].values())
    macs = count_macs(cfg)
    size_kb = path.stat().st_size / 1024
    print(f"machine: {machine()}")
    print(f"model: {path} ({cfg.get('name')}): {params:,} params, {macs / 1e6:.1f}M multiply-adds, "
          f"file {size_kb:.0f} KB; batch 1, input {s}x{s}; median of {args.runs} runs "
          f"after {args.warmup} warm-up")
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
    out = {"machine": machine(), "weights": str(path), "params": params, "macs": macs,
           "file_kb": size_kb, "runs": args.runs, "warmup": args.warmup,
           "results": [{"runtime": n, "threads": t, **r} for (n, t), r in results.items()]}
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(f"saved {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
