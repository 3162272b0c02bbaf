"""The named landmark-model configs of tools.landmarks.config (no torch needed)."""
from nnlite.model import count_macs
from tools.landmarks.config import demo_config, full_config, lite_config


def test_lite_is_the_demo_model_with_two_blocks_at_64x64():
    demo, lite = demo_config(), lite_config()
    assert lite["blocks"] == demo["blocks"][:2] + demo["blocks"][6:]
    # the stage-2 branch still leaves at the end of the 32x32 stage
    assert lite["blocks"][lite["refine"]["branch_block"]] == demo["blocks"][demo["refine"]["branch_block"]]
    assert lite["refine"]["branch_block"] == demo["refine"]["branch_block"] - 4
    assert {k: v for k, v in lite.items() if k not in ("blocks", "refine", "name")} == \
        {k: v for k, v in demo.items() if k not in ("blocks", "refine", "name")}
    assert (count_macs(demo), count_macs(lite)) == (173_172_736, 108_685_312)
    assert count_macs(full_config()) > 1.3e9
