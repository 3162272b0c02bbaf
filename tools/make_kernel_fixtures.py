"""Write tests/fixtures/kernels_conv.npz: conv2d outputs computed by PyTorch.

The kernel tests compare nnlite's conv kernels with these stored outputs, so they
check parity with ``torch.nn.functional.conv2d`` without importing torch.

Inputs, weights and biases are integers in [-16, 16] divided by 16, so every
product is a multiple of 1/256 and every partial sum is exact in float32: torch's
output is exact whatever its summation order, and is stored as ``y * 256`` in
int16. All cases are packed into three arrays to keep the file a few KB:

- ``meta``: int64 (n_cases, 10) rows ``[N, H, W, C, cout, k, stride, pad, groups,
  has_bias]``.
- ``ints``: int8, per case in order: x (N, H, W, C) NHWC, then w (cout, C/groups,
  k, k) in PyTorch layout, then b (cout,) (always stored; ignored when
  ``has_bias`` is 0), each flattened; values are 16 times the real ones.
- ``y``: int16, per case the output (N, H_out, W_out, cout) NHWC, flattened,
  256 times the real values.
- ``names``: str (n_cases,), a label per case.

``tests/kernels/test_conv.py`` holds the matching reader. Usage:
``python tools/make_kernel_fixtures.py [out.npz]``.
"""
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

IN_SCALE = 16
OUT_SCALE = IN_SCALE * IN_SCALE
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "kernels_conv.npz"

#: name, (N, H, W, C), cout, k, stride, pad, groups, has_bias
CASES = [
    ("regular_3x3_s1_p1", (1, 7, 9, 4), 5, 3, 1, 1, 1, 1),
    ("regular_3x3_s2_p1_batch2", (2, 9, 7, 3), 4, 3, 2, 1, 1, 1),
    ("depthwise_3x3_s1_p1", (1, 7, 9, 6), 6, 3, 1, 1, 6, 1),
    ("depthwise_3x3_s2_p1_batch2_nobias", (2, 9, 9, 4), 4, 3, 2, 1, 4, 0),
    ("depthwise_mult2_3x3_s2_p1", (1, 7, 7, 3), 6, 3, 2, 1, 3, 1),
    ("grouped_3x3_s1_p0", (1, 7, 7, 6), 6, 3, 1, 0, 3, 1),
    ("grouped_head_cout1_3x3_p1", (1, 5, 5, 8), 4, 3, 1, 1, 4, 1),
    ("pointwise_1x1", (1, 7, 9, 6), 5, 1, 1, 0, 1, 1),
    ("pointwise_1x1_s2_nobias", (1, 7, 7, 4), 3, 1, 2, 0, 1, 0),
]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_path = Path(argv[0]) if argv else OUT
    gen = torch.Generator().manual_seed(1234)
    meta, ints, ys = [], [], []
    for name, (n, h, w, c), cout, k, stride, pad, groups, has_bias in CASES:
        xq = torch.randint(-16, 17, (n, h, w, c), generator=gen, dtype=torch.int8)
        wq = torch.randint(-16, 17, (cout, c // groups, k, k), generator=gen, dtype=torch.int8)
        bq = torch.randint(-16, 17, (cout,), generator=gen, dtype=torch.int8)
        x = xq.float().permute(0, 3, 1, 2) / IN_SCALE  # torch wants NCHW
        y = F.conv2d(x, wq.float() / IN_SCALE, bq.float() / IN_SCALE if has_bias else None,
                     stride=stride, padding=pad, groups=groups)
        y = y.permute(0, 2, 3, 1).numpy() * OUT_SCALE  # NHWC, integers
        yq = np.rint(y)
        assert np.array_equal(yq, y) and np.abs(yq).max() < 2**15, name
        meta.append([n, h, w, c, cout, k, stride, pad, groups, has_bias])
        ints += [xq.numpy().ravel(), wq.numpy().ravel(), bq.numpy()]
        ys.append(yq.astype(np.int16).ravel())
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, meta=np.array(meta, np.int64), ints=np.concatenate(ints),
                        y=np.concatenate(ys), names=np.array([c[0] for c in CASES]))
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes, {len(CASES)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
