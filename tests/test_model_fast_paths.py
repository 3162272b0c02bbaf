"""The Numba model's fast paths: fused stage 2, reused buffers, packed layers, profiling."""
from pathlib import Path

import numpy as np
import pytest

from nnlite.model import TwoStageModel, count_macs, layer_macs

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
    np.testing.assert_allclose(two.forward(x).refined, whole.refined, atol=1e-5, rtol=0)


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
