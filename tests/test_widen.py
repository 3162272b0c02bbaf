"""tools.landmarks.widen: a widened landmark model computes what the narrow one did."""
import pytest

torch = pytest.importorskip("torch")

from tools.landmarks.config import make_config  # noqa: E402
from tools.landmarks.model import LandmarkNet  # noqa: E402
from tools.landmarks.widen import widen_config, widen_state  # noqa: E402


def _narrow():
    torch.manual_seed(0)
    cfg = make_config(alpha=1 / 6, input_size=64)
    cfg["training"] = {"use_heatmap": True, "use_l2": True, "use_stage2": True}
    net = LandmarkNet(cfg)
    # Non-trivial batch-norm statistics and a non-zero refinement head.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    torch.nn.init.normal_(net.refine.weight, std=0.1)
    return net


@pytest.mark.parametrize("train_mode", [False, True])
def test_widened_model_reproduces_narrow(train_mode):
    narrow = _narrow()
    cfg = widen_config(narrow.cfg, 2)
    assert cfg["stem"]["out"] == 2 * narrow.cfg["stem"]["out"]
    assert cfg["training"] == narrow.cfg["training"]
    wide = LandmarkNet(cfg)
    wide.load_state_dict(widen_state(narrow, wide, 2, spread=0.3, seed=1))
    narrow.train(train_mode)
    wide.train(train_mode)
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, b = narrow(x), wide(x)
    for key in ("heatmaps", "refine_heatmaps", "coarse", "refined"):
        torch.testing.assert_close(b[key], a[key], atol=1e-4, rtol=1e-4)


def test_copies_get_unequal_shares():
    """Equal shares would keep the copies identical for ever; they must differ."""
    narrow = _narrow()
    wide = LandmarkNet(widen_config(narrow.cfg, 2))
    state = widen_state(narrow, wide, 2, spread=0.3, seed=1)
    w = state["blocks.1.expand.conv.weight"]  # (hidden, cin, 1, 1); input copies c and c + C
    c = w.shape[1] // 2
    assert not torch.allclose(w[:, :c], w[:, c:])
    torch.testing.assert_close(w[:, :c] + w[:, c:],
                               narrow.state_dict()["blocks.1.expand.conv.weight"].repeat(2, 1, 1, 1))


def test_refuses_inexact_multiple():
    cfg = make_config(alpha=0.3)
    with pytest.raises(ValueError, match="exact multiple"):
        widen_config(cfg, 3)
