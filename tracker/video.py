"""Track face landmarks through a video and render the result.

usage: python -m tracker.video [in.mp4 | URL] [-o out.mp4] [--landmarks out.json|out.csv]
                               [--draw-landmarks] [--max-faces N] [--weights PATH] [--detector NAME]
                               [--backend numba|numpy] [--threads N]

Without an input it processes the bundled sample clip (tracker/data/sample.mp4)
and writes sample.makeup.mp4 in the current folder; otherwise the default
output is IN.makeup.mp4 next to the input (for a stream URL: NAME.makeup.mp4
in the current folder). The output keeps the input's size and frame rate. A
progress line with frames/s goes to stderr. For a live camera use
`python -m tracker.camera`.

Exit status: 0 done; 2 bad input or output (one message on stderr, no
output file left behind); 130 interrupted.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tracker._resources import resource
from tracker.detection import DETECTORS
from tracker.makeup import add_look_arguments, look_from_args
from tracker.errors import InputError, OutputError, TrackerError
from tracker.io import LANDMARK_FORMATS, VIDEO_CODECS
from tracker.sources import parse_source

SAMPLE = resource("data", "sample.mp4")


class _ProgressLine:
    """Rewrites one stderr line: frames done, percent when known, frames/s."""

    def __init__(self, stream=sys.stderr, interval: float = 0.25):
        self.stream = stream
        self.interval = interval
        self._last = 0.0
        self._shown = False

    def __call__(self, done: int, total: int | None, fps: float) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval and done != total:
            return
        self._last = now
        of = f"/{total} ({100 * done / total:.0f}%)" if total else ""
        self.stream.write(f"\rframe {done}{of}  {fps:.1f} frames/s ")
        self.stream.flush()
        self._shown = True

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


def default_output(src: Path | str | None) -> Path:
    """sample.makeup.mp4 in the current folder, IN.makeup.EXT next to an input file,
    NAME.makeup.mp4 in the current folder for a stream URL (str)."""
    if src is None:
        return Path.cwd() / "sample.makeup.mp4"
    if isinstance(src, str):
        stem = Path(src.split("?")[0].rstrip("/").rsplit("/", 1)[-1]).stem
        return Path.cwd() / f"{stem or 'stream'}.makeup.mp4"
    suffix = src.suffix if src.suffix.lower() in VIDEO_CODECS else ".mp4"
    return src.with_name(f"{src.stem}.makeup{suffix}")


def build_parser() -> argparse.ArgumentParser:
    from tracker.pipeline import add_engine_arguments

    parser = argparse.ArgumentParser(prog="python -m tracker.video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", help="input video file or stream URL (default: the bundled sample clip)")
    parser.add_argument("-o", "--output", type=Path, help="output video (default: IN.makeup.mp4)")
    parser.add_argument("--landmarks", type=Path, metavar="PATH", help="also write landmarks per frame (.json or .csv)")
    parser.add_argument("--draw-landmarks", action="store_true", help="overlay landmarks, boxes and track ids")
    add_look_arguments(parser)
    add_engine_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return int(exc.code or 0)
    if args.max_faces < 1:
        print(f"error: --max-faces must be at least 1, got {args.max_faces}", file=sys.stderr)
        return 2

    from tracker import pipeline
    from tracker.tracking import Tracker

    src = SAMPLE if args.input is None else parse_source(args.input)
    if isinstance(src, int):  # digits: a file of that name, else a camera index
        src = Path(args.input)
        if not src.exists():
            print(f"error: video not found: {src} (for camera {args.input}, use "
                  f"python -m tracker.camera --device {args.input})", file=sys.stderr)
            return 2
    dst = args.output if args.output is not None else default_output(None if args.input is None else src)
    progress = _ProgressLine()
    try:
        if isinstance(src, Path) and not src.is_file():
            raise InputError(f"video not found: {src}")
        if dst.suffix.lower() not in VIDEO_CODECS:
            raise OutputError(f"cannot write {dst}: use one of {', '.join(VIDEO_CODECS)}")
        if args.landmarks is not None and args.landmarks.suffix.lower() not in LANDMARK_FORMATS:
            raise OutputError(f"landmarks output {args.landmarks} must end in .json or .csv")
        try:
            render = pipeline.makeup_renderer(look_from_args(args))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        detector = DETECTORS[args.detector]()
        landmarker = pipeline.load_landmarker(args.weights, backend=args.backend, threads=args.threads)
        with Tracker(landmarker, detector, max_faces=args.max_faces, threads=args.threads) as tracker:
            stats = pipeline.process_video(src, dst, tracker, render=render, landmarks_out=args.landmarks,
                                           draw_landmarks=args.draw_landmarks, progress=progress)
    except TrackerError as exc:
        progress.finish()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.finish()
        print("interrupted; no output written", file=sys.stderr)
        return 130
    progress.finish()
    extra = f" and {args.landmarks}" if args.landmarks is not None else ""
    print(f"wrote {dst}{extra}: {stats.frames} frames, faces in {stats.frames_with_faces}, "
          f"{stats.frames_per_second:.1f} frames/s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
