"""Live makeup try-on from a camera, or from a video file or stream played as one.

usage: python -m tracker.camera [--device N | --source FILE_OR_URL] [--look NAME] [--lip-color HEX] ...
                                [--record out.mp4] [--no-window] [--frames N] [--size WxH]
                                [--weights PATH] [--detector NAME] [--backend numba|numpy] [--threads N]

A window shows the live made-up face. Its top line shows frames/s, the time
each frame spends in detection, landmarks and rendering (ms), the
capture-to-display latency and the frames dropped: when processing falls
behind, stale frames are skipped rather than queued, so what you see is
always the newest frame. The face detector runs on its own thread while no
face is tracked, so the frames shown never wait for it. --source FILE plays a
file at its own frame rate, as if it were a camera (use python -m tracker.video
to process every frame of a file).

Keys (in the window):
  1-9      switch look (the presets, in alphabetical order)
  m        makeup on / off
  c / C    next / previous lipstick colour
  + / -    intensity up / down
  l        landmarks on / off
  b        before / after split
  s        save a snapshot (tryon-DATE-TIME.png in the working directory)
  h        key help on / off
  q / Esc  quit

Headless: --no-window --record out.mp4 runs the same loop without a window and
records what it would have shown (frames skipped as stale are filled with the
frame on screen, so the recording keeps real time). Ctrl-C ends the session
and keeps the recording; a second Ctrl-C abandons it.

Exit status: 0 done; 2 no camera, no display, or a bad input or output (one
message on stderr naming the cause, no output file left behind); 130
interrupted twice.
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

from tracker.detection import BackgroundDetector, DETECTORS
from tracker.errors import InputError, OutputError, TrackerError
from tracker.io import VIDEO_CODECS
from tracker.makeup import DEFAULT_LOOK, add_look_arguments, available_looks, look_from_args

FILE_ALTERNATIVE = "to use a video file instead, play it live with --source FILE or process it with python -m tracker.video FILE"
HEADLESS_ALTERNATIVE = ("run headless with --no-window --record out.mp4 "
                        "(or process a file with python -m tracker.video FILE)")


def _size_arg(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: at least 16x16")
    return w, h


def build_parser() -> argparse.ArgumentParser:
    from tracker.pipeline import add_engine_arguments

    parser = argparse.ArgumentParser(prog="python -m tracker.camera", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--device", type=int, default=0, metavar="N", help="camera index (default 0)")
    src.add_argument("--source", metavar="FILE_OR_URL",
                     help="a video file (played at its frame rate) or a stream URL instead of a camera")
    parser.add_argument("--size", type=_size_arg, default=(640, 480), metavar="WxH",
                        help="resolution asked of the camera (default 640x480)")
    parser.add_argument("--record", type=Path, metavar="PATH", help="record what is shown (.mp4, .avi, ...)")
    parser.add_argument("--no-window", action="store_true", help="no window (headless; use with --record)")
    parser.add_argument("--frames", type=int, metavar="N", help="stop after N source frames")
    parser.add_argument("--no-status", action="store_true", help="no status line on the frames")
    parser.add_argument("--draw-landmarks", action="store_true", help="start with the landmark overlay on")
    parser.add_argument("--split", action="store_true", help="start with the before/after split on")
    add_look_arguments(parser)
    add_engine_arguments(parser)
    return parser


class _ProgressLine:
    """A sink for headless runs: rewrites one stderr line with frames shown / dropped and frames/s."""

    def __init__(self, stream=sys.stderr, interval: float = 0.5):
        self.stream, self.interval = stream, interval
        self._last = 0.0
        self._shown = False

    def show(self, frame, info) -> int:
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self.stream.write(f"\rframe {info.index + 1}: shown {info.processed}, dropped {info.dropped}, "
                              f"{info.fps:.1f} frames/s ")
            self.stream.flush()
            self._shown = True
        return -1

    def poll(self) -> int:
        return -1

    def finish(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


class _StopOnInterrupt:
    """First Ctrl-C sets `event` (the session ends cleanly); a second raises KeyboardInterrupt."""

    def __init__(self, event: threading.Event):
        self.event = event
        self._old = None

    def _handler(self, signum, frame):
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            self._old = None
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return int(exc.code or 0)
    for name, value in (("--max-faces", args.max_faces), ("--frames", args.frames)):
        if value is not None and value < 1:
            print(f"error: {name} must be at least 1, got {value}", file=sys.stderr)
            return 2

    from tracker import pipeline
    from tracker.camera_keys import ViewState
    from tracker.live import MultiSink, RecordSink, TryOn, WindowSink, run_live, warm_up, window_problem
    from tracker.makeup import load_look
    from tracker.sources import open_source, parse_source
    from tracker.tracking import Tracker

    progress = _ProgressLine()
    try:
        if args.record is not None and args.record.suffix.lower() not in VIDEO_CODECS:
            raise OutputError(f"cannot write {args.record}: use one of {', '.join(VIDEO_CODECS)}")
        if args.record is not None and not args.record.parent.is_dir():
            raise OutputError(f"cannot write {args.record}: folder {args.record.parent} does not exist")
        try:
            look_from_args(args)  # validates the makeup options
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if not args.no_window:
            problem = window_problem()
            if problem is not None:
                print(f"error: {problem}; {HEADLESS_ALTERNATIVE}", file=sys.stderr)
                return 2
        spec = parse_source(args.source) if args.source is not None else args.device
        try:
            source = open_source(spec, size=args.size)
        except InputError as exc:
            if isinstance(spec, int):
                print(f"error: {exc}; {FILE_ALTERNATIVE}", file=sys.stderr)
                return 2
            raise
        with source, BackgroundDetector(DETECTORS[args.detector]()) as detector:
            # Detection runs beside the loop, so a slow detector never stalls the frames shown.
            landmarker = pipeline.load_landmarker(args.weights, backend=args.backend, threads=args.threads)
            looks = available_looks()
            state = ViewState(looks=looks, look=looks.index(args.look or DEFAULT_LOOK),
                              makeup=not args.no_makeup,
                              intensity=args.intensity if args.intensity is not None else 1.0,
                              landmarks=args.draw_landmarks, split=args.split)
            overrides = dict(lip_color=args.lip_color, lip_finish=args.lip_finish,
                             eyeshadow_color=args.eyeshadow_color, blush_color=args.blush_color)
            tryon = TryOn(state, overrides,
                          on_snapshot=lambda path: print(f"saved snapshot {path}", file=sys.stderr))
            stop = threading.Event()
            with Tracker(landmarker, detector, max_faces=args.max_faces, fps=source.fps,
                         threads=args.threads) as tracker, \
                    contextlib.ExitStack() as sinks:
                warm_up(tracker, pipeline.makeup_renderer(load_look(state.look_name)), source.size)
                record = sinks.enter_context(RecordSink(args.record, source.fps, source.size)) \
                    if args.record is not None else None
                window = sinks.enter_context(WindowSink("facelite try-on")) \
                    if not args.no_window else None
                sink = MultiSink(window, record, progress if args.no_window else None)
                print(f"live from {source.name} ({source.width}x{source.height}, {source.fps:.0f} frames/s)"
                      + ("; Ctrl-C to stop" if args.no_window else "; q or Esc in the window to quit"),
                      file=sys.stderr)
                with _StopOnInterrupt(stop):
                    stats = run_live(source, tracker, tryon, sink, max_frames=args.frames,
                                     on_key=tryon.on_key, caption=tryon.caption,
                                     status=not args.no_status, stop=stop)
                progress.finish()
    except TrackerError as exc:
        progress.finish()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.finish()
        print("interrupted" + ("; no recording written" if args.record is not None else ""), file=sys.stderr)
        return 130
    print(f"{stats.ended_by}: {stats.summary()}", file=sys.stderr)
    if args.record is not None:
        print(f"wrote {args.record}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
