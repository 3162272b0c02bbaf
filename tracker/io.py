"""File input and output: videos in, videos / images / landmark files out, never half-written.

- `open_video(path)` -> `VideoReader`: raises `InputError` naming the path for a
  missing file, a file that is not a video, or a video with no frames; the
  reader checks `ok` on every read. These are `tracker.sources.open_file` and
  `tracker.sources.FrameSource` (which also reads cameras and streams, and
  wraps any object with OpenCV's `read() -> (ok, frame)` / `isOpened()`
  interface, e.g. a synthetic source in tests).
- `VideoWriter(path, fps, size)`: writes to a temporary file next to the
  output and renames it on success; on error the temporary file is deleted.
- `atomic_path(path)`: the same guarantee for any file written by name.
- `LandmarkWriter`: per-frame landmarks as JSON or CSV, written atomically.
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import OutputError
from tracker.sources import DEFAULT_FPS, FrameSource, open_file
from tracker.types import Face

# Output container -> FourCC that opencv-python's FFmpeg backend writes.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
LANDMARK_FORMATS = (".json", ".csv")

# Reading lives in tracker.sources; these names are kept for existing callers.
VideoReader = FrameSource
open_video = open_file
__all__ = ["DEFAULT_FPS", "LANDMARK_FORMATS", "VIDEO_CODECS", "LandmarkWriter", "VideoReader",
           "VideoWriter", "atomic_path", "open_video", "temporary_name"]


def temporary_name(path: str | os.PathLike) -> Path:
    """A unique hidden name next to `path`, same extension (writers choose the format by it)."""
    p = Path(path)
    return p.with_name(f".{p.stem}.{uuid.uuid4().hex[:8]}.partial{p.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; renamed to `path` on success, deleted on error.

    Raises OutputError when the folder does not exist or nothing was written.
    """
    dst = Path(path)
    if not dst.parent.is_dir():
        raise OutputError(f"cannot write {dst}: folder {dst.parent} does not exist")
    tmp = temporary_name(dst)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written to {dst}")
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class VideoWriter:
    """Video file writer that only ever leaves a complete output.

    path : output (.mp4, .m4v, .mov, .mkv: mp4v; .avi: MJPG); fps; size : (width, height).
    Use as a context manager: leaving normally renames the temporary file to
    `path`; an exception (or `abort()`) deletes it.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        codec = VIDEO_CODECS.get(self.path.suffix.lower())
        if codec is None:
            raise OutputError(f"cannot write {self.path}: unsupported video extension "
                              f"(use one of {', '.join(VIDEO_CODECS)})")
        if not self.path.parent.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        self.frames_written = 0
        self._tmp = temporary_name(self.path)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*codec), self.fps, self.size)
        if not self._writer.isOpened():
            self._writer.release()
            self._remove_tmp()
            raise OutputError(f"cannot write {self.path}: no {codec} video writer could be opened")

    def write(self, frame: np.ndarray) -> None:
        """Append a uint8 (height, width, 3) BGR frame of the writer's size."""
        if frame.dtype != np.uint8 or frame.shape != (self.size[1], self.size[0], 3):
            raise ValueError(f"frame {self.frames_written} for {self.path} is {frame.dtype} {frame.shape}, "
                             f"expected uint8 {(self.size[1], self.size[0], 3)}")
        self._writer.write(frame)
        self.frames_written += 1

    def _remove_tmp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def abort(self) -> None:
        """Stop and delete the temporary file; `path` is left untouched."""
        self._writer.release()
        self._remove_tmp()

    def close(self) -> None:
        """Finish the file and move it to `path`."""
        self._writer.release()
        if self.frames_written == 0 or not self._tmp.exists() or self._tmp.stat().st_size == 0:
            self._remove_tmp()
            raise OutputError(f"no video written to {self.path}")
        os.replace(self._tmp, self.path)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _round(values, digits: int = 3) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


class LandmarkWriter:
    """Per-frame landmarks to a .json or .csv file, streamed to a temporary file.

    JSON: {"format": "facelite-landmarks", "version": 1, <meta>, "frames": [
      {"frame": i, "time": s, "faces": [{"track_id", "score", "box": [x0, y0, x1, y1],
      "landmarks": [[x, y] x 68]}]}]}, every frame listed (faces [] when none).
    CSV: one row per face per frame: frame, time, track_id, score, box_x0, box_y0,
    box_x1, box_y1, p0_x, p0_y, ..., p67_x, p67_y; frames without faces have no row.
    Coordinates are frame pixels, 0-based pixel centres, 3 decimals.
    Use as a context manager; the file appears only when the block succeeds.
    """

    def __init__(self, path: str | os.PathLike, meta: dict | None = None, num_points: int = 68):
        self.path = Path(path)
        self.kind = self.path.suffix.lower()
        if self.kind not in LANDMARK_FORMATS:
            raise OutputError(f"cannot write landmarks to {self.path}: use a .json or .csv name")
        self.meta = dict(meta or {})
        self.num_points = num_points
        self._tmp: Path | None = None
        self._file = None
        self._frames = 0

    def __enter__(self) -> "LandmarkWriter":
        if not self.path.parent.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        self._tmp = temporary_name(self.path)
        try:
            self._file = open(self._tmp, "w", newline="", encoding="utf-8")
            if self.kind == ".json":
                head = {"format": "facelite-landmarks", "version": 1, **self.meta}
                self._file.write(json.dumps(head)[:-1] + ', "frames": [\n')
            else:
                self._csv = csv.writer(self._file)
                points = [f"p{i}_{a}" for i in range(self.num_points) for a in ("x", "y")]
                self._csv.writerow(["frame", "time", "track_id", "score",
                                    "box_x0", "box_y0", "box_x1", "box_y1", *points])
        except OSError as exc:
            self._discard()
            raise OutputError(f"cannot write {self.path}: {exc}") from exc
        return self

    def write(self, frame_index: int, time_s: float, faces: list[Face]) -> None:
        """Record the faces of one frame."""
        if self.kind == ".json":
            record = {"frame": frame_index, "time": round(time_s, 4), "faces": [
                {"track_id": f.track_id, "score": round(float(f.score), 4),
                 "box": _round(f.box.as_tuple()), "landmarks": _round(f.landmarks)} for f in faces]}
            self._file.write((",\n" if self._frames else "") + json.dumps(record))
        else:
            for f in faces:
                self._csv.writerow([frame_index, round(time_s, 4), f.track_id, round(float(f.score), 4),
                                    *_round(f.box.as_tuple()), *_round(np.ravel(f.landmarks))])
        self._frames += 1

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                self._tmp.unlink()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            if self.kind == ".json":
                self._file.write("\n]}\n")
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as err:
            self._discard()
            raise OutputError(f"cannot write {self.path}: {err}") from err
