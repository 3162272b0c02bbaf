"""The importable core of the command-line tools: video or image in, rendered output out.

`process_video` reads every frame, tracks faces, renders (makeup later, an
optional landmark overlay now) and writes the output video and, optionally,
the landmarks per frame (.json or .csv). Outputs are written to temporary
names and renamed when complete, so an error never leaves a partial file.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tracker import draw
from tracker.draw import DrawSpec
from tracker.errors import InputError, OutputError
from tracker.io import (ALPHA_SUFFIXES, IMAGE_SUFFIXES, LANDMARK_FORMATS, LandmarkWriter, VideoWriter,
                        check_not_input, check_outputs, read_image, write_image)
from tracker.sources import FILE, FrameSource, open_source
from tracker.types import Face, Render

Progress = Callable[[int, "int | None", float], None]
__all__ = ["VideoStats", "check_image_job", "process_image", "process_video", "render_frame"]


@dataclass(frozen=True)
class VideoStats:
    """What `process_video` did: frames, frames with at least one face, wall time, speed.

    frames_announced : frames the input's container announced (None when unknown);
    ended_early : the input ended before that (truncated or damaged file).
    """
    frames: int
    frames_with_faces: int
    seconds: float
    frames_per_second: float
    width: int
    height: int
    fps: float
    frames_announced: int | None = None
    ended_early: bool = False


def _check_landmarks_path(path: Path | None) -> None:
    if path is not None and path.suffix.lower() not in LANDMARK_FORMATS:
        raise InputError(f"landmarks output {path} must end in .json or .csv")


def render_frame(frame: np.ndarray, faces: list[Face], render: Render | None = None,
                 draw_landmarks: bool = False, spec: DrawSpec = DrawSpec()) -> np.ndarray:
    """One output frame: `render(frame, faces)` (a new image) then the optional overlay.

    The input frame is never drawn on; without render or overlay it is returned as is.
    """
    out = render(frame, faces) if render is not None else frame
    if draw_landmarks:
        if out is frame:
            out = frame.copy()
        draw.draw_landmarks(out, faces, spec)
    return out


def process_video(src, dst, tracker, render: Render | None = None, landmarks_out=None,
                  draw_landmarks: bool = False, progress: Progress | None = None,
                  strict: bool = False) -> VideoStats:
    """Track faces through a video and write the rendered video (same size and fps).

    src : video path or stream URL (anything `tracker.sources.open_source` takes),
        or an open `tracker.sources.FrameSource` (e.g. over a synthetic source);
    dst : output video path (.mp4, .m4v, .mov, .mkv, .avi);
    tracker : a `tracker.tracking.Tracker` (reset before the first frame);
    render : optional callable (frame, faces) -> new frame, e.g. the makeup renderer;
    landmarks_out : optional .json or .csv path for the landmarks of every frame;
    draw_landmarks : overlay points and boxes on the output;
    progress : optional callable (frames done, total frames or None, frames/s so far);
    strict : an input that ends before the frames its container announced is an
        error (InputError, nothing written); otherwise the result says so
        (`VideoStats.ended_early`, and the landmarks file, see `LandmarkWriter`).

    Raises InputError / OutputError naming the file; on any error no output file
    is left behind (outputs are renamed into place only at the end).
    """
    dst = Path(dst)
    landmarks_path = Path(landmarks_out) if landmarks_out is not None else None
    _check_landmarks_path(landmarks_path)
    reader = src if isinstance(src, FrameSource) else open_source(src)
    with reader:
        check_not_input([reader.name] if reader.kind == FILE else [], [dst, landmarks_path])
        meta = {"source": reader.name, "width": reader.width, "height": reader.height, "fps": reader.fps,
                "coordinates": "frame pixels, 0-based pixel centres"}
        tracker.reset()
        start = time.perf_counter()
        frames = with_faces = 0
        with VideoWriter(dst, reader.fps, reader.size) as writer:
            log_writer = LandmarkWriter(landmarks_path, meta) if landmarks_path is not None else None
            with log_writer if log_writer is not None else contextlib.nullcontext():
                for frame in reader:
                    t = frames / reader.fps
                    faces = tracker.process(frame, timestamp=t)
                    writer.write(render_frame(frame, faces, render, draw_landmarks))
                    if log_writer is not None:
                        log_writer.write(frames, t, faces)
                    frames += 1
                    with_faces += bool(faces)
                    if progress is not None:
                        elapsed = time.perf_counter() - start
                        progress(frames, reader.frame_count, frames / elapsed if elapsed > 0 else 0.0)
                if reader.ended_early:
                    if strict:
                        raise InputError(f"{reader.name} ended after {frames} of the {reader.frame_count} "
                                         "frames it announces (truncated or damaged file)")
                    if log_writer is not None:
                        log_writer.end_note(frames, reader.frame_count)
    seconds = time.perf_counter() - start
    return VideoStats(frames, with_faces, seconds, frames / seconds if seconds > 0 else 0.0,
                      reader.width, reader.height, reader.fps, reader.frame_count, reader.ended_early)


def check_image_job(src, dst, landmarks_out=None) -> np.ndarray:
    """Check an image job before any work: the input is a readable 8-bit image, the outputs can
    be written and are not the input, and an alpha channel fits the output format (it is kept,
    never dropped silently). -> the image, as `read_image(src, keep_alpha=True)`."""
    src, dst = Path(src), Path(dst)
    landmarks_path = Path(landmarks_out) if landmarks_out is not None else None
    _check_landmarks_path(landmarks_path)
    if dst.suffix.lower() not in IMAGE_SUFFIXES:
        raise OutputError(f"cannot write {dst}: use one of {', '.join(IMAGE_SUFFIXES)}")
    image = read_image(src, keep_alpha=True)
    if image.shape[2] == 4 and dst.suffix.lower() not in ALPHA_SUFFIXES:
        raise OutputError(f"cannot write {dst}: {src} has an alpha channel (transparency), which "
                          f"{dst.suffix} cannot store; write {', '.join(ALPHA_SUFFIXES)} instead")
    check_outputs([src], [dst, landmarks_path])
    return image


def process_image(src, dst, tracker, render: Render | None = None, landmarks_out=None,
                  draw_landmarks: bool = False) -> list[Face]:
    """Landmark one image and write the rendered result; returns the faces (maybe []).

    The tracker should be in static-image mode. Nothing is written when no face
    is found (the caller decides whether that is an error). An alpha channel is
    kept as it is (the output must be a format that stores one); see
    `check_image_job` for what is refused.
    """
    src, dst = Path(src), Path(dst)
    landmarks_path = Path(landmarks_out) if landmarks_out is not None else None
    image = check_image_job(src, dst, landmarks_path)
    alpha = image[..., 3:] if image.shape[2] == 4 else None
    if alpha is not None:
        image = np.ascontiguousarray(image[..., :3])
    tracker.reset()
    faces = tracker.process(image)
    if not faces:
        return faces
    out = render_frame(image, faces, render, draw_landmarks)
    if alpha is not None:
        out = np.concatenate([out, alpha], axis=2)
    if landmarks_path is not None:
        meta = {"source": str(src), "width": image.shape[1], "height": image.shape[0],
                "coordinates": "image pixels, 0-based pixel centres"}
        with LandmarkWriter(landmarks_path, meta) as log_writer:
            log_writer.write(0, 0.0, faces)
            write_image(dst, out)
    else:
        write_image(dst, out)
    return faces
