"""The live loop: newest frame in, tracked, rendered, a status line drawn, handed to a sink.

See `tracker.live` for the whole picture; `warmup` compiles the kernels before
the loop so the first frames' latency does not include it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import cv2
import numpy as np

from tracker.geometry import CropBox, landmark_box
from tracker.live.capture import FrameGrabber, WallClock
from tracker.live.stats import FrameInfo, LiveStats
from tracker.regions import MEAN_SHAPE
from tracker.types import Box, Face, Render

log = logging.getLogger(__name__)


def draw_status(image: np.ndarray, lines: list[str]) -> None:
    """Draw text lines on a dark band at the top of image (uint8 BGR), in place."""
    lines = [s for s in lines if s]
    if not lines:
        return
    scale = 0.45 * max(1.0, image.shape[1] / 640.0)
    thick = 1 if scale < 0.8 else 2
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    step = th + base + 4
    h = min(image.shape[0], step * len(lines) + 4)
    band = image[:h]
    band //= 3  # darken: readable on any background, and cheap
    for i, text in enumerate(lines):
        cv2.putText(image, text, (6, 4 + th + i * step), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 255, 255), thick, cv2.LINE_AA)


class _Average:
    """Exponential moving average (the status line would flicker with raw per-frame values)."""

    def __init__(self, weight: float = 0.1):
        self.weight, self.value = weight, None

    def __call__(self, x: float) -> float:
        self.value = x if self.value is None else self.value + self.weight * (x - self.value)
        return self.value


def warmup(tracker, render: Render | None, size: tuple[int, int]) -> float:
    """Run detector, landmark model and renderer once on a synthetic frame; returns seconds.

    Numba compiles (or loads its cache) on the first call of each kernel; doing
    that before the live loop keeps it out of the first frames' latency. Uses
    `tracker.warmup()` when the tracker has one; the renderer gets the mean
    face shape, after the tracker's `precompile_helper` process (if any) has ended. The
    tracker is reset afterwards.
    """
    start = time.perf_counter()
    w, h = size
    frame = np.full((h, w, 3), 128, np.uint8)
    if hasattr(tracker, "warmup"):
        tracker.warmup()
    else:
        tracker.detector.detect(frame)
        tracker.landmarker.run(frame, [CropBox(w / 2.0, h / 2.0, 0.6 * min(w, h))])
    if render is not None:
        # On an empty cache the helper process compiles the makeup kernels: load them
        # when it is done instead of compiling them a second time (tracker.startup).
        from tracker.startup import after_process

        after_process(getattr(tracker, "precompile_helper", None))()
        points = (np.asarray(MEAN_SHAPE, np.float32) * (0.25 * min(w, h)) + [w / 2.0, h / 2.0]).astype(np.float32)
        render(frame, [Face(Box(*landmark_box(points), 1.0), points, 1.0, 0)])
    tracker.reset()
    return time.perf_counter() - start


def run_live(source, tracker, render: Render | None = None, sink=None, *, max_frames: int | None = None,
             pace: bool | None = None, on_key: Callable[[int], bool] | None = None,
             caption: Callable[[], str] | None = None, status: bool = True,
             stop: threading.Event | None = None, clock=None) -> LiveStats:
    """Track and render the newest frame of a live source until it ends or is stopped.

    source : an open tracker.sources.FrameSource (left open);
    tracker : a tracker.tracking.Tracker (reset first), or anything with
        process(frame, timestamp) -> list[Face] and reset(); its `last_times`
        (detect / landmark seconds of the last frame) is reported when present;
    render : (frame, faces) -> new frame (makeup renderer, `TryOn`); None: the frame as is;
    sink : WindowSink, RecordSink, MultiSink, or any object with
        show(frame, FrameInfo) -> key and poll() -> key; None: shown nowhere;
    max_frames : stop after this many source frames (None: until the source ends);
    pace : release frames at the source's frame rate, like a camera (default:
        when the source is not live, i.e. a file);
    on_key : called with each key pressed; return False to end the session;
    caption : () -> text (lines split by newline) added under the status line;
    status : draw the status line (frames/s, stage times, latency, drops);
    stop : an Event; setting it (e.g. from a SIGINT handler) ends the session cleanly;
    clock : the clock for pacing, latency and stage times (default `WallClock`).

    The frame shown is what `render` returned plus the status line (drawn on a
    copy: neither the input frame nor render's result is drawn on). Exceptions from the source, tracker, renderer or
    sink propagate after the capture thread has stopped.
    """
    clock = WallClock() if clock is None else clock
    grabber = FrameGrabber(source, pace=not source.is_live if pace is None else pace, max_frames=max_frames,
                           clock=clock)
    tracker.reset()
    latency, detect, landmarks, render_t = [], [], [], []
    with_faces = 0
    shown_at: deque[float] = deque(maxlen=30)
    avg = {k: _Average() for k in ("detect", "landmarks", "render", "latency")}
    first_capture = None
    ended_by = None
    start = clock.now()
    grabber.start()
    try:
        while ended_by is None:
            if stop is not None and stop.is_set():
                ended_by = "stopped"
                break
            item = grabber.take(timeout=0.05)
            if item is None:
                if grabber.finished:
                    ended_by = grabber.ended_by or "end of source"
                    break
                key = sink.poll() if sink is not None else -1
            else:
                if first_capture is None:
                    first_capture = item.captured_at
                faces = tracker.process(item.image, timestamp=item.captured_at - first_capture)
                times = getattr(tracker, "last_times", None)
                t0 = clock.now()
                out = render(item.image, faces) if render is not None else item.image
                t_render = clock.now() - t0
                d = getattr(times, "detect", 0.0) * 1e3
                lm = getattr(times, "landmarks", 0.0) * 1e3
                fps = (len(shown_at) - 1) / (shown_at[-1] - shown_at[0]) if len(shown_at) > 1 else 0.0
                if status or caption is not None:
                    out = out.copy()  # never draw on what render returned (it may keep it)
                    lines = []
                    if status:
                        last_latency = avg["latency"].value
                        lines.append(f"{fps:4.1f} fps  detect {avg['detect'](d):4.1f}  landmarks "
                                     f"{avg['landmarks'](lm):4.1f}  render {avg['render'](t_render * 1e3):4.1f} ms"
                                     + (f"  latency {last_latency:3.0f} ms" if last_latency is not None else "")
                                     + f"  dropped {grabber.dropped}")
                    if caption is not None:
                        lines.extend(caption().splitlines())
                    draw_status(out, lines)
                info = FrameInfo(item.index, item.captured_at, len(latency) + 1, grabber.dropped, fps)
                key = sink.show(out, info) if sink is not None else -1
                now = clock.now()
                shown_at.append(now)
                latency.append((now - item.captured_at) * 1e3)
                avg["latency"](latency[-1])
                detect.append(d)
                landmarks.append(lm)
                render_t.append(t_render * 1e3)
                with_faces += bool(faces)
            if key is not None and key >= 0 and on_key is not None and not on_key(key):
                ended_by = "quit"
            elif getattr(sink, "closed", False):
                ended_by = "window closed"
    finally:
        grabber.stop()
    if grabber.error is not None:
        raise grabber.error
    seconds = clock.now() - start
    processed = len(latency)
    if grabber.offered != processed + grabber.dropped:  # only if the capture thread failed to stop
        log.warning("frame counts disagree: %d offered, %d processed, %d dropped",
                    grabber.offered, processed, grabber.dropped)
    return LiveStats(grabber.offered, processed, grabber.dropped, with_faces, seconds,
                     np.asarray(latency), np.asarray(detect), np.asarray(landmarks), np.asarray(render_t),
                     ended_by)
