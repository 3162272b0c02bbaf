"""File input and output: images in, videos / images / landmark files out, never half-written.

Videos (files, cameras, streams) are read by `tracker.sources` (`open_source`,
`open_file` -> `FrameSource`).

- `read_image(path)`: an 8-bit image, `InputError` naming the path otherwise;
  `write_image(path, image)`: written atomically.
- `VideoWriter(path, fps, size)`: writes to a temporary file next to the
  output and renames it on success; on error the temporary file is deleted.
- `atomic_path(path)`: the same guarantee for any file written by name.
- `LandmarkWriter`: per-frame landmarks as JSON or CSV, written atomically.
- `check_output(path)`: OutputError naming `path` unless a file can be created
  there (the folder exists, is writable, is not on a read-only file system);
  every writer calls it first, the CLIs before loading the model.
- `same_file(a, b)`, `check_not_input(inputs, outputs)`: output = input
  (also through `..`, symbolic and hard links) is refused; `check_outputs`
  does both checks for a job's outputs.

Clean-up never raises: an error while removing a temporary file (e.g. on a
read-only file system) cannot hide the error that caused the clean-up.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tracker.errors import InputError, OutputError
from tracker.types import Face

# Output container -> FourCC that opencv-python's FFmpeg backend writes.
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "mp4v", ".avi": "MJPG"}
LANDMARK_FORMATS = (".json", ".csv")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")  # image formats that keep an alpha channel


def temporary_name(path: str | os.PathLike) -> Path:
    """A unique hidden name next to `path`, same extension (writers choose the format by it)."""
    p = Path(path)
    return p.with_name(f".{p.stem}.{uuid.uuid4().hex[:8]}.partial{p.suffix}")


def remove_quietly(path: Path | None) -> None:
    """Delete a temporary file if it is there; never raises (see the module docstring)."""
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def why_not_writable(exc: OSError, folder: Path) -> str:
    """The reason a file could not be created in `folder`, in words, from the OSError."""
    if exc.errno == errno.EROFS:
        return f"folder {folder} is on a read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to create files in {folder}"
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device of {folder}"
    if exc.errno == errno.ENOENT:  # the folder exists but takes no new files (/proc, /sys)
        return f"files cannot be created in {folder}"
    return f"{exc.strerror or exc} (in {folder})"


def check_output(path: str | os.PathLike) -> Path:
    """`path` as a Path when a file can be created there; OutputError naming it otherwise.

    Creates and removes a hidden probe file next to `path`, so a read-only file
    system, a folder without write permission or one that takes no files is
    found before any work is done.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"cannot write {p}: it is a folder")
    folder = p.parent
    if not folder.exists():
        raise OutputError(f"cannot write {p}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(f"cannot write {p}: {folder} is not a folder")
    probe = temporary_name(p)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise OutputError(f"cannot write {p}: {why_not_writable(exc, folder)}") from None
    remove_quietly(probe)
    return p


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when `a` and `b` name the same file (same resolved path, or the same inode: hard links)."""
    a, b = Path(a), Path(b)
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_not_input(inputs, outputs) -> None:
    """OutputError when an output (path or None) is an input or another output: nothing is ever
    written over the file being read. inputs, outputs : iterables of paths (None entries skipped)."""
    inputs = [Path(p) for p in inputs if p is not None]
    outputs = [Path(p) for p in outputs if p is not None]
    for i, out in enumerate(outputs):
        for src in inputs:
            if same_file(src, out):
                raise OutputError(f"output {out} would overwrite the input {src}")
        for other in outputs[:i]:
            if same_file(other, out):
                raise OutputError(f"outputs {other} and {out} are the same file")


def check_outputs(inputs, outputs) -> None:
    """Before any work: no output (path or None) is an input or another output
    (`check_not_input`), and each can be created (`check_output`)."""
    check_not_input(inputs, outputs)
    for out in outputs:
        if out is not None:
            check_output(out)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; renamed to `path` on success, deleted on error.

    Raises OutputError when the file cannot be created or nothing was written.
    """
    dst = check_output(path)
    tmp = temporary_name(dst)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"nothing was written to {dst}")
        try:
            os.replace(tmp, dst)
        except OSError as exc:
            raise OutputError(f"cannot write {dst}: {exc.strerror or exc}") from None
    except BaseException:
        remove_quietly(tmp)
        raise


