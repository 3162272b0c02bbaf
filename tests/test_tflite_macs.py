"""tools.tflite_macs on a small TFLite flatbuffer written field by field (tests.helpers.tiny_tflite)."""
from tests.helpers import tiny_tflite
from tools.tflite_macs import main, tflite_macs


def test_counts_convolutions_depthwise_and_fully_connected(tmp_path, capsys):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tiny_tflite())
    cost = tflite_macs(path)
    assert cost.input_shape == [1, 8, 8, 3]
    assert cost.by_op == {"conv": 4 * 4 * 4 * 27, "depthwise": 4 * 4 * 4 * 9, "fully connected": 640}
    assert cost.macs == 1728 + 576 + 640
    assert cost.weights == 108 + 36 + 640
    assert main([str(path)]) == 0
    assert "input 1x8x8x3, 0.0M multiply-adds" in capsys.readouterr().out
