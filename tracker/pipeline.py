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

from tracker._resources import resource, shipped_model_names, shipped_weights
from tracker.draw import DrawSpec, draw_landmarks as _draw
from tracker.errors import InputError, OutputError
from tracker.io import LANDMARK_FORMATS, LandmarkWriter, VideoWriter, atomic_path, check_not_input, check_output
from tracker.sources import FILE, FrameSource, open_source
from tracker.types import Face

WEIGHTS_DIR = resource("weights")
DEFAULT_WEIGHTS = resource("weights", "demo.h5")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
ALPHA_SUFFIXES = (".png", ".webp", ".tif", ".tiff")  # image formats that keep an alpha channel

Render = Callable[[np.ndarray, list[Face]], np.ndarray]
Progress = Callable[[int, "int | None", float], None]
__all__ = ["ALPHA_SUFFIXES", "DEFAULT_WEIGHTS", "IMAGE_SUFFIXES", "VideoStats", "add_engine_arguments",
           "Engine", "check_backend", "check_image_job", "engine_from_args", "load_landmarker", "makeup_renderer", "process_image",
           "process_video", "read_image", "render_frame", "shipped_weights", "write_image"]


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


def check_backend(backend: str | None) -> str:
    """The kernel backend `backend` (or $NNLITE_BACKEND, or the default) resolves to;
    InputError naming the setting when it is unknown or unavailable."""
    from nnlite.backend import resolve_backend

    try:
        return resolve_backend(backend)
    except (ValueError, RuntimeError) as exc:
        raise InputError(str(exc)) from None


def load_landmarker(weights: str | os.PathLike, backend: str | None = None, threads: int | None = None,
                    flip_average: bool = False):
    """The landmark model `tracker.landmarks.Landmarker(weights, backend, threads)`, errors naming the file.

    backend : "numba", "numpy" or None (Numba when it can be imported);
    threads : thread cap for the model and OpenCV (None: see `Landmarker`);
    flip_average : average each face with its mirrored crop (see `Landmarker`).
    """
    path = shipped_weights(weights)
    if path.is_dir():
        raise InputError(f"landmark weights {path} is a folder, not a weights file")
    if not path.is_file():
        names = ", ".join(shipped_model_names())
        raise InputError(f"landmark weights not found: {path} (pass a weights file or a shipped "
                         f"model name: {names})")
    backend = check_backend(backend)
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


@dataclass(frozen=True)
class Engine:
    """What a CLI builds from its options: the makeup renderer (None: no makeup), the face
    detector, the landmark model and the kernel backend name they run on."""
    render: Render | None
    detector: object
    landmarker: object
    backend: str


def engine_from_args(args: argparse.Namespace, flip_average: bool = False) -> Engine:
    """Build the `Engine` of parsed CLI options (`add_look_arguments`, `add_engine_arguments`).

    Checked in the order a user can fix them, each an InputError naming the option or
    file: the makeup options, the backend ($NNLITE_BACKEND), then the weights.
    """
    from tracker.detection import DETECTORS
    from tracker.makeup import look_from_args

    try:
        render = makeup_renderer(look_from_args(args))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    backend = check_backend(args.backend)  # before the detector, which runs on it too
    detector = DETECTORS[args.detector]()
    landmarker = load_landmarker(args.weights, backend=backend, threads=args.threads, flip_average=flip_average)
    return Engine(render, detector, landmarker, backend)


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
    check_not_input([src], [dst, landmarks_path])
    for out in (dst, landmarks_path):
        if out is not None:
            check_output(out)
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
