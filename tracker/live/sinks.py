"""Where the live loop's frames go: a window, a recording, both, or a progress callback.

A sink has show(frame, FrameInfo) -> key and poll() -> key (-1: none), and may
have `closed`. `window_problem()` finds out, in a child process, whether a
window can be opened at all: OpenCV's Qt backend aborts the process that
tries without a display. OpenCV's Qt build ships no fonts, so the window
code points Qt at the system's (`QT_QPA_FONTDIR`) unless the user has.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import cv2
import numpy as np

from tracker.io import VideoWriter
from tracker.live.stats import FrameInfo


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



class ProgressSink:
    """Shows nothing: calls `report(info)` with each frame's `FrameInfo` (e.g. a console
    progress line for headless runs); never returns a key."""

    def __init__(self, report: Callable[[FrameInfo], None]):
        self.report = report

    def show(self, frame: np.ndarray, info: FrameInfo | None = None) -> int:
        if info is not None:
            self.report(info)
        return -1

    def poll(self) -> int:
        return -1
