"""Numba compilation flags for every nnlite kernel, kept in one place.

The kernels import these names at module import time, so change them before
importing ``nnlite.kernels`` (or edit this file); they are not re-read later.
The number of threads is not set here: see ``nnlite.jit.thread_limit`` and the
``threads=`` argument of ``TwoStageModel``.
"""
import os

#: OpenMP wait policy for Numba's ``omp`` threading layer, applied as the default of
#: ``$OMP_WAIT_POLICY`` (a value the user set wins). OpenMP reads it once, when the first
#: parallel kernel starts the thread pool. "PASSIVE" puts idle worker threads to sleep
#: instead of spinning: measured on a 2-core machine with one core busy (full model,
#: batch 1), the default spinning made 2-thread calls ~3x slower than 1 thread and
#: even later 1-thread calls ~20% slower (idle workers kept spinning); passive
#: workers cost nothing when idle and give the ``workqueue`` layer's timings.
OMP_WAIT_POLICY = "PASSIVE"
os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)

#: Cache compiled kernels on disk so only the very first run compiles. The cache lives in a
#: per-user folder (``$NUMBA_CACHE_DIR``, else ``~/.cache/nnlite/numba``), see ``nnlite.jit``.
CACHE = True

#: Compile the hot kernels with ``parallel=True`` (``prange`` over output rows or
#: row bands). With ``False`` every ``prange`` runs as a plain serial ``range``.
PARALLEL = True

#: LLVM fast-math flags for the arithmetic kernels (conv, inverted residual,
#: soft-argmax). Reassociation lets reductions vectorise; ``nnan``/``ninf`` are
#: left out on purpose so NaN and inf still propagate.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # numba wants a set, not a frozenset

#: Fast-math for kernels whose coordinate arithmetic decides integer indices and
#: in-range tests (RoI align). Off, so the Numba kernel rounds exactly like its
#: NumPy reference and like torchvision.
GEOMETRY_FASTMATH = False

#: Inverted residual: fewest output rows in one parallel band. Each band
#: recomputes the one or two expanded input rows it shares with its neighbour,
#: so very short bands waste work. The kernel makes as many bands per image as
#: there are threads per image (prange splits work statically), at most
#: ``ceil(H_out / MIN_BAND_ROWS)``.
MIN_BAND_ROWS = 4

#: Fewest multiply-adds in one kernel call (inverted residual, conv, RoI group conv) that
#: is split across threads; smaller calls run serially even when more threads are
#: allowed. Each parallel call wakes the sleeping workers and waits for them at its end
#: (``OMP_WAIT_POLICY=PASSIVE``): measured ~50 us per call on a 2-core KVM guest right after
#: another call, and several times that when the machine was idle for 20+ ms (as between
#: camera frames). At ~90 GFLOP/s per core, 10M multiply-adds are ~0.2 ms of one thread, so a
#: second thread saves at most ~0.1 ms there. Demo model, 2 vs 1 thread (quiet machine):
#: its 64x64 blocks (16M) gained 0.15 ms each, its 16x16 blocks (3.6M), heatmap (0.6M) and
#: RoI conv (0.9M) gained nothing or lost, and after an idle gap the whole pass at 2 threads
#: was slower than at 1 while every call above ~4K input floats went parallel. Every layer
#: of the full model but the stem, heatmap and RoI conv is above the threshold.
#: Spinning workers instead (6 Dec 2026, same guest, demo model, 2 vs 1 thread, medians):
#: with ``GOMP_SPINCOUNT=300000`` and this threshold at 1.5M, back-to-back passes take 0.60
#: of the 1-thread time (0.85 as shipped), but a pass after a 30 ms idle gap (a camera
#: frame's) takes 1.9x the 1-thread time (1.07x as shipped), and 19x with the other core
#: busy: the waking, not the spinning, is what a live tracker pays, so both stay as they are.
#: Chains of blocks (``nnlite.kernels.inverted_residual.chain_plan``) count a wake-up as
#: ``MIN_PARALLEL_MACS // 2`` multiply-adds, what splitting one such call in two saves.
MIN_PARALLEL_MACS = 10_000_000
