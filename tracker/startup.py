"""Kernels ready before the first frame: load (or compile) them on a background thread.

With a warm Numba cache, the first frame of a fresh process still pays for Numba's
one-off set-up and for loading each kernel it calls from the cache (measured on a 2-core
EPYC with two other busy processes: ~0.9 s tracking + 0.08 s makeup, against ~25 ms
for later frames). `Tracker.from_weights` starts a `Preparation` right after building:
a thread that initialises Numba's compiler target, runs the detector and the landmark
model once on a blank frame (the same calls as `Tracker.warmup`, hence the same one
specialisation per kernel) and, unless told not to, renders the default look on a
synthetic face (`tracker.precompile.compile_makeup`). That overlaps with whatever the
caller does next (opening a camera or a video, reading its first frame, setting up a
window or a server); the tracker's own methods wait for it before they touch the
models, so no result depends on the timing: the kernels are the same compiled code
whichever thread loaded them. On an empty cache the same thread compiles, while the
helper process of `tracker.precompile` compiles the heads and the makeup on the other
core.

The tracker waits for the models' part only; the makeup's part goes on (on an empty
cache it first waits for the helper process, which compiles those kernels, and then
loads them). The thread is a daemon; interpreter exit and `os.fork` wait for every
unfinished one (a child must not inherit Numba's compiler lock half-taken).
"""
from __future__ import annotations

import atexit
import logging
import os
import subprocess
import threading
import time
import weakref
from typing import Callable

log = logging.getLogger(__name__)

_pending: "weakref.WeakSet[Preparation]" = weakref.WeakSet()
_pending_lock = threading.Lock()


class Preparation:
    """One background run of `steps`, then of `later` (callables, in order).

    `wait()` returns once `steps` are done (what the tracker's own calls need: the
    models' kernels); `later` (the makeup's kernels, which `tracker.makeup.render` may
    call at any time: Numba's compiler lock makes a render that needs a kernel being
    loaded wait for it) keeps going after that, and `finish()` waits for it too.
    An exception in a step is logged and ends the run: the caller's first real call
    then meets the same problem itself, in its own thread, as without a preparation.

    Attributes
    ----------
    seconds : float or None
        How long `steps` took, once they are done.
    error : BaseException or None
        What ended the run early, if anything.
    """

    def __init__(self, steps: list[Callable[[], object]], later: list[Callable[[], object]] = (),
                 name: str = "tracker-prepare"):
        self.seconds: float | None = None
        self.error: BaseException | None = None
        self._steps, self._later = list(steps), list(later)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        with _pending_lock:
            _pending.add(self)
        self._thread.start()

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            for step in self._steps:
                step()
            self.seconds = time.perf_counter() - start
            self._ready.set()
            for step in self._later:
                step()
        except BaseException as exc:  # noqa: BLE001 - reported, and met again by the caller
            self.error = exc
            log.info("background kernel preparation stopped: %s: %s", type(exc).__name__, exc)
        finally:
            if self.seconds is None:
                self.seconds = time.perf_counter() - start
            self._ready.set()
            self._steps = self._later = []
            with _pending_lock:
                _pending.discard(self)

    def done(self) -> bool:
        """True once `steps` have finished (or failed)."""
        return self._ready.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for `steps` (from any thread but its own); -> True when they are done."""
        if self._thread is threading.current_thread():
            return False
        return self._ready.wait(timeout)

    def finish(self, timeout: float | None = None) -> bool:
        """Wait for the whole run, `later` included; -> True when it is over."""
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()


#: Most seconds `after_process` holds up this process's compiles for a helper process.
HELPER_WAIT_S = 300.0


def after_process(proc, timeout: float = HELPER_WAIT_S) -> Callable[[], None]:
    """A step that waits for the process `proc` (a `subprocess.Popen`, or None) to end,
    holding Numba's compiler lock (`nnlite.jit.compiler_lock`).

    A helper process is compiling kernels into the cache (`tracker.precompile`): a render
    that needs one of them meanwhile waits for the helper and then loads it, instead of
    compiling it a second time on a core the helper is using (measured on a busy 2-core
    EPYC: 18 s of makeup compiled twice). Kernels already loaded run as usual.
    """
    def step() -> None:
        if proc is None or proc.poll() is not None:
            return
        from nnlite.jit import compiler_lock

        with compiler_lock():
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.info("kernel helper process still running after %.0f s; not waiting", timeout)
    return step


def holding_compiler_lock(step: Callable[[], object]) -> Callable[[], None]:
    """`step` as a step that runs it holding Numba's compiler lock (`nnlite.jit.compiler_lock`):
    a kernel another thread needs meanwhile waits and then loads what `step` compiled."""
    def locked() -> None:
        from nnlite.jit import compiler_lock

        with compiler_lock():
            step()
    return locked


def start_compiler_init_step() -> None:
    """Numba's compiler target and the modules its first typing pass imports.

    Typing a NumPy array the first time imports ``numpy.ma`` (numba checks for masked
    arrays; NumPy 2 loads that module lazily): ~0.08 s measured on the first frame.
    """
    import numpy.ma  # noqa: F401

    from nnlite.jit import start_compiler_init, wait_compiler_init

    start_compiler_init()
    wait_compiler_init()


def wait_all() -> None:
    """Wait for every unfinished preparation (at exit and before a fork)."""
    with _pending_lock:
        running = list(_pending)
    for prep in running:
        prep.finish()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(before=wait_all)
atexit.register(wait_all)
