"""The importable core of the command-line tools: video or image in, rendered output out.

`process_video` reads every frame, tracks faces, renders (makeup later, an
optional landmark overlay now) and writes the output video and, optionally,
the landmarks per frame (.json or .csv). Outputs are written to temporary
names and renamed when complete, so an error never leaves a partial file.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker._resources import resource
from tracker.draw import DrawSpec, draw_landmarks as _draw
from tracker.errors import InputError, OutputError
from tracker.io import LANDMARK_FORMATS, LandmarkWriter, VideoWriter, atomic_path
from tracker.sources import FILE, FrameSource, open_source
from tracker.types import Face

WEIGHTS_DIR = resource("weights")
DEFAULT_WEIGHTS = resource("weights", "demo.h5")

Render = Callable[[np.ndarray, list[Face]], np.ndarray]
Progress = Callable[[int, "int | None", float], None]


@dataclass(frozen=True)
class VideoStats:
    """What `process_video` did: frames, frames with at least one face, wall time, speed."""
    frames: int
    frames_with_faces: int
    seconds: float
    frames_per_second: float
    width: int
    height: int
    fps: float


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _check_landmarks_path(path: Path | None) -> None:
    if path is not None and path.suffix.lower() not in LANDMARK_FORMATS:
        raise InputError(f"landmarks output {path} must end in .json or .csv")


def shipped_weights(weights: str | os.PathLike) -> Path:
    """A path as given, or for a bare shipped model name ("demo", "full") its file in weights/."""
    path = Path(weights)
    if not path.exists() and path.suffix == "" and len(path.parts) == 1:
        shipped = WEIGHTS_DIR / f"{path.name}.h5"
        if shipped.is_file():
            return shipped
    return path


def load_landmarker(weights: str | os.PathLike, backend: str | None = None, threads: int | None = None,
                    flip_average: bool = False):
    """The landmark model `tracker.landmarks.Landmarker(weights, backend, threads)`, errors naming the file.

    backend : "numba", "numpy" or None (Numba when it can be imported);
    threads : thread cap for the model and OpenCV (None: see `Landmarker`);
    flip_average : average each face with its mirrored crop (see `Landmarker`).
    """
    path = shipped_weights(weights)
    if not path.is_file():
        names = ", ".join(p.stem for p in sorted(WEIGHTS_DIR.glob("*.h5")) if p.stem != "detector")
        raise InputError(f"landmark weights not found: {path} (pass a weights file or a shipped "
                         f"model name: {names})")
    from nnlite.backend import resolve_backend

    try:
        backend = resolve_backend(backend)
    except (ValueError, RuntimeError) as exc:
        raise InputError(str(exc)) from None
    try:
        from tracker.landmarks import Landmarker  # lazy: the model stack loads only when needed
    except ImportError as exc:
        raise InputError(f"the landmark model is not available ({exc})") from exc
    try:
        return Landmarker(path, backend=backend, threads=threads, flip_average=flip_average)
    except (OSError, ValueError, KeyError) as exc:  # nnlite's WeightsError is a ValueError
        where = "" if str(path) in str(exc) else f" {path}"
        raise InputError(f"cannot load landmark weights{where}: {exc}") from exc


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options every CLI shares for the detector, the landmark model and the
    engine: --max-faces, --weights, --detector, --backend and --threads."""
    from nnlite.backend import BACKENDS
    from tracker.detection import DEFAULT_DETECTOR, DETECTORS

    parser.add_argument("--max-faces", type=int, default=1, metavar="N",
                        help="most faces tracked at once (default 1)")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                        help="landmark model: a weights file, or a shipped model's name, demo (default, "
                             "fastest) or full (most accurate)")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR,
                        help=f"face detector (default {DEFAULT_DETECTOR})")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="kernel backend (default: $NNLITE_BACKEND, else numba when installed, else numpy)")
    parser.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                        help="most CPU threads: caps the model's Numba kernels (default: cores - 1, 1 to 4) "
                             "and, when given, OpenCV's")


