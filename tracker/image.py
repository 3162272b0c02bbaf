"""Find face landmarks in one image and render the result.

usage: python -m tracker.image in.jpg [-o out.jpg] [--landmarks out.json|out.csv]
                               [--draw-landmarks] [--flip-average] [--max-faces N] [--weights PATH] [--detector NAME]
                               [--backend numba|numpy] [--threads N]

The default output is IN.makeup.EXT next to the input (same format). An
alpha channel (transparency) is kept: the output must then be .png, .webp or
.tiff. 16-bit images are refused (convert them to 8 bits first).

Exit status: 0 done; 1 no face found (nothing written); 2 bad input or output
(one message on stderr, no output file left behind); 130 interrupted
(Ctrl-C), 143 SIGTERM, 129 SIGHUP.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker import cli
from tracker.io import IMAGE_SUFFIXES


def default_output(src: Path) -> Path:
    """IN.makeup.EXT next to the input (.png when the input's format cannot be written)."""
    suffix = src.suffix if src.suffix.lower() in IMAGE_SUFFIXES else ".png"
    return src.with_name(f"{src.stem}.makeup{suffix}")


def build_parser() -> argparse.ArgumentParser:
    parser = cli.parser("python -m tracker.image", __doc__)
    parser.add_argument("input", type=Path, help="input image")
    cli.add_output_arguments(parser, "image", "IN.makeup.EXT")
    cli.add_look_arguments(parser)
    group = cli.add_engine_arguments(parser)
    group.add_argument("--flip-average", action="store_true",
                       help="also run each face mirrored and average (more accurate, twice the model time)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli.run(build_parser(), _main, argv)


def _main(args: argparse.Namespace, console: cli.Console) -> int:
    cli.check_counts(args, "max_faces")

    from tracker import pipeline

    dst = args.output if args.output is not None else default_output(args.input)
    with cli.native_stderr_quiet():  # a damaged image: our message, not libpng's as well
        pipeline.check_image_job(args.input, dst, args.landmarks)  # fail on a bad input before loading the model
    engine = cli.build_engine(args, flip_average=args.flip_average)
    cli.say_kernel_notice(console, engine.backend)
    with cli.build_tracker(args, engine, static_image_mode=True) as tracker:
        faces = pipeline.process_image(args.input, dst, tracker, render=engine.render, landmarks_out=args.landmarks,
                                       draw_landmarks=args.draw_landmarks)
    if not faces:
        console.say(f"no face found in {args.input}; nothing written")
        return cli.EXIT_NO_FACE
    extra = f" and {args.landmarks}" if args.landmarks is not None else ""
    console.say(f"wrote {dst}{extra}: {len(faces)} face(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
