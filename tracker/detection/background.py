"""A detector run on its own thread, so a live loop never waits for it.

A live try-on shows a frame every 33 ms; a detector that takes longer (the LBP
cascade needs 0.1-0.4 s on a 640x480 frame) would stall the loop for that long
each time it runs, and the camera's frames would be dropped meanwhile.
`BackgroundDetector` hands the frame to a worker thread instead and returns at
once; its result comes out of a later `detect` call. The boxes then describe a
frame a few frames old: the landmark model's crop margin absorbs the motion of
a face in that time, and tracking takes over from there.

Worth it only where the wrapped detector releases the GIL (the cascade's Numba
scan and nnlite's kernels do) and a core is free for it.
"""
from __future__ import annotations

import threading

import numpy as np

from tracker.detection.core import Detector
from tracker.types import Box


class BackgroundDetector:
    """Wraps a `Detector`: `detect` starts a detection and returns finished ones.

    detector : the detector to run on the worker thread.

    `detect(frame)` gives the boxes of the latest detection that finished since
    the previous call (each result is returned once); when there are none it
    returns [] and, if the worker is idle, starts a detection on `frame` (a copy). Errors
    from the wrapped detector are raised by the next `detect` call.
    `warmup()` runs the wrapped detector synchronously (compiles kernels).
    `close()` waits for the worker to finish; the object is also a context manager.
    """

    def __init__(self, detector: Detector):
        self.detector = detector
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: np.ndarray | None = None   # frame waiting for the worker
        self._busy = False                        # worker has a frame (pending or running)
        self._result: list[Box] | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="face-detector", daemon=True)
        self._thread.start()

    def detect(self, image_bgr: np.ndarray) -> list[Box]:
        """uint8 (H, W, 3) BGR frame -> boxes found in an earlier frame, best first; often []."""
        with self._lock:
            if self._closed:
                raise RuntimeError("BackgroundDetector is closed")
            error, self._error = self._error, None
            result, self._result = self._result, None
            # A call that returns boxes starts nothing: the caller has fresh faces and asks
            # again if it still needs some (a tracker that found its faces stops asking).
            if error is None and not result and not self._busy:
                self._pending = np.array(image_bgr, copy=True)  # the caller may reuse its buffer
                self._busy = True
                self._wake.notify()
        if error is not None:
            raise error
        return result or []

    @property
    def busy(self) -> bool:
        """A detection is waiting or running."""
        with self._lock:
            return self._busy

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the worker is idle; -> False on timeout. (Tests and benchmarks.)"""
        with self._wake:
            return self._wake.wait_for(lambda: not self._busy, timeout)

    def warmup(self) -> None:
        """Compile the wrapped detector's kernels here and now: its own warmup(), else one
        detection on a blank frame."""
        if callable(getattr(self.detector, "warmup", None)):
            self.detector.warmup()
        else:
            self.detector.detect(np.zeros((240, 320, 3), np.uint8))

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

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:   # closed and nothing left to do
                    return
                frame, self._pending = self._pending, None
            result, error = None, None
            try:
                result = list(self.detector.detect(frame))
            except BaseException as exc:  # handed to the caller's thread
                error = exc
            with self._wake:
                self._result, self._error = result, error
                self._busy = False
                self._wake.notify_all()