def makeup_renderer(look) -> Render | None:
    """The renderer for a makeup Look (None: no makeup) as a (frame, faces) -> frame callable."""
    if look is None:
        return None
    from tracker.makeup import render

    return lambda frame, faces: render(frame, faces, look)


def render_frame(frame: np.ndarray, faces: list[Face], render: Render | None = None,
                 draw_landmarks: bool = False, spec: DrawSpec = DrawSpec()) -> np.ndarray:
    """One output frame: `render(frame, faces)` (a new image) then the optional overlay.

    The input frame is never drawn on; without render or overlay it is returned as is.
    """
    out = render(frame, faces) if render is not None else frame
    if draw_landmarks:
        if out is frame:
            out = frame.copy()
        _draw(out, faces, spec)
    return out


def process_video(src, dst, tracker, render: Render | None = None, landmarks_out=None,
                  draw_landmarks: bool = False, progress: Progress | None = None) -> VideoStats:
    """Track faces through a video and write the rendered video (same size and fps).

    src : video path or stream URL (anything `tracker.sources.open_source` takes),
        or an open `tracker.sources.FrameSource` (e.g. over a synthetic source);
    dst : output video path (.mp4, .m4v, .mov, .mkv, .avi);
    tracker : a `tracker.tracking.Tracker` (reset before the first frame);
    render : optional callable (frame, faces) -> new frame, e.g. the makeup renderer;
    landmarks_out : optional .json or .csv path for the landmarks of every frame;
    draw_landmarks : overlay points and boxes on the output;
    progress : optional callable (frames done, total frames or None, frames/s so far).

    Raises InputError / OutputError naming the file; on any error no output file
    is left behind (outputs are renamed into place only at the end).
    """
    dst = Path(dst)
    landmarks_path = Path(landmarks_out) if landmarks_out is not None else None
    _check_landmarks_path(landmarks_path)
    reader = src if isinstance(src, FrameSource) else open_source(src)
    with reader:
        if reader.kind == FILE and _same_file(Path(reader.name), dst):
            raise OutputError(f"output {dst} would overwrite the input")
        if landmarks_path is not None and _same_file(landmarks_path, dst):
            raise OutputError(f"landmarks output {landmarks_path} is the same file as the video output")
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
    seconds = time.perf_counter() - start
    return VideoStats(frames, with_faces, seconds, frames / seconds if seconds > 0 else 0.0,
                      reader.width, reader.height, reader.fps)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """uint8 (H, W, 3) BGR image from a file; InputError naming the path when unreadable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"image not found: {p}")
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
            raise OutputError(f"cannot write {p} (unsupported image extension?)")


def process_image(src, dst, tracker, render: Render | None = None, landmarks_out=None,
                  draw_landmarks: bool = False) -> list[Face]:
    """Landmark one image and write the rendered result; returns the faces (maybe []).

    The tracker should be in static-image mode. Nothing is written when no face
    is found (the caller decides whether that is an error).
    """
    src, dst = Path(src), Path(dst)
    landmarks_path = Path(landmarks_out) if landmarks_out is not None else None
    _check_landmarks_path(landmarks_path)
    if _same_file(src, dst):
        raise OutputError(f"output {dst} would overwrite the input")
    image = read_image(src)
    tracker.reset()
    faces = tracker.process(image)
    if not faces:
        return faces
    out = render_frame(image, faces, render, draw_landmarks)
    if landmarks_path is not None:
        meta = {"source": str(src), "width": image.shape[1], "height": image.shape[0],
                "coordinates": "image pixels, 0-based pixel centres"}
        with LandmarkWriter(landmarks_path, meta) as log_writer:
            log_writer.write(0, 0.0, faces)
            write_image(dst, out)
    else:
        write_image(dst, out)
    return faces
