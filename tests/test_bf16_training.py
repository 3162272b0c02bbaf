"""Training with --bf16: the backbone runs in bfloat16, the heads and decoders stay float32."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tools.landmarks.config import make_config  # noqa: E402
from tools.landmarks.model import LandmarkNet  # noqa: E402


def _net():
    torch.manual_seed(0)
    net = LandmarkNet(make_config(alpha=1 / 6, input_size=64))
    torch.nn.init.normal_(net.heatmap.weight, std=3.0)  # peaked heatmaps, so points move with logits
    return net.eval()


def test_heads_stay_float32_under_autocast():
    net = _net()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))
    with torch.no_grad():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
    for key in ("heatmaps", "refine_heatmaps", "coarse", "refined"):
        assert low[key].dtype == torch.float32, key
    # bfloat16 features move the points a little, not a lot (the real models: ~0.01 px).
    diff = (low["refined"] - ref["refined"]).abs()
    assert diff.max() < 0.5 and diff.mean() < 0.1


def test_bf16_gradients_reach_the_backbone():
    net = _net().train()
    x = torch.randn(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    out["refined"].sum().backward()
    grads = [p.grad for p in net.stem.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
