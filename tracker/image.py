"""Find face landmarks in one image and render the result.

usage: python -m tracker.image in.jpg [-o out.jpg] [--landmarks out.json|out.csv]
                               [--draw-landmarks] [--flip-average] [--max-faces N] [--weights PATH] [--detector NAME]
                               [--backend numba|numpy] [--threads N]

The default output is IN.makeup.EXT next to the input (same format).

Exit status: 0 done; 1 no face found (nothing written); 2 bad input or output
(one message on stderr, no output file left behind).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tracker.detection import DETECTORS
from tracker.makeup import add_look_arguments, look_from_args
from tracker.errors import InputError, OutputError, TrackerError
from tracker.io import LANDMARK_FORMATS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def default_output(src: Path) -> Path:
    """IN.makeup.EXT next to the input (.png when the input's format cannot be written)."""
    suffix = src.suffix if src.suffix.lower() in IMAGE_SUFFIXES else ".png"
    return src.with_name(f"{src.stem}.makeup{suffix}")


def build_parser() -> argparse.ArgumentParser:
    from tracker.pipeline import add_engine_arguments

    parser = argparse.ArgumentParser(prog="python -m tracker.image", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", type=Path, help="input image")
    parser.add_argument("-o", "--output", type=Path, help="output image (default: IN.makeup.EXT)")
    parser.add_argument("--landmarks", type=Path, metavar="PATH", help="also write the landmarks (.json or .csv)")
    parser.add_argument("--draw-landmarks", action="store_true", help="overlay landmarks, boxes and ids")
    add_look_arguments(parser)
    parser.add_argument("--flip-average", action="store_true",
                        help="also run each face mirrored and average (more accurate, twice the model time)")
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

    dst = args.output if args.output is not None else default_output(args.input)
    try:
        pipeline.read_image(args.input)  # fail on a bad input before loading the model
        if dst.suffix.lower() not in IMAGE_SUFFIXES:
            raise OutputError(f"cannot write {dst}: use one of {', '.join(IMAGE_SUFFIXES)}")
        if args.landmarks is not None and args.landmarks.suffix.lower() not in LANDMARK_FORMATS:
            raise OutputError(f"landmarks output {args.landmarks} must end in .json or .csv")
        try:
            render = pipeline.makeup_renderer(look_from_args(args))
        except ValueError as exc:
            raise InputError(str(exc)) from None
        detector = DETECTORS[args.detector]()
        landmarker = pipeline.load_landmarker(args.weights, backend=args.backend, threads=args.threads,
                                              flip_average=args.flip_average)
        with Tracker(landmarker, detector, max_faces=args.max_faces, threads=args.threads,
                     static_image_mode=True) as tracker:
            faces = pipeline.process_image(args.input, dst, tracker, render=render, landmarks_out=args.landmarks,
                                           draw_landmarks=args.draw_landmarks)
    except TrackerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not faces:
        print(f"no face found in {args.input}; nothing written", file=sys.stderr)
        return 1
    print(f"wrote {dst}: {len(faces)} face(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
