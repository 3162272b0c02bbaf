"""The per-file job of `tracker.batch`: one video or image in, its outputs and one manifest row out.

`process_file(job)` is a plain importable function so that the local worker
processes (`tracker.batch_pool`) and Ray tasks run exactly the same code. It
never raises for a bad input: every outcome is a row (a dict) with a status:

- "done": the outputs are in place;
- "no_face": no face in the image or in any frame of the video; nothing written;
- "failed": `error` says why and `error_kind` what failed: "input" (the file is
  missing, unreadable or corrupt: the same file fails again), "output" (an output
  cannot be written), "internal" (an unexpected exception), "crash" (set by the
  runner when the process running the job died).

Outputs are written into a staging folder of the job first (inside the output
folder, so on the same file system) and renamed into place when complete, the
landmarks before the rendered file; a stopped job leaves only its staging
folder, which the next batch in that output folder removes.
"""
from __future__ import annotations

import functools
import os
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

VIDEO = "video"
IMAGE = "image"


@dataclass(frozen=True)
class EngineOptions:
    """What builds the trackers of a worker: landmark weights (a file path), detector name,
    kernel backend (None: the default), most faces, mirrored averaging for photos."""
    weights: str
    detector: str
    backend: str | None = None
    max_faces: int = 1
    flip_average: bool = False


@dataclass(frozen=True)
class FileJob:
    """One input and where its outputs go.

    input : the video or image; kind : VIDEO or IMAGE;
    output : rendered video or image path; landmarks : .json / .csv path or None;
    staging : a folder of this job alone, on the same file system as the outputs;
    key : the resume key (options and input file), copied into the row;
    engine : how to build the tracker; look : a `tracker.makeup.Look` or None (no makeup);
    draw_landmarks : overlay points and boxes on the output.
    """
    input: str
    kind: str
    output: str
    landmarks: str | None
    staging: str
    key: str
    engine: EngineOptions
    look: object = None
    draw_landmarks: bool = False


class _Engines:
    """The landmark models, detectors and trackers of one process, built on first use, one thread each."""

    def __init__(self, options: EngineOptions):
        self.options = options
        self._trackers: dict[str, object] = {}

    def tracker(self, kind: str):
        if kind not in self._trackers:
            from tracker.detection import build_detector
            from tracker.landmarks import load_landmarker
            from tracker.tracking import Tracker

            o = self.options
            photo = kind == IMAGE
            # One thread per worker: N workers then use N cores without oversubscription.
            landmarker = load_landmarker(o.weights, backend=o.backend, threads=1,
                                         flip_average=o.flip_average and photo)
            self._trackers[kind] = Tracker(landmarker, build_detector(o.detector, o.backend), max_faces=o.max_faces,
                                           threads=1, static_image_mode=photo)
        return self._trackers[kind]


@functools.lru_cache(maxsize=1)
def _engines(options: EngineOptions) -> _Engines:
    # The one per-process cache: loading a model and Numba's compiled kernels takes about
    # a second, and both the worker processes and Ray's reuse a process for many files.
    return _Engines(options)


class _CountingTracker:
    """Forwards `reset` / `process` to a tracker and counts distinct face tracks."""

    def __init__(self, tracker):
        self.tracker = tracker
        self.track_ids: set[int] = set()

    def reset(self) -> None:
        self.tracker.reset()
        self.track_ids.clear()

    def process(self, frame, timestamp=None):
        faces = self.tracker.process(frame, timestamp=timestamp)
        self.track_ids.update(f.track_id for f in faces)
        return faces


def _row(job: FileJob, status: str, **fields) -> dict:
    row = {"input": job.input, "kind": job.kind, "status": status, "output": None, "landmarks": None,
           "frames": 0, "frames_with_faces": 0, "faces": 0, "seconds": 0.0, "error": None,
           "error_kind": None, "key": job.key, "host": socket.gethostname(), "pid": os.getpid()}
    row.update(fields)
    return row


def failed_row(job: FileJob, error_kind: str, message: str, seconds: float = 0.0) -> dict:
    """The row of a job that failed (also used by the runners when a worker died)."""
    return _row(job, "failed", error=message, error_kind=error_kind, seconds=round(seconds, 3))


def _render(look):
    from tracker.makeup import makeup_renderer

    return makeup_renderer(look)


def _run(job: FileJob, staging: Path) -> dict:
    from tracker import pipeline

    out = staging / Path(job.output).name
    marks = staging / Path(job.landmarks).name if job.landmarks else None
    tracker = _CountingTracker(_engines(job.engine).tracker(job.kind))
    render = _render(job.look)
    if job.kind == VIDEO:
        stats = pipeline.process_video(job.input, out, tracker, render=render, landmarks_out=marks,
                                       draw_landmarks=job.draw_landmarks)
        frames, with_faces = stats.frames, stats.frames_with_faces
    else:
        faces = pipeline.process_image(job.input, out, tracker, render=render, landmarks_out=marks,
                                       draw_landmarks=job.draw_landmarks)
        frames, with_faces = 1, int(bool(faces))
    counts = dict(frames=frames, frames_with_faces=with_faces, faces=len(tracker.track_ids))
    if with_faces == 0:
        what = "any frame of " if job.kind == VIDEO else ""
        return _row(job, "no_face", error=f"no face found in {what}{job.input}; nothing written", **counts)
    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    if marks is not None:
        os.replace(marks, job.landmarks)
    os.replace(out, job.output)  # last: a rendered file in place means its landmarks are too
    return _row(job, "done", output=job.output, landmarks=job.landmarks, **counts)


def process_file(job: FileJob) -> dict:
    """Run one job; -> its manifest row (see the module docstring). Never raises for a bad file."""
    from tracker.errors import InputError, OutputError

    start = time.perf_counter()
    staging = Path(job.staging)
    try:
        staging.mkdir(parents=True, exist_ok=True)
        row = _run(job, staging)
    except InputError as exc:
        row = failed_row(job, "input", str(exc))
    except (OutputError, OSError) as exc:
        row = failed_row(job, "output", str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch; the row says what
        row = failed_row(job, "internal", f"{type(exc).__name__}: {exc} (while processing {job.input})")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row
