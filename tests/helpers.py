"""Shared test helpers: seeded random inputs, the kernel-vs-reference check, thread counts."""
import contextlib
import struct

import numpy as np
import pytest


def random_arrays(shapes, seed=0, scale=1.0):
    """Seeded float32 normal arrays, one per shape; a ``None`` shape gives ``None``.

    Parameters
    ----------
    shapes : sequence of tuple of int or None
        Shapes of the arrays to draw.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same arrays.
    scale : float
        Standard deviation.

    Returns
    -------
    arrays : list of float32 ndarray or None
        C-contiguous arrays.
    """
    rng = np.random.default_rng(seed)
    return [None if s is None else (rng.standard_normal(s) * scale).astype(np.float32)
            for s in shapes]


def assert_matches_reference(fn, ref, args, atol, rtol, kwargs=None):
    """Assert that ``fn(*args, **kwargs)`` matches ``ref(*args, **kwargs)``.

    Also checks that both return float32 arrays of the same shape and that
    neither modified its array arguments.

    Parameters
    ----------
    fn : callable
        Kernel under test (Numba).
    ref : callable
        Its NumPy reference.
    args : sequence
        Positional arguments given to both.
    atol : float
        Absolute tolerance.
    rtol : float
        Relative tolerance.
    kwargs : dict or None
        Keyword arguments given to both.

    Returns
    -------
    got : float32 ndarray
        The kernel's output, for further checks.
    """
    kwargs = kwargs or {}
    before = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
    got = fn(*args, **kwargs)
    want = ref(*args, **kwargs)
    for i, (a, b) in enumerate(zip(args, before)):
        if b is not None:
            np.testing.assert_array_equal(a, b, err_msg=f"argument {i} was modified")
    assert got.dtype == np.float32 and want.dtype == np.float32, (got.dtype, want.dtype)
    assert got.shape == want.shape, f"{fn.__name__} shape {got.shape} != reference {want.shape}"
    np.testing.assert_allclose(got, want, atol=atol, rtol=rtol,
                               err_msg=f"{fn.__name__} vs {ref.__name__}")
    return got


@contextlib.contextmanager
def numba_threads(n=None):
    """Run the block with Numba's parallel loops on `n` threads, restoring the count after.

    Parameters
    ----------
    n : int or None
        Threads; None means every thread of Numba's pool, and at least 2: a threaded run
        on a pool of one would only repeat the serial run.

    Notes
    -----
    Skips the test, saying why, when the pool (``NUMBA_NUM_THREADS``, fixed when numba
    is imported) is smaller. ``tests/conftest.py`` makes it 2 on a one-core machine.
    """
    import numba

    pool = numba.config.NUMBA_NUM_THREADS
    want = max(2, pool) if n is None else n
    if want > pool:
        pytest.skip(f"needs {want} Numba threads but the pool has {pool} "
                    f"(NUMBA_NUM_THREADS={pool}): a threaded run would be a serial one")
    old = numba.get_num_threads()
    numba.set_num_threads(want)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def readme_python_snippets(readme):
    """The ```python blocks of a README file, in order, as source strings."""
    import re
    from pathlib import Path

    return re.findall(r"^```python\n(.*?)^```", Path(readme).read_text(encoding="utf-8"), re.S | re.M)


def run_python_snippets(snippets, cwd, env, timeout=600):
    """Run each snippet in its own `python -c` process in folder `cwd` with environment `env`;
    -> list of (snippet, CompletedProcess) for those that failed."""
    import subprocess
    import sys

    failed = []
    for code in snippets:
        proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0:
            failed.append((code, proc))
    return failed


def flatbuffer_tables(root):
    """The bytes of a flatbuffer holding nested tables (what `tiny_tflite` needs of the format).

    A table is a list of fields, each None (absent), ("i32" | "u32", int), ("ints", [int])
    or ("tables", [table]). Children follow their parent (flatbuffer references point
    forward); every slot is 4 bytes."""
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


def tiny_tflite():
    """A TFLite file's bytes: a 1x8x8x3 input, a 3x3 conv to 4 channels (stride 2), a 3x3
    depthwise, a fully connected layer to 10 and an add: 1,728 + 576 + 640 multiply-adds."""
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
    return flatbuffer_tables([("u32", 3), ("tables", codes), ("tables", [graph])])
