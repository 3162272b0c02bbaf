"""Multiply-adds and weights of a TFLite model's convolutions, read from its flatbuffer.

    python -m tools.tflite_macs mpvenv/lib/python3.11/site-packages/mediapipe/modules/face_landmark/face_landmark.tflite

For comparing a peer's model with ours (`nnlite.model.count_macs`): MediaPipe's models ship
as `.tflite` files in its wheel. No TensorFlow needed: the few fields used here are read
straight from the flatbuffer (TFLite's schema: Model.operator_codes = field 1, .subgraphs = 2;
SubGraph.tensors = 0, .inputs = 1, .operators = 3; Tensor.shape = 0; Operator.opcode_index =
0, .inputs = 1, .outputs = 2; OperatorCode.deprecated_builtin_code = 0 (int8),
.builtin_code = 3 (int32)). Counted: CONV_2D (filter (Cout, kh, kw, Cin)),
DEPTHWISE_CONV_2D (filter (1, kh, kw, C)) and FULLY_CONNECTED (weights (out, in)), NHWC
outputs, batch 1; everything else (adds, activations, pads, pools) is left out, as
`count_macs` leaves it out of ours.
"""
from __future__ import annotations

import argparse
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED = 3, 4, 9
OP_NAMES = {CONV_2D: "conv", DEPTHWISE_CONV_2D: "depthwise", FULLY_CONNECTED: "fully connected"}


@dataclass
class TfliteCost:
    """What `tflite_macs` counts. ``by_op``: multiply-adds per op kind (`OP_NAMES`)."""
    input_shape: list[int]
    macs: int
    weights: int
    by_op: dict[str, int] = field(default_factory=dict)


class _Flatbuffer:
    """Just enough of the flatbuffer format: tables, their fields, vectors of ints and tables."""

    def __init__(self, data: bytes):
        self.data = data

    def _u32(self, pos):
        return struct.unpack_from("<I", self.data, pos)[0]

    def _i32(self, pos):
        return struct.unpack_from("<i", self.data, pos)[0]

    def root(self):
        return self._table(self._u32(0))

    def _table(self, pos):
        """-> (position, the vtable's field offsets): the vtable sits ``soffset`` before it."""
        vtable = pos - self._i32(pos)
        count = (struct.unpack_from("<H", self.data, vtable)[0] - 4) // 2
        return pos, struct.unpack_from(f"<{count}H", self.data, vtable + 4)

    def _field(self, table, i):
        pos, offsets = table
        return pos + offsets[i] if i < len(offsets) and offsets[i] else None

    def scalar(self, table, i, fmt, default=0):
        at = self._field(table, i)
        return default if at is None else struct.unpack_from("<" + fmt, self.data, at)[0]

    def _vector(self, table, i):
        at = self._field(table, i)
        if at is None:
            return []
        vec = at + self._u32(at)
        return [vec + 4 + 4 * k for k in range(self._u32(vec))]

    def ints(self, table, i):
        return [self._i32(p) for p in self._vector(table, i)]

    def tables(self, table, i):
        return [self._table(p + self._u32(p)) for p in self._vector(table, i)]


def tflite_macs(path) -> TfliteCost:
    """Count the convolutions of the first subgraph of a ``.tflite`` file.

    Parameters
    ----------
    path : str or Path
        A TFLite model.

    Returns
    -------
    cost : TfliteCost
        Input shape, multiply-adds and weights of its conv, depthwise and fully connected ops.
    """
    fb = _Flatbuffer(Path(path).read_bytes())
    model = fb.root()
    # Newer files keep the code in builtin_code; older ones in the int8 deprecated field.
    codes = [max(fb.scalar(c, 3, "i"), fb.scalar(c, 0, "b")) for c in fb.tables(model, 1)]
    graph = fb.tables(model, 2)[0]
    shapes = [fb.ints(t, 0) for t in fb.tables(graph, 0)]
    macs = weights = 0
    by_op: dict[str, int] = {}
    for op in fb.tables(graph, 3):
        code = codes[fb.scalar(op, 0, "I")]
        if code not in OP_NAMES:
            continue
        out, w = shapes[fb.ints(op, 2)[0]], shapes[fb.ints(op, 1)[1]]
        n = math.prod(w)
        # A conv's or depthwise's filter is applied once per output pixel (a depthwise
        # filter's leading dimension is 1); a fully connected layer's weights once.
        m = n if code == FULLY_CONNECTED else out[1] * out[2] * n
        macs, weights = macs + m, weights + n
        by_op[OP_NAMES[code]] = by_op.get(OP_NAMES[code], 0) + m
    return TfliteCost(shapes[fb.ints(graph, 1)[0]], macs, weights, by_op)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help=".tflite files")
    args = ap.parse_args(argv)
    for path in args.models:
        cost = tflite_macs(path)
        parts = ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in cost.by_op.items())
        print(f"{Path(path).name}: input {'x'.join(map(str, cost.input_shape))}, "
              f"{cost.macs / 1e6:.1f}M multiply-adds ({parts}), {cost.weights / 1e3:.0f}K weights")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
