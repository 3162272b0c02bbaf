"""A learnt soft-argmax temperature: trained in PyTorch, exported to the config, decoded by nnlite."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nnlite.model import TwoStageModel  # noqa: E402
from tools.landmarks.config import make_config  # noqa: E402
from tools.landmarks.export import folded_arrays, model_config, write_weights  # noqa: E402
from tools.landmarks.model import LandmarkNet  # noqa: E402


def _net(learn):
    torch.manual_seed(0)
    cfg = make_config(alpha=1 / 6, input_size=64)
    cfg["training"] = {"use_heatmap": True, "use_l2": True, "use_stage2": True, "learn_beta": learn}
    net = LandmarkNet(cfg)
    # Peaked heatmaps, so that the temperature moves the decoded points.
    torch.nn.init.normal_(net.heatmap.weight, std=3.0)
    torch.nn.init.normal_(net.refine.weight, std=0.5)
    return net


def test_beta_is_a_parameter_only_when_learnt():
    assert _net(True).log_beta.requires_grad
    frozen = _net(False)
    assert not frozen.log_beta.requires_grad
    assert frozen.betas() == (1.0, 1.0)
    assert "beta" not in model_config(frozen)["heatmap"]  # old files' configs stay as they were


def test_checkpoints_without_beta_still_load():
    old = {k: v for k, v in _net(False).state_dict().items() if k != "log_beta"}
    net = _net(True)
    net.load_state_dict(old)
    assert net.betas() == (1.0, 1.0)


def test_nnlite_decodes_with_the_exported_betas(tmp_path):
    net = _net(True)
    with torch.no_grad():
        net.log_beta.copy_(torch.tensor([math.log(1.7), math.log(0.6)]))
    net.eval()
    config = model_config(net)
    assert config["heatmap"]["beta"] == pytest.approx(1.7) and config["refine"]["beta"] == pytest.approx(0.6)
    path = tmp_path / "beta.h5"
    write_weights(path, config, folded_arrays(net), {})
    x = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    out = TwoStageModel.load(path, backend="numpy").forward(x)
    np.testing.assert_allclose(out.coarse, ref["coarse"].numpy(), atol=2e-3)
    np.testing.assert_allclose(out.refined, ref["refined"].numpy(), atol=2e-3)
    # The temperature matters: decoding at beta 1 lands elsewhere.
    with torch.no_grad():
        net.log_beta.zero_()
        plain = net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    assert np.abs(plain["coarse"].numpy() - out.coarse).max() > 0.05  # 25x the parity tolerance


def test_exported_models_score_by_the_softmax_peak(tmp_path):
    """The export asks for the softmax peak as the landmark score; nnlite computes it from the
    stage-1 logits at the learnt temperature, and older configs keep the sigmoid peak."""
    from nnlite.kernels.soft_argmax import heatmap_peak_reference, softmax_peak_reference
    from nnlite.weights import WeightsError

    net = _net(True)
    with torch.no_grad():
        net.log_beta.copy_(torch.tensor([math.log(1.7), math.log(0.6)]))
    net.eval()
    config = model_config(net)
    assert config["heatmap"]["confidence"] == "softmax_peak"
    x = np.random.default_rng(2).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    for kind, ref in (("softmax_peak", lambda h: softmax_peak_reference(h, 1.7)),
                      (None, heatmap_peak_reference)):
        if kind is None:
            del config["heatmap"]["confidence"]
        path = tmp_path / f"{kind}.h5"
        write_weights(path, config, folded_arrays(net), {})
        for backend in ("numpy", "numba"):
            out = TwoStageModel.load(path, backend=backend).forward(x)
            np.testing.assert_allclose(out.peaks, ref(out.heatmaps), atol=1e-6, rtol=1e-5)
    config["heatmap"]["confidence"] = "entropy"
    write_weights(tmp_path / "bad.h5", config, folded_arrays(net), {})
    with pytest.raises(WeightsError, match="confidence 'entropy'"):
        TwoStageModel.load(tmp_path / "bad.h5")
