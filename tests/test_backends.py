"""Backends: the Numba kernels and the NumPy references as two complete, interchangeable sets.

- every op of `nnlite.backend.OPS`, called through `get_backend("numba")` and
  `get_backend("numpy")`, gives the same result (atol/rtol 1e-4: float32 sums in
  different orders) and the same validation errors;
- the choice: argument, then NNLITE_BACKEND, then Numba when importable;
- without Numba (a subprocess where `import numba` fails): one warning, the NumPy
  backend, the stored PyTorch outputs of the full model, and the whole tracker
  (cascade detector, landmarks, makeup) running on NumPy code paths;
- the tracker-side fallbacks (cascade scan, blending) match their Numba kernels.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from nnlite import backend as nb_backend
from nnlite.backend import OPS, get_backend, resolve_backend
from tests.helpers import random_arrays

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"
SAMPLE = ROOT / "tracker" / "data" / "sample.mp4"
ATOL = RTOL = 1e-4


def _op_cases():
    """(op, args) per op of OPS: odd sizes, stride 1 and 2, padding, batch > 1, groups."""
    rng = np.random.default_rng(5)
    x, w, b = random_arrays([(3, 9, 7, 6), (3, 3, 6, 8), (8,)], seed=1)
    (w_grp,) = random_arrays([(3, 3, 2, 9)], seed=2)
    x_pw, w_pw, b_pw = random_arrays([(2, 5, 7, 12), (12, 5), (5,)], seed=3)
    ir = random_arrays([(2, 9, 7, 6), (6, 24), (24,), (3, 3, 24), (24,), (24, 6), (6,)], seed=4,
                       scale=0.3)
    ir_s2 = random_arrays([(1, 9, 11, 6), (6, 12), (12,), (3, 3, 12), (12,), (12, 8), (8,)],
                          seed=6, scale=0.3)
    (feat,) = random_arrays([(2, 11, 13, 5)], seed=7)
    pts = rng.uniform(-2, 12, (7, 4))
    rois = np.concatenate([rng.integers(0, 2, (7, 1)), np.sort(pts.reshape(7, 2, 2), axis=1)
                           .transpose(0, 2, 1).reshape(7, 4)], axis=1).astype(np.float32)
    (heat,) = random_arrays([(3, 9, 11, 68)], seed=8, scale=3.0)
    # Stage 2: 2 images x 3 keypoints, boxes partly off the map.
    feat2, w_rc, b_rc = random_arrays([(2, 11, 13, 5), (3, 3, 5, 3), (3,)], seed=9)
    c = rng.uniform(-3, 13, (6, 2))
    rois_rc = np.concatenate([np.repeat(np.arange(2), 3)[:, None], c - 2.5, c + 2.5],
                             axis=1).astype(np.float32)
    return [
        ("conv2d", (x, w, b, 1, 1, 1, "relu6")),
        ("conv2d", (x, w, b, 2, 0, 1, "none")),
        ("conv2d", (x, w_grp, None, 1, 1, 3, "relu")),
        ("pointwise_conv2d", (x_pw, w_pw, b_pw, "relu6")),
        ("inverted_residual", (*ir, 1, True)),
        ("inverted_residual", (*ir_s2, 2, False)),
        ("roi_align", (feat, rois, 4, 1.0, 1, True)),
        ("roi_align", (feat, rois, (3, 5), 0.5, 2, False)),
        ("roi_group_conv", (feat2, rois_rc, w_rc, b_rc, 5, 1.0, 1, True)),
        ("roi_group_conv", (feat2, rois_rc, w_rc, None, (4, 6), 0.5, 2, False)),
        ("soft_argmax", (heat, 1.0)),
        ("heatmap_peak", (heat,)),
        ("softmax_peak", (heat, 1.3)),
    ]


OP_CASES = _op_cases()


def test_both_backends_have_every_op():
    for name in ("numba", "numpy"):
        ops = get_backend(name)
        assert ops.name == name
        assert all(callable(getattr(ops, op)) for op in OPS)
    assert {op for op, _ in OP_CASES} == set(OPS)


@pytest.mark.parametrize("op, args", OP_CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(OP_CASES)])
def test_every_op_agrees_across_backends(op, args):
    got = getattr(get_backend("numba"), op)(*args)
    want = getattr(get_backend("numpy"), op)(*args)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_every_op_rejects_float64_and_accepts_views(backend):
    ops = get_backend(backend)
    for op, args in OP_CASES:
        bad = (args[0].astype(np.float64),) + args[1:]
        with pytest.raises(ValueError, match="float32"):
            getattr(ops, op)(*bad)
    x, w, b = random_arrays([(1, 9, 9, 8), (3, 3, 4, 4), (4,)], seed=3)
    view = x[:, ::2, :, ::2]  # non-contiguous
    np.testing.assert_allclose(ops.conv2d(view, w, b, 1, 1, 1),
                               ops.conv2d(np.ascontiguousarray(view), w, b, 1, 1, 1), atol=0)


def test_resolve_order(monkeypatch):
    monkeypatch.delenv("NNLITE_BACKEND", raising=False)
    assert resolve_backend() == "numba"  # numba is installed in the test environment
    monkeypatch.setenv("NNLITE_BACKEND", "numpy")
    assert resolve_backend() == "numpy" and get_backend().name == "numpy"
    assert resolve_backend("numba") == "numba"  # the argument wins over the environment
    monkeypatch.setenv("NNLITE_BACKEND", "cuda")
    with pytest.raises(ValueError, match="NNLITE_BACKEND.*numba, numpy"):
        resolve_backend()
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_backend("tpu")


def test_explicit_numba_without_numba_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(nb_backend, "HAVE_NUMBA", False)
    monkeypatch.delenv("NNLITE_BACKEND", raising=False)
    with pytest.raises(RuntimeError, match="numba cannot be imported"):
        resolve_backend("numba")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_landmarker_backend_argument(backend):
    from tracker.landmarks import Landmarker

    lm = Landmarker(FIX / "model_small.h5", backend=backend)
    assert lm.model.ops.name == backend
    frame = np.full((120, 160, 3), 128, np.uint8)
    from tracker.geometry import CropBox

    (res,) = lm.run(frame, [CropBox(80.0, 60.0, 60.0, 0.0)])
    assert res.points.shape == (68, 2) and np.isfinite(res.points).all()


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_the_detector_runs_on_the_chosen_backend(backend, monkeypatch):
    from tracker import cli
    from tracker import video as video_cli
    from tracker.detection import build_detector
    from tracker.errors import InputError
    from tracker.tracking import Tracker

    monkeypatch.delenv("NNLITE_BACKEND", raising=False)   # the argument alone decides
    tracker = Tracker.from_weights(FIX / "model_small.h5", backend=backend, prepare=None)
    assert tracker.detector.model.ops.name == tracker.landmarker.model.ops.name == backend
    args = video_cli.build_parser().parse_args([str(SAMPLE), "--weights", str(FIX / "model_small.h5"),
                                                "--backend", backend])
    assert cli.build_engine(args).detector.model.ops.name == backend
    assert build_detector("cascade", backend).detect(np.zeros((60, 80, 3), np.uint8)) == []
    with pytest.raises(InputError, match="unknown detector 'haar'"):
        build_detector("haar", backend)


def test_cli_backend_and_threads_options(tmp_path, capsys):
    from tracker import video as video_cli

    out = tmp_path / "out.mp4"
    code = video_cli.main([str(SAMPLE), "-o", str(out), "--weights", str(FIX / "model_small.h5"),
                           "--backend", "fortran"])
    assert code == 2 and "fortran" in capsys.readouterr().err and not out.exists()
    code = video_cli.main([str(SAMPLE), "-o", str(out), "--threads", "0"])
    assert code == 2 and "--threads" in capsys.readouterr().err


# ------------------------------------------------------------------ tracker-side fallbacks

def _sample_frames(n, every):
    from tracker.sources import open_file

    with open_file(SAMPLE) as reader:
        return [f for i, f in zip(range(n * every), reader) if i % every == 0]


def test_cascade_numpy_scan_matches_numba():
    from tracker.detection import cascade

    det = cascade.CascadeDetector()
    c = det.cascade
    model = (c.features, c.stages, c.thresholds, c.weak_feature, c.weak_subset, c.weak_leaves)
    gray = cv2.equalizeHist(cv2.cvtColor(_sample_frames(1, 1)[0], cv2.COLOR_BGR2GRAY))
    hits = 0
    for factor, step in ((1.0, 2), (2.2, 1), (3.1, 1)):
        level = cv2.resize(gray, (round(gray.shape[1] / factor), round(gray.shape[0] / factor)))
        integral = cv2.integral(level, sdepth=cv2.CV_32S)
        want = cascade._scan(integral, step, c.win[0], c.win[1], model)
        got = cascade.scan_reference(integral, step, c.win[0], c.win[1], model)
        assert got.dtype == np.int32 and np.array_equal(got, want)
        hits += len(want)
    assert hits > 0  # the comparison saw real detections, not only empty sets


def test_blend_numpy_path_matches_numba(monkeypatch):
    from tracker import blend

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (23, 31, 3), dtype=np.uint8)
    mask = np.clip(rng.normal(0.5, 0.4, (19, 26)), 0, 1).astype(np.float32)
    mask[:5] = 0.0
    params = blend.TintParams(color_lab=(45.0, 55.0, 30.0), ref_lightness=60.0, gloss=0.4, intensity=0.8)

    def chain():  # the renderer's steps, mask placed at (2, 3)
        lab = blend.bgr_to_lab_planes(image)
        stats = blend.lab_planes_stats(lab, mask, 2, 3)
        touched = np.zeros(image.shape[:2], np.uint8)
        blend.tint_lab_planes(lab, mask, params, touched, 2, 3)
        out = image.copy()
        blend.lab_planes_to_bgr(lab, touched, out)
        return out, stats, touched

    out_nb, stats_nb, touched_nb = chain()
    monkeypatch.setattr(blend, "HAVE_NUMBA", False)
    out_np, stats_np, touched_np = chain()
    assert np.abs(out_np.astype(int) - out_nb.astype(int)).max() <= 1
    assert np.array_equal(touched_np, touched_nb)
    assert np.array_equal(out_np[:7], image[:7])  # untouched where the mask is 0
    np.testing.assert_allclose(stats_np, stats_nb, atol=1e-3)


# ------------------------------------------------------------------ no numba at all

_NO_NUMBA = r"""
import json, sys, warnings
sys.modules["numba"] = None  # `import numba` now raises ImportError
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import numpy as np
    from nnlite.jit import HAVE_NUMBA
    from nnlite.model import TwoStageModel
    fix = sys.argv[1]
    model = TwoStageModel.load(fix + "/model_small.h5")
    stored = np.load(fix + "/model_small.npz")
    out = model.forward(stored["x"])
    errors = {k: float(np.abs(getattr(out, k) - stored[k]).max())
              for k in ("coarse", "refined", "heatmaps", "refine_heatmaps")}
    TwoStageModel.load(fix + "/model_small.h5")  # a second model: no second warning
    try:
        TwoStageModel.load(fix + "/model_small.h5", backend="numba")
        explicit = "no error"
    except RuntimeError as exc:
        explicit = str(exc)
    # the whole tracker: cascade detector, landmark model, makeup, on real frames
    from tracker.sources import open_file
    from tracker.makeup import load_look, render
    from tracker.tracking import Tracker
    tracker = Tracker.from_weights(fix + "/model_small.h5")
    look = load_look("natural")
    faces_per_frame = []
    with open_file(sys.argv[2]) as reader:
        for i, frame in zip(range(2), reader):
            faces = tracker.process(frame)
            rendered = render(frame, faces, look)
            faces_per_frame.append(len(faces))
    ran = rendered.shape == frame.shape
