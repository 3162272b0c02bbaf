"""The live loop: newest frame in, rendered frame out, stale frames dropped.

    with open_source(0) as source, WindowSink("try-on") as window:
        stats = run_live(source, tracker, render, window, on_key=...)
    stats.summary()  # "shown 118 of 120 frames (2 dropped), 29.6 frames/s, latency median ..."

A capture thread (`FrameGrabber`) reads the source and keeps only the newest
frame in a one-slot mailbox. The loop takes it, tracks the faces, renders,
draws a status line (frames/s, detection / landmarks / render time, latency)
and hands the result to a sink: a window (`WindowSink`), a recording
(`RecordSink`), both (`MultiSink`) or nothing. A frame the loop had no time for
is replaced by the next one and counted as dropped, so latency stays bounded
by one frame's processing time instead of growing with a queue:
frames_offered == frames_processed + frames_dropped.

A source that is not live (a video file) is paced at its frame rate, frame i
becoming available at start + i / fps, so a file plays as if it were a camera;
that is how tests and benchmarks exercise this path. Latency is measured from
the moment a frame became available (paced: its due time; camera: when the
read returned) to the moment the sink has shown it.

`TryOn` is the try-on controller for `tracker.camera`: a render callable
driven by a `tracker.camera_keys.ViewState` (look, lipstick, intensity,
landmarks, before/after split) plus the key handler that updates it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker.camera_keys import KEY_HELP, ViewState, handle_key
from tracker.draw import draw_landmarks
from tracker.geometry import CropBox, landmark_box
from tracker.io import VideoWriter
from tracker.regions import MEAN_SHAPE
from tracker.types import Box, Face

log = logging.getLogger(__name__)

Render = Callable[[np.ndarray, list[Face]], np.ndarray]


# ---------------------------------------------------------------------------- capture

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


# ------------------------------------------------------------------------------ stats

@dataclass(frozen=True, slots=True)
class FrameInfo:
    """What a sink learns about the frame it shows."""
    index: int          # the frame's index in the source
    captured_at: float  # when it became available (time.perf_counter seconds)
    processed: int      # frames processed so far, this one included
    dropped: int        # frames dropped so far
    fps: float          # frames shown per second, recent average


@dataclass(frozen=True, eq=False)
class LiveStats:
    """What `run_live` did.

    frames_offered = frames_processed + frames_dropped. Per processed frame
    (float64 arrays, ms): latency_ms (available -> shown), detect_ms,
    landmarks_ms, render_ms. ended_by: "end of source", "frame limit", "quit",
    "window closed" or "stopped".
    """
    frames_offered: int
    frames_processed: int
    frames_dropped: int
    frames_with_faces: int
    seconds: float
    latency_ms: np.ndarray
    detect_ms: np.ndarray
    landmarks_ms: np.ndarray
    render_ms: np.ndarray
    ended_by: str

    @property
    def frames_per_second(self) -> float:
        """Frames shown per second of wall time."""
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    def latency_percentile(self, q: float) -> float:
        """The q-th percentile of capture-to-display latency in ms (nan when nothing was shown)."""
        return float(np.percentile(self.latency_ms, q)) if self.latency_ms.size else float("nan")

    @property
    def latency_median_ms(self) -> float:
        return self.latency_percentile(50)

    @property
    def latency_p95_ms(self) -> float:
        return self.latency_percentile(95)

    def summary(self) -> str:
        """One line: shown / dropped, frames/s, latency, median stage times."""
        def med(a):
            return float(np.median(a)) if a.size else float("nan")
        return (f"shown {self.frames_processed} of {self.frames_offered} frames "
                f"({self.frames_dropped} dropped), {self.frames_per_second:.1f} frames/s, "
                f"latency median {self.latency_median_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms; "
                f"median detect {med(self.detect_ms):.1f} / landmarks {med(self.landmarks_ms):.1f} / "
                f"render {med(self.render_ms):.1f} ms")


# ------------------------------------------------------------------------ status line

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


# ------------------------------------------------------------------------------- sinks

_PROBE = ("import cv2, numpy as np; cv2.namedWindow('probe', cv2.WINDOW_AUTOSIZE); "
          "cv2.imshow('probe', np.zeros((8, 8, 3), np.uint8)); cv2.waitKey(1); cv2.destroyAllWindows()")


_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/share/fonts/TTF")


def _qt_fonts() -> None:
    """Point the Qt build of OpenCV (it ships no fonts) at system fonts, unless the user has.

    Without it every new window prints "QFontDatabase: Cannot find font directory".
    """
    if "QT_QPA_FONTDIR" not in os.environ:
        found = next((d for d in _FONT_DIRS if os.path.isdir(d)), None)
        if found is not None:
            os.environ["QT_QPA_FONTDIR"] = found


def window_problem(timeout: float = 20.0) -> str | None:
    """Why no window can be opened here, or None when one can.

    On Linux and other X11/Wayland systems it checks DISPLAY / WAYLAND_DISPLAY,
    then opens a tiny window in a child process: OpenCV's Qt backend aborts
    the whole process when it cannot reach a display, so the first try must
    not happen in this one.
    """
    if sys.platform in ("win32", "darwin"):
        return None
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if not display:
        return "no display to open a window on (DISPLAY is not set)"
    _qt_fonts()
    try:
        probe = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"opening a window on display {display} did not finish within {timeout:.0f} s"
    if probe.returncode == 0:
        return None
    err = probe.stderr
    if "not implemented" in err.lower():
        return "this OpenCV build has no GUI support (opencv-python-headless?), so it cannot open a window"
    last = next((s.strip() for s in reversed(err.splitlines())
                 if s.strip() and not s.startswith(("QFontDatabase", "Note that Qt"))), "")
    return f"cannot open a window on display {display}" + (f" ({last})" if last else "")


class WindowSink:
    """Shows frames in an OpenCV window; `show`/`poll` return the key pressed (-1: none).

    `closed` becomes True when the user closes the window. Check
    `window_problem()` first: without a display OpenCV may abort the process.
    """

    def __init__(self, title: str = "facelite"):
        self.title = title
        self.closed = False
        self._shown = False
        _qt_fonts()
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)

    def _key(self) -> int:
        key = cv2.waitKey(1)
        if self._shown:
            try:
                visible = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE)
            except cv2.error:  # the Qt backend raises once the window is gone
                visible = -1
            if visible < 1:
                self.closed = True
        return key

    def show(self, frame: np.ndarray, info: FrameInfo | None = None) -> int:
        if self.closed:
            return -1
        cv2.imshow(self.title, frame)
        self._shown = True
        return self._key()

    def poll(self) -> int:
        return -1 if self.closed or not self._shown else self._key()

    def close(self) -> None:
        if not self.closed:
            cv2.destroyWindow(self.title)
        cv2.waitKey(1)  # let the GUI process the close
        self.closed = True

    def __enter__(self) -> "WindowSink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class RecordSink:
    """Records what the loop shows to a video file, written atomically (`tracker.io.VideoWriter`).

    path : .mp4/.m4v/.mov/.mkv/.avi; fps : the source's; size : (width, height).
    Frames the loop dropped are filled by repeating the frame that was on
    screen, so the recording keeps the source's timeline. As a context
    manager the file appears only when the block ends without an exception.
    """

    def __init__(self, path, fps: float, size: tuple[int, int]):
        self.writer = VideoWriter(path, fps, size)
        self.path = self.writer.path
        self._last: np.ndarray | None = None
        self._last_index: int | None = None

    @property
    def frames_written(self) -> int:
        return self.writer.frames_written

    def show(self, frame: np.ndarray, info: FrameInfo | None = None) -> int:
        if info is not None and self._last_index is not None:
            for _ in range(max(0, info.index - self._last_index - 1)):
                self.writer.write(self._last)
        self.writer.write(frame)
        self._last = frame
        self._last_index = info.index if info is not None else None
        return -1

    def poll(self) -> int:
        return -1

    def close(self) -> None:
        """Finish the file and move it into place (OutputError when nothing was recorded)."""
        self.writer.close()

    def abort(self) -> None:
        """Delete what was recorded; the output path is left untouched."""
        self.writer.abort()

    def __enter__(self) -> "RecordSink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.writer.__exit__(exc_type, exc, tb)


class MultiSink:
    """Several sinks as one: every frame goes to each; the first key pressed wins."""

    def __init__(self, *sinks):
        self.sinks = [s for s in sinks if s is not None]

    @property
    def closed(self) -> bool:
        return any(getattr(s, "closed", False) for s in self.sinks)

    def show(self, frame: np.ndarray, info: FrameInfo | None = None) -> int:
        keys = [s.show(frame, info) for s in self.sinks]
        return next((k for k in keys if k >= 0), -1)

    def poll(self) -> int:
        keys = [s.poll() for s in self.sinks]
        return next((k for k in keys if k >= 0), -1)


# -------------------------------------------------------------------------- the loop

def warm_up(tracker, render: Render | None, size: tuple[int, int]) -> float:
    """Run detector, landmark model and renderer once on a synthetic frame; returns seconds.

    Numba compiles (or loads its cache) on the first call of each kernel; doing
    that before the live loop keeps it out of the first frames' latency. Uses
    `tracker.warmup()` when the tracker has one; the renderer gets the mean
    face shape. The tracker is reset afterwards.
    """
    start = time.perf_counter()
    w, h = size
    frame = np.full((h, w, 3), 128, np.uint8)
    if hasattr(tracker, "warmup"):
        tracker.warmup()
    else:
        tracker.detector.detect(frame)
        tracker.landmarker.predict(frame, [CropBox(w / 2.0, h / 2.0, 0.6 * min(w, h))])
    if render is not None:
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


# ---------------------------------------------------------------------------- try-on

class TryOn:
    """Makeup try-on driven by keys: a render callable for `run_live` plus its key handler.

    state : the initial `ViewState`; state.looks are the preset names keys 1-9 select.
    overrides : `tracker.makeup.look_with_overrides` arguments applied to every
        preset (lip_color, lip_finish, eyeshadow_color, blush_color), e.g. from
        the command line; the lipstick key cycle replaces lip_color.
    snapshot_dir : where the snapshot key saves PNGs (default: the working directory).
    on_snapshot : called with the path of each snapshot saved.

    Use `tryon` as render, `tryon.on_key` as on_key and `tryon.caption` as caption.
    """

    def __init__(self, state: ViewState, overrides: dict | None = None, snapshot_dir=None,
                 on_snapshot: Callable[[Path], None] | None = None):
        if not state.looks:
            raise ValueError("TryOn needs at least one preset look in state.looks")
        self.state = state
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
        self.snapshot_dir = Path(snapshot_dir) if snapshot_dir is not None else None
        self.on_snapshot = on_snapshot
        self.last_frame: np.ndarray | None = None
        self._presets: dict = {}
        self._cached: tuple | None = None

    def _preset(self, name: str):
        from tracker.makeup import load_look, look_with_overrides

        if name not in self._presets:
            look = load_look(name)
            try:
                look = look_with_overrides(look, **self.overrides)
            except ValueError as exc:
                log.warning("look %s: command-line settings not applied (%s)", name, exc)
            self._presets[name] = look
        return self._presets[name]

    def look(self):
        """The `tracker.makeup.Look` the state selects, or None (makeup off)."""
        s = self.state
        if not s.makeup:
            return None
        key = (s.look_name, s.lip, s.intensity)
        if self._cached is None or self._cached[0] != key:
            from tracker.makeup import look_with_overrides

            look = look_with_overrides(self._preset(s.look_name), lip_color=s.lip_color, intensity=s.intensity)
            self._cached = (key, look)
        return self._cached[1]

    def __call__(self, frame: np.ndarray, faces: list[Face]) -> np.ndarray:
        """The frame as the state says: makeup, before/after split, landmarks. A new image."""
        from tracker.makeup import render

        look = self.look()
        out = render(frame, faces, look) if look is not None else frame.copy()
        if self.state.split:
            h, w = frame.shape[:2]
            mid = w // 2
            out[:, :mid] = frame[:, :mid]
            cv2.line(out, (mid, 0), (mid, h - 1), (255, 255, 255), 1)
            scale = 0.5 * max(1.0, w / 640.0)
            for text, x in (("before", 8), ("after", mid + 8)):
                cv2.putText(out, text, (x, h - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(out, text, (x, h - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                            cv2.LINE_AA)
        if self.state.landmarks:
            draw_landmarks(out, faces)
        self.last_frame = out
        return out

    def caption(self) -> str:
        """Status text: the look, intensity and lipstick; the keys when help is on."""
        text = self.state.describe() + ("" if self.state.help else "   (h: keys)")
        return text + ("\n" + KEY_HELP if self.state.help else "")

    def on_key(self, key: int) -> bool:
        """Apply one key (see tracker.camera_keys); False when the session should end."""
        state = handle_key(self.state, key)
        if state.snapshot:
            state = dataclasses.replace(state, snapshot=False)
            if self.last_frame is not None:
                path = self.save_snapshot()
                if self.on_snapshot is not None:
                    self.on_snapshot(path)
        self.state = state
        return not state.quit

    def save_snapshot(self) -> Path:
        """Write the last rendered frame (no status line) as tryon-DATE-TIME.png; returns its path."""
        from tracker.pipeline import write_image

        if self.last_frame is None:
            raise RuntimeError("no frame rendered yet")
        folder = self.snapshot_dir if self.snapshot_dir is not None else Path.cwd()
        stem = f"tryon-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = folder / f"{stem}.png", 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.png"
        write_image(path, self.last_frame)
        return path
