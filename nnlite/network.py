"""What nnlite's two models share: a network built from a weights file on one backend.

`Network` holds the backend (`ops`), the thread cap, and the stem convolution and
MobileNetV2 blocks both architectures start with; `load(path)` reads a weights
file (`nnlite.weights.load`) and builds the subclass from it; `forward(x)`
checks the batch, caps Numba's threads and runs the subclass's `_forward`.
"""
from __future__ import annotations

import time

import numpy as np

from nnlite.backend import get_backend
from nnlite.jit import resolve_threads, thread_limit
from nnlite.layers import Conv, InvertedResidual, chain_blocks, check_image_batch
from nnlite.weights import ArraySource, load


class Network:
    """Base of `nnlite.model.TwoStageModel` and `nnlite.detector.SingleShotDetector`.

    A subclass's ``__init__`` calls `_start` first and `_backbone` to build the shared
    layers, sets ``input_size`` and defines ``_forward(x)``; ``kind`` names it in errors.
    """

    kind = "model"
    input_size: int

    def _start(self, config: dict, arrays: dict, source, backend: str | None,
               threads: int | None) -> ArraySource:
        """Set ``config``, ``ops`` and ``threads``; -> the weights' `ArraySource` (quoting `source`)."""
        self.config = config
        self.ops = get_backend(backend)
        self.threads = resolve_threads(threads)
        return ArraySource(arrays, source)

    def _backbone(self, src: ArraySource, config: dict) -> None:
        """Build ``stem`` (conv + ReLU6) and ``blocks`` (inverted residuals) from the config."""
        st = config["stem"]
        self.stem = Conv(src, "stem", st["in"], st["out"], st["kernel"], st["stride"],
                         act="relu6", ops=self.ops)
        self.blocks = [InvertedResidual(src, f"blocks.{i}", spec, self.ops)
                       for i, spec in enumerate(config["blocks"])]

    def _chain(self, outputs) -> None:
        """Set ``runs``, the blocks grouped into chains (`nnlite.layers.chain_blocks`), each
        run ending at the last block or one of `outputs` (block indices read elsewhere)."""
        self.runs = chain_blocks(self.blocks, outputs)

    def _run_blocks(self, y, bufs, work, tick=None):
        """The blocks on `y`, run by run; -> {last block of each run: its output}.

        bufs : {block index: output array} or None (allocate). With ``tick`` (a profile)
        every block runs alone and is timed by name, ``blocks.<i>``.
        """
        ends = {}
        for first, last, chain in self.runs:
            if chain is not None and tick is None:
                y = chain(y, None if bufs is None else bufs[last], work)
            else:
                for i in range(first, last + 1):
                    y = self.blocks[i](y, None if bufs is None else bufs[i], work)
                    tick and tick(f"blocks.{i}")
            ends[last] = y
        return ends

    @classmethod
    def load(cls, path, backend: str | None = None, threads: int | None = None, **options):
        """The network of a weights file.

        Parameters
        ----------
        path : str or os.PathLike
            The HDF5 weights file.
        backend : str or None
            As in the class.
        threads : int or None
            As in the class.
        **options
            The class's other arguments (the detector's ``input_size``).

        Returns
        -------
        network : Network
            The built subclass.
        """
        config, arrays, _ = load(path)
        return cls(config, arrays, path, backend, threads, **options)

    def forward(self, x: np.ndarray):
        """Run the network on a batch.

        Parameters
        ----------
        x : float32 ndarray (N, S, S, 3), NHWC
            Inputs, normalised as ``config["input"]`` says.

        Returns
        -------
        out : ModelOutput or DetectorOutput
            The subclass's outputs (see its ``_forward``).

        Notes
        -----
        Numba's parallel kernels use at most ``self.threads`` threads (a cap on the
        calling thread's Numba setting, restored afterwards).
        """
        x = check_image_batch(x, self.input_size, self.kind)
        with thread_limit(self.threads):
            return self._forward(x)

    def warmup(self) -> float:
        """Run one dummy input so the kernels are compiled (or loaded from Numba's cache) now; -> seconds taken."""
        start = time.perf_counter()
        self.forward(np.zeros((1, self.input_size, self.input_size, 3), np.float32))
        return time.perf_counter() - start
