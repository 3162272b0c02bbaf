"""tools.tflite_macs on a small TFLite flatbuffer written here field by field."""
import struct

from tools.tflite_macs import main, tflite_macs


def _flatbuffer(root):
    """Serialise nested tables: a table is a list of fields, each None (absent),
    ("i32" | "u32", int), ("ints", [int]) or ("tables", [table]). Children follow
    their parent (flatbuffer references point forward); every slot is 4 bytes."""
    buf = bytearray(4)

    def table(fields):
        vt_size = 4 + 2 * len(fields)
        vt_pad = -vt_size % 4
        start = len(buf)
        pos = start + vt_size + vt_pad
        offsets = [0 if f is None else 4 + 4 * i for i, f in enumerate(fields)]
        buf.extend(struct.pack(f"<HH{len(fields)}H", vt_size, 4 + 4 * len(fields), *offsets))
        buf.extend(bytes(vt_pad))
        buf.extend(struct.pack("<i", pos - start))
        later = []
        for i, f in enumerate(fields):
            slot = pos + 4 + 4 * i
            if f is None or f[0] in ("i32", "u32"):
                buf.extend(struct.pack("<i" if f and f[0] == "i32" else "<I", f[1] if f else 0))
            else:
                buf.extend(bytes(4))
                later.append((slot, f))
        for slot, (kind, items) in later:
            struct.pack_into("<I", buf, slot, len(buf) - slot)
            vec = len(buf)
            buf.extend(struct.pack("<I", len(items)))
            if kind == "ints":
                buf.extend(struct.pack(f"<{len(items)}i", *items))
            else:
                buf.extend(bytes(4 * len(items)))
                for k, item in enumerate(items):
                    at = vec + 4 + 4 * k
                    struct.pack_into("<I", buf, at, table(item) - at)
        return pos

    struct.pack_into("<I", buf, 0, table(root))
    return bytes(buf)


def _model():
    tensors = [[("ints", s)] for s in ([1, 8, 8, 3], [4, 3, 3, 3], [1, 4, 4, 4], [1, 3, 3, 4],
                                       [1, 4, 4, 4], [10, 64], [1, 10], [1, 10])]
    codes = [[None, None, None, ("i32", 3)],   # CONV_2D in builtin_code
             [("i32", 4)],                     # DEPTHWISE_CONV_2D in the old int8 field only
             [None, None, None, ("i32", 9)],   # FULLY_CONNECTED
             [None, None, None, ("i32", 0)]]   # ADD: not counted
    ops = [[("u32", 0), ("ints", [0, 1]), ("ints", [2])],
           [("u32", 1), ("ints", [2, 3]), ("ints", [4])],
           [("u32", 2), ("ints", [4, 5]), ("ints", [6])],
           [("u32", 3), ("ints", [6, 6]), ("ints", [7])]]
    graph = [("tables", tensors), ("ints", [0]), ("ints", [7]), ("tables", ops)]
    return _flatbuffer([("u32", 3), ("tables", codes), ("tables", [graph])])


def test_counts_convolutions_depthwise_and_fully_connected(tmp_path, capsys):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(_model())
    cost = tflite_macs(path)
    assert cost.input_shape == [1, 8, 8, 3]
    assert cost.by_op == {"conv": 4 * 4 * 4 * 27, "depthwise": 4 * 4 * 4 * 9, "fully connected": 640}
    assert cost.macs == 1728 + 576 + 640
    assert cost.weights == 108 + 36 + 640
    assert main([str(path)]) == 0
    assert "input 1x8x8x3, 0.0M multiply-adds" in capsys.readouterr().out
