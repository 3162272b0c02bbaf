"""Frame sources: a camera, a video file or a stream URL behind one reader.

    with open_source("clip.mp4") as source:       # or 0 (camera index), "rtsp://host/cam"
        for frame in source:                       # uint8 (H, W, 3) BGR, checked on every read
            ...

- `FrameSource` wraps any object with OpenCV's `read() -> (ok, frame)` /
  `isOpened()` interface (cv2.VideoCapture, or a synthetic source in tests).
  It reads the first frame when it is built, so a source that opens but gives
  no frames fails early, and it checks every frame (8-bit colour, same size).
  `kind` says what it reads; `is_live` is True for cameras and streams, which
  deliver frames in real time (a file is read as fast as it is asked).
- `open_file(path)`, `open_camera(index)`, `open_stream(url)` open one kind and
  raise `InputError` naming it when it cannot be used, with no fallback to
  another source; `open_source(spec)` picks by the spec (`parse_source` turns
  command-line text into a spec: digits -> camera index, "scheme://..." -> URL,
  anything else -> file path).
"""
from __future__ import annotations

import contextlib
import glob
import logging
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import InputError

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
CAMERA, FILE, STREAM, SYNTHETIC = "camera", "file", "stream", "synthetic"
KINDS = (CAMERA, FILE, STREAM, SYNTHETIC)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class FrameSource:
    """Frames of a camera, video file or stream, checked on every read.

    capture : an object with read() -> (ok, frame) and isOpened() (cv2.VideoCapture
    or a synthetic source); name : shown in errors; fps : frames per second
    (DEFAULT_FPS when unknown); frame_count : frames announced by the container
    (None when unknown, and only an estimate otherwise); kind : one of KINDS.

    The first frame is read at construction, so an empty source fails early.
    `read()` returns the next uint8 (H, W, 3) BGR frame or None at the end;
    iterating yields frames until the first failed read. `ended_early` is then
    True when fewer frames were read than the container announced (a truncated
    or damaged file: the rest could not be decoded).
    """

    def __init__(self, capture, name: str, fps: float = DEFAULT_FPS, frame_count: int | None = None,
                 kind: str = FILE):
        if kind not in KINDS:
            raise ValueError(f"unknown source kind {kind!r}: choose one of {', '.join(KINDS)}")
        self.name = str(name)
        self.kind = kind
        self._capture = capture
        if not capture.isOpened():
            raise InputError(f"cannot open {self.name} as a video")
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else DEFAULT_FPS
        self.frame_count = frame_count if frame_count and 0 < frame_count < 10**9 else None
        self.frames_read = 0
        self.ended = False
        ok, first = capture.read()
        if not ok or first is None:
            self.close()
            raise InputError(f"{self.name} has no readable frames")
        self._first = self._check(first)
        self.height, self.width = first.shape[:2]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return (self.width, self.height)

    @property
    def ended_early(self) -> bool:
        """The source has ended with fewer frames read than its container announced."""
        return self.ended and self.frame_count is not None and self.frames_read < self.frame_count

    @property
    def is_live(self) -> bool:
        """True for cameras and streams: frames arrive in real time, whether read or not."""
        return self.kind in (CAMERA, STREAM)

    def _check(self, frame) -> np.ndarray:
        if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
                and frame.shape[2] == 3):
            raise InputError(f"{self.name}: frame {self.frames_read} is not an 8-bit colour image "
                             f"({getattr(frame, 'dtype', type(frame))} {getattr(frame, 'shape', '')})")
        if self.frames_read and frame.shape[:2] != (self.height, self.width):
            raise InputError(f"{self.name}: frame {self.frames_read} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"earlier frames {self.width}x{self.height}")
        return frame

    def read(self) -> np.ndarray | None:
        """The next frame, or None when the source has ended."""
        if self._first is not None:
            first, self._first = self._first, None
            self.frames_read = 1
            return first
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self.ended = True
            if self.ended_early:
                log.info("%s: read %d frames, container announced %d", self.name, self.frames_read,
                         self.frame_count)
            return None
        frame = self._check(frame)
        self.frames_read += 1
        return frame

    def skip_buffered(self) -> None:
        """Forget the frame read at construction (stale for a live source opened a while ago)."""
        if self._first is not None:
            self._first = None
            self.frames_read = 1

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        release = getattr(self._capture, "release", None)
        if release is not None:
            release()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_source(text: str | int | os.PathLike) -> int | str | Path:
    """Command-line text -> source spec: "0" -> camera 0, "scheme://..." -> URL str, else a Path."""
    if isinstance(text, int):
        return text
    if isinstance(text, os.PathLike):
        return Path(text)
    text = str(text).strip()
    if text.isdigit():
        return int(text)
    if _URL.match(text) and not text.lower().startswith("file://"):
        return text
    if text.lower().startswith("file://"):
        return Path(text[7:])
    return Path(text)


def _video_props(capture) -> tuple[float, int | None]:
    fps = capture.get(cv2.CAP_PROP_FPS)
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    count = int(count) if math.isfinite(count) and count > 0 else None
    return fps, count


def open_file(path: str | os.PathLike) -> FrameSource:
    """Open a video file for reading; InputError naming the path when it cannot be used."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"video not found: {p}")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a video file")
    if not p.is_file():
        raise InputError(f"{p} is not a regular file")
    if not os.access(p, os.R_OK):
        raise InputError(f"cannot read {p}: no permission")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty")
    if cv2.haveImageReader(str(p)):  # OpenCV would play a still image as a 1-frame video
        raise InputError(f"{p} is a still image, not a video (for images use python -m tracker.image)")
    capture = cv2.VideoCapture(str(p))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"cannot open {p} as a video (not a video file, or an unsupported format)")
    fps, count = _video_props(capture)
    if not (math.isfinite(fps) and fps > 0):
        log.warning("%s: no frame rate in the file, assuming %g", p, DEFAULT_FPS)
    return FrameSource(capture, str(p), fps, count, kind=FILE)


def camera_devices() -> list[str] | None:
    """Video devices the system lists (Linux: /dev/video*); None where it cannot tell."""
    if sys.platform.startswith("linux"):
        return sorted(glob.glob("/dev/video*"))
    return None


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own warnings while probing devices (we raise our own message)."""
    utils = getattr(cv2, "utils", None)
    logging_mod = getattr(utils, "logging", None)
    if logging_mod is None:
        yield
        return
    level = logging_mod.getLogLevel()
    logging_mod.setLogLevel(logging_mod.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        logging_mod.setLogLevel(level)


def open_camera(index: int = 0, size: tuple[int, int] | None = (640, 480), fps: float | None = None) -> FrameSource:
    """Open camera `index`, asking for `size` (width, height) and `fps` (the camera may differ).

    Raises InputError saying whether there is no camera at all or this one
    cannot be opened (in use, no permission, wrong index) or gives no frames.
    """
    if index < 0:
        raise InputError(f"camera index must be 0 or more, got {index}")
    devices = camera_devices()
    name = f"camera {index}"
    if devices is not None and not devices:
        raise InputError("no camera found (no /dev/video* device on this machine)")
    with _quiet_opencv():
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            listed = f"; devices present: {', '.join(devices)}" if devices else ""
            raise InputError(f"cannot open {name} (not connected, in use by another program, "
                             f"or no permission{listed})")
        if size is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(size[0]))
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(size[1]))
        if fps is not None:
            capture.set(cv2.CAP_PROP_FPS, float(fps))
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # newest frame, not a queue (where supported)
        reported, _ = _video_props(capture)
        try:
            return FrameSource(capture, name, reported, None, kind=CAMERA)
        except InputError:
            raise InputError(f"{name} opened but gives no frames (in use by another program, "
                             "or no permission)") from None


def open_stream(url: str) -> FrameSource:
    """Open a network stream (rtsp://, http://, ...); InputError naming the URL when it fails."""
    with _quiet_opencv():
        capture = cv2.VideoCapture(url)
        if not capture.isOpened():
            capture.release()
            raise InputError(f"cannot open stream {url} (unreachable, or not a video stream)")
        fps, _ = _video_props(capture)
        return FrameSource(capture, url, fps, None, kind=STREAM)


def open_source(spec, size: tuple[int, int] | None = (640, 480)) -> FrameSource:
    """Open a camera (int index), stream (URL text) or video file (path); see `parse_source`.

    size : the resolution asked of a camera (ignored for files and streams).
    """
    spec = parse_source(spec) if isinstance(spec, str) else spec
    if isinstance(spec, bool) or not isinstance(spec, (int, str, os.PathLike)):
        raise TypeError(f"source must be a camera index, URL or path, got {type(spec).__name__}")
    if isinstance(spec, int):
        return open_camera(spec, size)
    if isinstance(spec, str):
        return open_stream(spec)
    return open_file(spec)
