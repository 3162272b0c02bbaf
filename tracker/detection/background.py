"""A detector run on its own thread, so a live loop never waits for it.

A live try-on shows a frame every 33 ms; a detector that takes longer (the LBP
cascade needs 0.1-0.4 s on a 640x480 frame) would stall the loop for that long
each time it runs, and the camera's frames would be dropped meanwhile.
`BackgroundDetector` hands the frame to a worker thread instead and returns at
once; its result comes out of a later `detect` or `poll` call. The boxes then
describe a frame a few frames old: the landmark model's crop margin absorbs the
motion of a face in that time, and tracking takes over from there. Results older
than `max_age` seconds are dropped rather than handed out.

Worth it only where the wrapped detector releases the GIL (the cascade's Numba
scan and nnlite's kernels do) and a core is free for it. The worker runs the
detector's Numba kernels on one thread (their serial paths), so they never open
a parallel region beside the caller's (Numba's workqueue threading layer forbids
that) and never compete for more than the one core.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from nnlite.jit import thread_limit
from tracker.detection import core
from tracker.types import Box


class BackgroundDetector:
    """Wraps a `Detector`: `detect` starts a detection and returns finished ones.

    detector : the detector to run on the worker thread.
    max_age : seconds; a result whose frame was handed over longer ago is dropped.

    `detect(frame)` returns the boxes of the detection that finished since the
    previous `detect` or `poll` (each result is returned once, [] when none has)
    and, when the worker is then idle, starts a detection on `frame` (a copy).
    `poll()` only collects a finished result. Errors from the wrapped detector are
    raised by the next `detect` or `poll`. `discard()` forgets a finished result
    (after a jump in the video). `warmup()` runs the wrapped detector in the
    calling thread (kernel compilation at start-up). `close()` waits for the
    worker to finish (an error not yet raised is dropped); the object is also a
    context manager.
    """

    def __init__(self, detector: Detector, max_age: float = 1.0):
        self.detector = detector
        self.max_age = float(max_age)
        self._wake = threading.Condition()
        self._pending: tuple[np.ndarray, float] | None = None  # frame for the worker, handed at
        self._busy = False                            # worker has a frame (pending or running)
        self._result: tuple[list[Box], float] | None = None    # boxes, when their frame was handed
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="face-detector", daemon=True)
        self._thread.start()

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        """uint8 (H, W, 3) BGR frame -> boxes found in an earlier frame, best first; often []."""
        with self._wake:
            boxes = self._collect()
            if not self._busy:
                self._pending = (np.array(image_bgr, copy=True), time.monotonic())  # caller reuses its buffer
                self._busy = True
                self._wake.notify_all()
        return boxes

    def poll(self) -> list[Box]:
        """Boxes of a detection that finished since the last call, else []; starts nothing."""
        with self._wake:
            return self._collect()

    def discard(self) -> None:
        """Forget a finished result not yet collected (a detection in progress still lands)."""
        with self._wake:
            self._result = None

    @property
    def busy(self) -> bool:
        """A detection is waiting or running."""
        with self._wake:
            return self._busy

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is idle; -> False on timeout. (Tests and benchmarks.)"""
        with self._wake:
            return self._wake.wait_for(lambda: not self._busy, timeout)

    def warmup(self) -> float:
        """Compile the wrapped detector's kernels here and now: its own warmup(), else one
        detection on a blank frame. Waits for a detection in progress first; -> seconds
        taken by the warm-up itself."""
        self.wait()
        with thread_limit(1):
            return core.warmup(self.detector)

    def close(self) -> None:
        """Stop the worker after its current detection. Idempotent."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self._thread.join()

    def __enter__(self) -> "BackgroundDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _collect(self) -> list[Box]:
        """The finished result (taken), [] if none or too old; raises a pending error. Locked."""
        if self._closed:
            raise RuntimeError("BackgroundDetector is closed")
        error, self._error = self._error, None
        if error is not None:
            raise error
        result, self._result = self._result, None
        if result is None or time.monotonic() - result[1] > self.max_age:
            return []
        return result[0]

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:   # closed and nothing left to do
                    return
                (frame, handed), self._pending = self._pending, None
            result, error = None, None
            try:
                with thread_limit(1):
                    result = list(self.detector.detect(frame))
            except BaseException as exc:  # handed to the caller's thread
                error = exc
            with self._wake:
                self._result = None if result is None else (result, handed)
                self._error = error
                self._busy = False
                self._wake.notify_all()