def read_image(path: str | os.PathLike, keep_alpha: bool = False) -> np.ndarray:
    """uint8 (H, W, 3) BGR image from a file, (H, W, 4) BGRA when `keep_alpha` and it has
    an alpha channel; InputError naming the path when unreadable or not 8-bit (a 16-bit
    image is refused rather than silently reduced)."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{p} is a folder, not an image file")
    if not p.exists():
        raise InputError(f"image not found: {p}")
    if not p.is_file():
        raise InputError(f"{p} is not a regular file")
    if p.stat().st_size == 0:
        raise InputError(f"{p} is empty")
    raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"cannot read {p} as an image (not an image file, or an unsupported format)")
    if raw.dtype != np.uint8:
        raise InputError(f"{p} is a {8 * raw.dtype.itemsize}-bit image; only 8-bit images are supported "
                         "(convert it to 8 bits per channel first)")
    if raw.ndim == 3 and raw.shape[2] == 4:
        return np.ascontiguousarray(raw if keep_alpha else raw[..., :3])
    # grey, palette or colour: read again as BGR, which also applies the EXIF orientation
    image = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read {p} as an image (not an image file, or an unsupported format)")
    return image


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image atomically; the extension picks the format."""
    p = Path(path)
    with atomic_path(p) as tmp:
        try:
            ok = cv2.imwrite(str(tmp), image)
        except cv2.error as exc:
            raise OutputError(f"cannot write {p}: {exc}") from exc
        if not ok:
            raise OutputError(f"cannot write {p}: OpenCV could not encode a {p.suffix} image")


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
        check_output(self.path)
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
        remove_quietly(self._tmp)

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
        try:
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self._remove_tmp()
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None

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
    box_x1, box_y1, p0_x, p0_y, ..., p67_x, p67_y; a frame without faces has one
    row with only frame and time (the other fields empty), so every frame read
    has a row.
    Coordinates are frame pixels, 0-based pixel centres, 3 decimals.
    `end_note(read, announced)` records that the input ended before the frames
    its container announced: JSON gets "frames_read", "frames_announced" and
    "ended_early": true; CSV a last line "# input ended early: ...".
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
        self._ended_early: tuple[int, int] | None = None

    def __enter__(self) -> "LandmarkWriter":
        check_output(self.path)
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
            # the reason, not the exception text: that names the temporary file
            raise OutputError(f"cannot write {self.path}: {why_not_writable(exc, self.path.parent)}") from None
        return self

    def write(self, frame_index: int, time_s: float, faces: list[Face]) -> None:
        """Record the faces of one frame."""
        try:
            if self.kind == ".json":
                record = {"frame": frame_index, "time": round(time_s, 4), "faces": [
                    {"track_id": f.track_id, "score": round(float(f.score), 4),
                     "box": _round(f.box.as_tuple()), "landmarks": _round(f.landmarks)} for f in faces]}
                self._file.write((",\n" if self._frames else "") + json.dumps(record))
            elif not faces:
                self._csv.writerow([frame_index, round(time_s, 4), *[""] * (6 + 2 * self.num_points)])
            else:
                for f in faces:
                    self._csv.writerow([frame_index, round(time_s, 4), f.track_id, round(float(f.score), 4),
                                        *_round(f.box.as_tuple()), *_round(np.ravel(f.landmarks))])
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._frames += 1

    def end_note(self, frames_read: int, frames_announced: int) -> None:
        """Record that the input ended after `frames_read` of `frames_announced` frames."""
        self._ended_early = (int(frames_read), int(frames_announced))

    def _discard(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        remove_quietly(self._tmp)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            if self.kind == ".json":
                tail = ""
                if self._ended_early is not None:
                    read, announced = self._ended_early
                    tail = f', "frames_read": {read}, "frames_announced": {announced}, "ended_early": true'
                self._file.write(f"\n]{tail}}}\n")
            elif self._ended_early is not None:
                read, announced = self._ended_early
                self._file.write(f"# input ended early: {read} of {announced} announced frames read\n")
            self._file.close()
            os.replace(self._tmp, self.path)
        except OSError as err:
            self._discard()
            raise OutputError(f"cannot write {self.path}: {err.strerror or err}") from None
