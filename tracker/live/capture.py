"""The capture thread of the live loop: a source read in its own thread, only the newest frame kept.

`FrameGrabber` reads a `tracker.sources.FrameSource` and keeps the newest frame
in a one-slot mailbox; a frame nobody took before the next one arrived is
counted as dropped. A source that is not live (a file) can be paced at its
frame rate, frame i released at start + i / fps, so a file plays like a
camera. Time comes from a clock object (`WallClock`, or a test's manual one).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


class WallClock:
    """The clock the live loop and the capture thread run on: `time.perf_counter` seconds.

    Anything with the same two methods can stand in for it (a test drives a manual
    clock, so pacing and frame dropping are checked without the wall clock).
    """

    def now(self) -> float:
        """Seconds on this clock."""
        return time.perf_counter()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait until `seconds` have passed on this clock or `event` is set; True when it was set."""
        return event.wait(seconds)


@dataclass(frozen=True, slots=True, eq=False)
class CapturedFrame:
    """A frame from the capture thread: its index in the source, the image, when it became available."""
    index: int
    image: np.ndarray
    captured_at: float  # seconds on the grabber's clock (`WallClock`: time.perf_counter)


class FrameGrabber:
    """Reads a `FrameSource` in its own thread, keeping only the newest frame.

    source : an open tracker.sources.FrameSource (not closed here);
    pace : release frame i at start + i / fps (a file played like a camera);
    fps : pacing rate (default: the source's);
    max_frames : read at most this many frames (None: until the source ends);
    clock : what time is and how to wait (default `WallClock`).

    `offered` counts frames made available, `dropped` those replaced (or left
    over at `stop`) before anyone took them. An exception in the thread ends
    the capture and is kept in `error`.
    """

    def __init__(self, source, pace: bool = False, fps: float | None = None, max_frames: int | None = None,
                 clock=None):
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        self.source = source
        self.pace = bool(pace)
        self.fps = float(fps or source.fps)
        if self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        self.max_frames = max_frames
        self.clock = WallClock() if clock is None else clock
        self.offered = 0
        self.dropped = 0
        self.error: BaseException | None = None
        self.ended_by: str | None = None
        self._slot: CapturedFrame | None = None
        self._ended = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)

    def start(self) -> "FrameGrabber":
        self._thread.start()
        return self

    def _publish(self, frame: CapturedFrame) -> None:
        with self._cond:
            if self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self.offered += 1
            self._cond.notify_all()

    def _run(self) -> None:
        reason = "end of source"
        try:
            if self.source.is_live:
                self.source.skip_buffered()  # read when the source was opened: stale by now
            period = 1.0 / self.fps
            start = None
            while not self._stop.is_set():
                if self.max_frames is not None and self.offered >= self.max_frames:
                    reason = "frame limit"
                    break
                image = self.source.read()
                if image is None:
                    break
                now = self.clock.now()
                stamp = now
                if self.pace:
                    if start is None:
                        start = now
                    stamp = start + self.offered * period
                    if stamp > now and self.clock.wait(self._stop, stamp - now):
                        reason = "stopped"
                        break
                self._publish(CapturedFrame(self.offered, image, stamp))
            else:
                reason = "stopped"
        except BaseException as exc:  # handed to the loop, which raises it
            self.error = exc
            reason = "error"
        finally:
            with self._cond:
                self.ended_by = reason
                self._ended = True
                self._cond.notify_all()

    def take(self, timeout: float | None = None) -> CapturedFrame | None:
        """The newest frame not yet taken (waiting up to `timeout` s); None if there is none."""
        with self._cond:
            if self._slot is None and not self._ended:
                self._cond.wait(timeout)
            frame, self._slot = self._slot, None
            return frame

    @property
    def finished(self) -> bool:
        """The capture has ended and its last frame has been taken."""
        with self._cond:
            return self._ended and self._slot is None

    def stop(self, timeout: float = 5.0) -> None:
        """End the capture thread; a frame still waiting is counted as dropped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: the capture thread did not stop within %.0f s", self.source.name, timeout)
        with self._cond:
            if self._slot is not None:
                self.dropped += 1
                self._slot = None
