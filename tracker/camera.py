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
message on stderr naming the cause, no output file left behind; --record
never overwrites the --source file); 130 interrupted twice; 143 SIGTERM, 129
SIGHUP (the recording is abandoned, nothing written).
"""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from tracker import cli
from tracker.detection import BackgroundDetector
from tracker.errors import InputError, OutputError
from tracker.io import VIDEO_CODECS, check_outputs
from tracker.makeup import DEFAULT_LOOK, available_looks

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
    parser = cli.parser("python -m tracker.camera", __doc__)
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
    cli.add_look_arguments(parser)
    cli.add_engine_arguments(parser)
    return parser


def progress_text(info) -> str:
    """The progress line of a headless run: frames shown / dropped, frames/s (`info`: a `tracker.live.FrameInfo`)."""
    return f"frame {info.index + 1}: shown {info.processed}, dropped {info.dropped}, {info.fps:.1f} frames/s"


class _StopOnInterrupt:
    """Signals end the live loop at a frame boundary, not in the middle of a capture or a write.

    First Ctrl-C sets `event` (the session ends cleanly, the recording is kept); a
    second raises KeyboardInterrupt. SIGTERM and SIGHUP set `event` too and are kept
    in `signum`: the caller then abandons the session (`cli.Terminated`).
    """

    def __init__(self, event: threading.Event):
        self.event = event
        self.signum: int | None = None
        self._old: dict = {}

    def _handler(self, signum, frame):
        if signum != signal.SIGINT:
            self.signum = signum
        elif self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def __enter__(self):
        try:
            for sig in (signal.SIGINT, *cli.STOP_SIGNALS):
                self._old[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: leave the signals as they are
            pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), _main, argv)


def _main(args: argparse.Namespace, console: cli.Console) -> int:
    cli.check_counts(args, "max_faces", "frames")

    from tracker.camera_keys import ViewState
    from tracker.live import MultiSink, ProgressSink, RecordSink, TryOn, WindowSink, run_live, warmup, window_problem
    from tracker.makeup import load_look, makeup_renderer
    from tracker.sources import open_source, parse_source

    spec = parse_source(args.source) if args.source is not None else args.device
    if args.record is not None:
        if args.record.suffix.lower() not in VIDEO_CODECS:
            raise OutputError(f"cannot write {args.record}: use one of {', '.join(VIDEO_CODECS)}")
        check_outputs([spec] if isinstance(spec, Path) else [], [args.record])
    if not args.no_window:
        problem = window_problem()
        if problem is not None:
            raise InputError(f"{problem}; {HEADLESS_ALTERNATIVE}")
    engine = cli.build_engine(args)  # the makeup options, backend and weights
    try:
        source = open_source(spec, size=args.size)
    except InputError as exc:
        if isinstance(spec, int):
            raise InputError(f"{exc}; {FILE_ALTERNATIVE}") from None
        raise
    line = cli.ProgressLine(console, interval=0.5)
    progress = ProgressSink(lambda info: line.update(lambda: progress_text(info)))
    # Detection runs beside the loop, so a slow detector never stalls the frames shown.
    with source, BackgroundDetector(engine.detector) as detector:
        looks = available_looks()
        state = ViewState(looks=looks, look=looks.index(args.look or DEFAULT_LOOK),
                          makeup=not args.no_makeup,
                          intensity=args.intensity if args.intensity is not None else 1.0,
                          landmarks=args.draw_landmarks, split=args.split)
        overrides = dict(lip_color=args.lip_color, lip_finish=args.lip_finish,
                         eyeshadow_color=args.eyeshadow_color, blush_color=args.blush_color)
        tryon = TryOn(state, overrides, on_snapshot=lambda path: console.say(f"saved snapshot {path}"))
        stop = threading.Event()
        with cli.build_tracker(args, engine, detector=detector, fps=source.fps) as tracker, \
                contextlib.ExitStack() as sinks:
            cli.say_kernel_notice(console, engine.backend)
            warmup(tracker, makeup_renderer(load_look(state.look_name)), source.size)
            record = sinks.enter_context(RecordSink(args.record, source.fps, source.size)) \
                if args.record is not None else None
            window = sinks.enter_context(WindowSink("facelite try-on")) \
                if not args.no_window else None
            sink = MultiSink(window, record, progress if args.no_window else None)
            console.say(f"live from {source.name} ({source.width}x{source.height}, {source.fps:.0f} frames/s)"
                        + ("; Ctrl-C to stop" if args.no_window else "; q or Esc in the window to quit"))
            with _StopOnInterrupt(stop) as stopper:
                stats = run_live(source, tracker, tryon, sink, max_frames=args.frames,
                                 on_key=tryon.on_key, caption=tryon.caption,
                                 status=not args.no_status, stop=stop)
            if stopper.signum is not None:  # SIGTERM / SIGHUP: abandon the recording
                raise cli.Terminated(stopper.signum)
    console.say(f"{stats.ended_by}: {stats.summary()}")
    if args.record is not None:
        console.say(f"wrote {args.record}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
