"""Track face landmarks through a video and render the result.

usage: python -m tracker.video [in.mp4 | URL] [-o out.mp4] [--landmarks out.json|out.csv]
                               [--draw-landmarks] [--strict] [--max-faces N] [--weights PATH]
                               [--detector NAME] [--backend numba|numpy] [--threads N]

Without an input it processes the bundled sample clip (tracker/data/sample.mp4)
and writes sample.makeup.mp4 in the current folder; otherwise the default
output is IN.makeup.mp4 next to the input (for a stream URL: NAME.makeup.mp4
in the current folder). The output keeps the input's size and frame rate. A
progress line with frames/s goes to stderr (the speed of the processing: the
kernels are loaded, or on a first run compiled, before it starts). An input
that ends before the frames its container announces (a truncated file) is
processed as far as it goes and the summary line says so; with --strict it is
an error. For a live camera use `python -m tracker.camera`; for a still image
`python -m tracker.image`.

Exit status: 0 done; 2 bad input or output (one message on stderr, no
output file left behind); 130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP
(temporary files removed, nothing written).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker import cli
from tracker.errors import InputError, OutputError
from tracker.io import LANDMARK_FORMATS, VIDEO_CODECS, check_outputs
from tracker.resources import SAMPLE
from tracker.sources import parse_source


def progress_text(done: int, total: int | None, fps: float) -> str:
    """The progress line of a video: frames done, percent when the total is known, frames/s."""
    of = f"/{total} ({100 * done / total:.0f}%)" if total else ""
    return f"frame {done}{of}  {fps:.1f} frames/s"


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
    parser = cli.parser("python -m tracker.video", __doc__)
    parser.add_argument("input", nargs="?", help="input video file or stream URL (default: the bundled sample clip)")
    cli.add_output_arguments(parser, "video", "IN.makeup.mp4")
    parser.add_argument("--strict", action="store_true",
                        help="fail (nothing written) when the input ends before the frames it announces")
    cli.add_look_arguments(parser)
    cli.add_engine_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), _main, argv)


def _main(args: argparse.Namespace, console: cli.Console) -> int:
    cli.check_counts(args, "max_faces")

    from tracker import pipeline
    from tracker.live import warmup

    src = SAMPLE if args.input is None else parse_source(args.input)
    if isinstance(src, int):  # digits: a file of that name, else a camera index
        src = Path(args.input)
        if not src.exists():
            raise InputError(f"video not found: {src} (for camera {args.input}, use "
                             f"python -m tracker.camera --device {args.input})")
    dst = args.output if args.output is not None else default_output(None if args.input is None else src)
    if isinstance(src, Path):
        if src.is_dir():
            raise InputError(f"{src} is a folder, not a video file")
        if not src.exists():
            raise InputError(f"video not found: {src}")
    if dst.suffix.lower() not in VIDEO_CODECS:
        raise OutputError(f"cannot write {dst}: use one of {', '.join(VIDEO_CODECS)}")
    if args.landmarks is not None and args.landmarks.suffix.lower() not in LANDMARK_FORMATS:
        raise OutputError(f"landmarks output {args.landmarks} must end in .json or .csv")
    check_outputs([src] if isinstance(src, Path) else [], [dst, args.landmarks])
    engine = cli.build_engine(args)
    render = engine.render
    line = cli.ProgressLine(console, interval=0.25)

    def progress(done: int, total: int | None, fps: float) -> None:
        line.update(lambda: progress_text(done, total, fps), last=done == total)

    with cli.build_tracker(args, engine) as tracker:
        cli.say_kernel_notice(console, engine.backend)
        warmup(tracker, render, (320, 240))  # compile / load the kernels outside the timed run
        stats = pipeline.process_video(src, dst, tracker, render=render, landmarks_out=args.landmarks,
                                       draw_landmarks=args.draw_landmarks, progress=progress,
                                       strict=args.strict)
    extra = f" and {args.landmarks}" if args.landmarks is not None else ""
    summary = (f"wrote {dst}{extra}: {stats.frames} frames, faces in {stats.frames_with_faces}, "
               f"{stats.frames_per_second:.1f} frames/s")
    if stats.ended_early:
        summary += (f"; the input ended early: {stats.frames} of the {stats.frames_announced} frames it "
                    "announces (truncated or damaged file; --strict makes this an error)")
    console.say(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
