"""The Numba model's fast paths: fused stage 2, reused buffers, packed layers, profiling."""
from pathlib import Path

import numpy as np
import pytest

from nnlite.model import TwoStageModel, count_macs, layer_macs
from tests.helpers import numba_threads

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def stored():
    return np.load(FIX / "model_small.npz")


@pytest.fixture(scope="module")
def models():
    return (TwoStageModel.load(FIX / "model_small.h5", backend="numba", threads=1),
            TwoStageModel.load(FIX / "model_small.h5", backend="numpy"))


def test_fused_stage2_matches_the_unfused_path(models, stored):
    fast, ref = models
    rng = np.random.default_rng(0)
    feat = rng.standard_normal((3, 16, 16, fast.refine_roi.channels)).astype(np.float32)
    coarse = rng.uniform(-4, 68, (3, fast.num_keypoints, 2)).astype(np.float32)
    fused = fast.refine_roi(feat, fast._rois(coarse))
    for model in (fast, ref):  # unfused: RoI align, transpose, group conv
        unfused = model.refine(model._gather_windows(feat, coarse))
        np.testing.assert_allclose(fused, unfused, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(fused, ref.refine_roi(feat, ref._rois(coarse)), atol=1e-4, rtol=1e-4)


def test_reused_buffers_never_leak_into_results(models, stored):
    fast, _ = models
    x = stored["x"]
    first = fast.forward(x[:1])
    keep = {k: getattr(first, k).copy() for k in ("coarse", "refined", "heatmaps",
                                                   "refine_heatmaps", "peaks")}
    fast.forward(x[1:2])  # same shape: the intermediate buffers are reused
    for k, v in keep.items():
        np.testing.assert_array_equal(getattr(first, k), v, err_msg=k)
    again = fast.forward(x[:1])
    np.testing.assert_array_equal(again.refined, first.refined)


def test_batch_sizes_and_threads_agree(models, stored):
    fast, _ = models
    x = stored["x"]
    whole = fast.forward(x)
    two = TwoStageModel.load(FIX / "model_small.h5", backend="numba", threads=2)
    for i in range(len(x)):
        np.testing.assert_array_equal(fast.forward(x[i:i + 1]).refined[0], whole.refined[i])
    np.testing.assert_array_equal(two.forward(x).refined, whole.refined)


def test_blocks_run_as_chains_bit_identical_to_one_by_one(models, stored, monkeypatch):
    fast, ref = models
    # a run ends at the branch (block 10) and before each strided block (6, 11)
    assert [(a, b) for a, b, _ in fast.runs] == [(0, 5), (6, 10), (11, 15)]
    assert all(c is not None for *_, c in fast.runs) and all(c is None for *_, c in ref.runs)
    x = stored["x"]
    for threads, min_macs in ((1, None), (2, None), (2, 0), (2, 2_000_000)):
        if min_macs is not None:  # 0: the singles win (no wake-up to save); else the chains
            monkeypatch.setattr("nnlite.config.MIN_PARALLEL_MACS", min_macs)
        model = TwoStageModel.load(FIX / "model_small.h5", backend="numba", threads=threads)
        with numba_threads(threads):
            chained = model.forward(x)
            model.runs = [(a, b, None) for a, b, _ in model.runs]
            np.testing.assert_array_equal(model.forward(x).refined, chained.refined)


def test_chain_plans_follow_the_cost(monkeypatch):
    """Small blocks (the demo model) run as whole chains on two threads; big ones (the full
    model) block by block, where the halo rows would cost more than the wake-ups saved.
    Only the chains a plan runs hold a copy of the blocks' weights."""
    weights = Path(__file__).resolve().parents[1] / "weights"
    with numba_threads(2):
        for name, whole in (("demo.h5", True), ("full.h5", False)):
            model = TwoStageModel.load(weights / name, backend="numba", threads=2)
            shape = model.stem.out_shape((1, model.input_size, model.input_size, 3))
            for first, last, chain in model.runs:
                assert chain.chain[0] is None and not chain._chains  # layouts only, until planned
                calls = chain._plan(shape)
                assert len(calls) == (1 if whole else last - first + 1), (name, first)
                n = last - first
                packed = {(0, n)} if whole else {(i, i) for i in range(n + 1)}
                assert set(chain._chains) == packed, (name, first)
                shape = chain.out_shape(shape)
    with numba_threads(1):  # one thread: the blocks' own kernels, one by one, no copies
        model = TwoStageModel.load(weights / "demo.h5", backend="numba", threads=1)
        shape = model.stem.out_shape((1, model.input_size, model.input_size, 3))
        first, last, chain = model.runs[0]
        assert len(chain._plan(shape)) == last - first + 1
        assert not chain._chains


def test_layers_write_into_out(models, stored):
    fast, ref = models
    y = fast.stem(stored["x"])
    for layer_fast, layer_ref in ((fast.blocks[0], ref.blocks[0]), (fast.heatmap, ref.heatmap)):
        if layer_fast is fast.heatmap:
            y = np.random.default_rng(1).standard_normal(
                (3, 8, 8, layer_fast.cin)).astype(np.float32)
        out = np.full(layer_fast.out_shape(y.shape), np.nan, np.float32)
        assert layer_fast(y, out) is out
        np.testing.assert_allclose(out, layer_ref(y), atol=1e-4, rtol=1e-4)
        with pytest.raises(ValueError, match="out must be"):
            layer_fast(y, np.empty((1, 2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="float32"):
        fast.blocks[0](y.astype(np.float64))


def test_profile_steps_match_layer_macs(models, stored):
    fast, ref = models
    names = [n for n, _ in layer_macs(fast.config)]
    assert sum(m for _, m in layer_macs(fast.config)) == count_macs(fast.config)
    for model in models:
        steps = model.profile(stored["x"][:1])
        assert [n for n, _ in steps] == names
        assert all(t >= 0 for _, t in steps)