print(json.dumps({"have_numba": HAVE_NUMBA, "backend": model.ops.name, "errors": errors,
                  "explicit": explicit, "faces": faces_per_frame, "ran": ran,
                  "warnings": [f"{w.category.__name__}: {w.message}" for w in caught
                               if "numba" in str(w.message).lower()]}))
"""


def test_runs_without_numba():
    env = {k: v for k, v in os.environ.items() if k != "NNLITE_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", _NO_NUMBA, str(FIX), str(SAMPLE)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["have_numba"] is False and res["backend"] == "numpy"
    assert len(res["warnings"]) == 1, res["warnings"]
    assert res["warnings"][0].startswith("NumbaMissingWarning: numba cannot be imported")
    assert "NumPy" in res["warnings"][0]
    for name, err in res["errors"].items():  # same tolerance as tests/test_model_parity.py
        assert err <= 1e-4, (name, err)
    assert "numba cannot be imported" in res["explicit"]
    assert res["ran"] and len(res["faces"]) == 2 and res["faces"][0] == 1  # makeup ran on a face


def test_explicit_numpy_choice_does_not_warn():
    code = ("import sys, warnings; sys.modules['numba'] = None; warnings.simplefilter('error');"
            "from nnlite.model import TwoStageModel; import tracker.blend, tracker.detection;"
            f"m = TwoStageModel.load({str(FIX / 'model_small.h5')!r}); assert m.ops.name == 'numpy'")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NNLITE_BACKEND="numpy")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


_BACKGROUND_SETUP = """
import json, os, sys, threading
import numpy as np
import nnlite.jit as jit
before = "numba.np.arraymath" in sys.modules  # loaded by Numba's target set-up, not by import
from nnlite.backend import get_backend
from nnlite.model import TwoStageModel
model = TwoStageModel.load(sys.argv[1])      # get_backend("numba") starts the set-up
x = np.random.default_rng(0).random((1, model.input_size, model.input_size, 3), np.float32)
pid = os.fork()                              # waits for the set-up thread, so the child
if pid == 0:                                 # does not inherit Numba's compiler lock taken
    model.forward(x)
    os._exit(0)
_, status = os.waitpid(pid, 0)
first = model.forward(x).refined             # a kernel call right after (or during) it
done = jit.wait_compiler_init(60)
get_backend("numba")                         # started once per process
again = jit.start_compiler_init()
print(json.dumps({"before": before, "after": "numba.np.arraymath" in sys.modules, "done": done,
                  "again": again, "child": os.waitstatus_to_exitcode(status),
                  "threads": sum(t.name == "nnlite-numba-init" for t in threading.enumerate()),
                  "same": bool(np.array_equal(first, model.forward(x).refined))}))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_numba_setup_runs_once_in_the_background():
    env = {k: v for k, v in os.environ.items() if k != "NNLITE_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run([sys.executable, "-c", _BACKGROUND_SETUP, str(FIX / "model_small.h5")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res == {"before": False, "after": True, "done": True, "again": True, "child": 0,
                   "threads": 0, "same": True}
