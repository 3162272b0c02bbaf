"""nnlite's two-stage model vs outputs stored from PyTorch (tools/fixtures/make_model_fixtures.py)."""
from pathlib import Path

import numpy as np
import pytest

from nnlite.model import TwoStageModel

FIX = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def stored():
    return np.load(FIX / "model_small.npz")


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_matches_pytorch(stored, backend):
    model = TwoStageModel.load(FIX / "model_small.h5", backend=backend)
    out = model.forward(stored["x"])
    # Points are in input pixels (0..63); sums of ~1e3 float32 terms: 1e-4 px is tight.
    np.testing.assert_allclose(out.coarse, stored["coarse"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.refined, stored["refined"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.heatmaps, stored["heatmaps"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out.refine_heatmaps, stored["refine_heatmaps"], atol=1e-4, rtol=0)
    assert out.peaks.shape == (3, 68) and np.all((out.peaks > 0) & (out.peaks < 1))


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_batch_items_independent(stored, backend):
    model = TwoStageModel.load(FIX / "model_small.h5", backend=backend)
    one = model.forward(stored["x"][1:2])
    np.testing.assert_allclose(one.refined[0], stored["refined"][1], atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_rejects_bad_input(stored, backend):
    model = TwoStageModel.load(FIX / "model_small.h5", backend=backend)
    with pytest.raises(ValueError, match="float32"):
        model.forward(stored["x"].astype(np.float64))
    with pytest.raises(ValueError, match=r"\(N, 64, 64, 3\)"):
        model.forward(stored["x"][:, :32])


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("name", ["demo", "lite", "full"])
def test_shipped_weights_match_checkpoint(name, backend):
    """weights/<name>.h5 reproduces its PyTorch checkpoint (tools/checkpoints/<name>.pt)."""
    weights = Path(__file__).resolve().parents[1] / "weights" / f"{name}.h5"
    stored = np.load(FIX / f"{name}_parity.npz")
    out = TwoStageModel.load(weights, backend=backend).forward(stored["x"])
    np.testing.assert_allclose(out.coarse, stored["coarse"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out.refined, stored["refined"], atol=1e-3, rtol=0)
