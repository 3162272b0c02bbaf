"""What the command-line tools share: one-line errors, exit statuses, signals, a progress line,
the options of the tracker and what they build.

Every CLI (`tracker.video`, `tracker.image`, `tracker.camera`, `tracker.batch`) is

    def main(argv=None) -> int:
        return run(build_parser(), _main, argv)

where `build_parser` makes an `ArgumentParser` (argparse with one-line errors)
and `_main(args, console)` does the work and returns the exit status. `run`
turns every way a run can go wrong into one message line on stderr and an exit
status, never a traceback:

- 2: bad input or output (`tracker.errors.TrackerError`, a bad argument, or an
  operating-system error such as a full disk), message ``error: ...``;
- 130: Ctrl-C; 143: SIGTERM; 129: SIGHUP (128 + the signal number, as a shell
  reports it), message ``interrupted ...`` / ``stopped by SIGTERM ...``.

SIGTERM and SIGHUP unwind the program like Ctrl-C (`Terminated` is a
KeyboardInterrupt), so the writers' clean-up runs and no temporary file is
left behind.

The makeup options (`add_look_arguments` -> `look_from_args`) and the
options every tracking CLI takes (`add_engine_arguments`: --max-faces,
--weights, --detector, --backend, --threads) build an `Engine` (`build_engine`:
makeup renderer, detector, landmark model, checked in the order a user can fix
them) and from it a `tracker.tracking.Tracker` (`build_tracker`). The core
modules never import this one.

Importing this module keeps FFmpeg's own log lines off stderr
(`quiet_video_libraries`): FFmpeg reads its level when a process first opens
a video, and the CLIs report every problem in their own words.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tracker.colors import HEX_FORMATS, parse_hex
from tracker.errors import InputError, TrackerError, UsageError
from tracker.landmarks import DEFAULT_WEIGHTS, check_backend, load_landmarker
from tracker.makeup import (DEFAULT_LOOK, FINISHES, Look, available_looks, load_look, look_with_overrides,
                            makeup_renderer)
from tracker.types import Render

EXIT_OK, EXIT_NO_FACE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are one line (`UsageError`), not a usage block and exit."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def parser(prog: str, doc: str) -> ArgumentParser:
    """The parser of a CLI: `prog` (e.g. "python -m tracker.video"), the module docstring as its help."""
    return ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; raised in the main thread so the program unwinds as for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_terminated(signum, frame):
    raise Terminated(signum)


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise `Terminated` (main thread only; elsewhere a no-op)."""
    old = {}
    try:
        for sig in STOP_SIGNALS:
            old[sig] = signal.signal(sig, _raise_terminated)
    except ValueError:  # not the main thread: signals cannot be handled here
        pass
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def quiet_video_libraries() -> None:
    """Keep FFmpeg's and OpenCV's own log lines off stderr (the CLIs report problems themselves).

    Read when OpenCV first opens a video, so call it before that; a value the user set is kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")


quiet_video_libraries()


@contextlib.contextmanager
def native_stderr_quiet() -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 (libpng's "Read Error", libjpeg's
    warnings) to /dev/null within the block, which must be short and single-threaded: it is for
    decoding an input whose problems the CLI reports itself. Python's own writes are flushed first."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class Console:
    """stderr of a CLI: `status` rewrites one progress line, `say` prints a line in its place.

    The progress line is blanked before a message, so what stays on screen (and in a
    log of stderr, read line by line after each carriage return) is the messages only.
    """

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self._status_width = 0

    def status(self, text: str) -> None:
        pad = " " * max(0, self._status_width - len(text))
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()
        self._status_width = max(self._status_width, len(text))

    def end_status(self) -> None:
        if self._status_width:
            self.stream.write("\r" + " " * self._status_width + "\r")
            self.stream.flush()
            self._status_width = 0

    def say(self, text: str) -> None:
        self.end_status()
        # one write: a signal handler (which runs between Python calls) cannot split the line
        self.stream.write(text + "\n")
        self.stream.flush()


class ProgressLine:
    """A console status line rewritten at most every `interval` seconds (and always for the last update).

    `update(text, last=False)`: show `text` when `interval` has passed since the
    last shown update, or when `last`; `text` may be a callable, called only
    then. `finish()` blanks the line. One class for every CLI: video frames,
    camera frames shown / dropped, batch files.
    """

    def __init__(self, console: Console, interval: float = 0.25):
        self.console = console
        self.interval = interval
        self._last = 0.0

    def update(self, text: str | Callable[[], str], last: bool = False) -> None:
        now = time.perf_counter()
        if now - self._last < self.interval and not last:
            return
        self._last = now
        self.console.status(text() if callable(text) else text)

    def finish(self) -> None:
        self.console.end_status()


def run(parser: argparse.ArgumentParser, main: Callable[[argparse.Namespace, Console], int],
        argv: list[str] | None = None, console: Console | None = None) -> int:
    """Parse `argv`, run `main(args, console)` and return its exit status; see the module docstring."""
    console = Console() if console is None else console
    try:
        with stop_signals_raise():
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # --help or --version: argparse printed it
                return int(exc.code or 0)
            return main(args, console)
    except TrackerError as exc:
        console.say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except OSError as exc:  # e.g. the disk filled up while writing (the message names the file)
        console.say(f"error: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return EXIT_BAD_INPUT
    except Terminated as exc:
        console.say(f"stopped by {exc}; no output written")
        return 128 + exc.signum
    except KeyboardInterrupt:
        console.say("interrupted; no output written")
        return EXIT_INTERRUPTED


def kernel_cache_notice(backend: str) -> str | None:
    """One line to show before the kernels first load, or None when there is nothing to say.

    backend : the resolved kernel backend ("numba" or "numpy"; NumPy compiles nothing).
    Numba compiles the kernels on the first run (about 20 s on 2 cores) and caches
    them in $NUMBA_CACHE_DIR (nnlite sets it to a per-user folder, or leaves it unset
    when no folder is writable, and then every run compiles again).
    """
    if backend != "numba":
        return None
    import hashlib

    import nnlite.backend  # noqa: F401  (sets NUMBA_CACHE_DIR when a folder is writable)
    import nnlite.kernels

    cache = os.environ.get("NUMBA_CACHE_DIR", "")
    if not cache or not (os.path.isdir(cache) and os.access(cache, os.W_OK)):
        where = f" ({cache})" if cache else ""
        return (f"note: the kernel cache folder{where} is not writable, so every run compiles the kernels "
                "again (about 20 s); set NUMBA_CACHE_DIR to a writable folder to cache them")
    # Numba's cache for the modules of one folder: CACHE/<folder name>_<sha1 of its absolute path>/
    folder = os.path.abspath(os.path.dirname(nnlite.kernels.__file__))
    entries = os.path.join(cache, f"{os.path.basename(folder)}_{hashlib.sha1(folder.encode()).hexdigest()}")
    if os.path.isdir(entries) and any(name.endswith(".nbi") for name in os.listdir(entries)):
        return None
    return f"compiling the kernels (first run only, about 20 s; cached in {cache})"


# ------------------------------------------------------------------------ the makeup options

def color_arg(text: str) -> str:
    """argparse type: a colour `tracker.colors.parse_hex` reads."""
    try:
        parse_hex(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def intensity_arg(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"invalid intensity {text!r}: expected a number in [0, 1]")
    return value


def add_output_arguments(parser: argparse.ArgumentParser, kind: str, default: str) -> None:
    """The file CLIs' outputs: -o/--output (a `kind` file, `default` when not given),
    --landmarks (JSON or CSV beside it) and --draw-landmarks."""
    parser.add_argument("-o", "--output", type=Path, help=f"output {kind} (default: {default})")
    parser.add_argument("--landmarks", type=Path, metavar="PATH",
                        help="also write the landmarks" + (" per frame" if kind == "video" else "")
                             + " (.json or .csv)")
    parser.add_argument("--draw-landmarks", action="store_true",
                        help="overlay landmarks, boxes and track ids")


def add_look_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the makeup options (--look, --lip-color, ... , --no-makeup) to a parser."""
    g = parser.add_argument_group("makeup")
    g.add_argument("--look", default=DEFAULT_LOOK, choices=available_looks(),
                   help=f"preset look (default: {DEFAULT_LOOK})")
    g.add_argument("--lip-color", type=color_arg, metavar="HEX",
                   help=f"lipstick colour, {HEX_FORMATS}")
    g.add_argument("--lip-finish", choices=FINISHES, help="lipstick finish")
    g.add_argument("--intensity", type=intensity_arg, metavar="FLOAT",
                   help="overall makeup intensity in [0, 1] (default 1: the look as designed)")
    g.add_argument("--eyeshadow-color", type=color_arg, metavar="HEX", help="eyeshadow colour")
    g.add_argument("--blush-color", type=color_arg, metavar="HEX", help="blush colour")
    g.add_argument("--no-makeup", action="store_true", help="render no makeup")


def look_from_args(args: argparse.Namespace) -> Look | None:
    """The Look the parsed options ask for, or None with --no-makeup.

    Values are validated again (the namespace may not come from `add_look_arguments`):
    ValueError on an unknown look or a bad colour / finish / intensity.
    """
    if getattr(args, "no_makeup", False):
        return None
    look = load_look(getattr(args, "look", None) or DEFAULT_LOOK)
    return look_with_overrides(
        look,
        lip_color=getattr(args, "lip_color", None),
        lip_finish=getattr(args, "lip_finish", None),
        intensity=getattr(args, "intensity", None),
        eyeshadow_color=getattr(args, "eyeshadow_color", None),
        blush_color=getattr(args, "blush_color", None),
    )


# ------------------------------------------------------------------------ the tracker's options

def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def add_engine_arguments(parser: argparse.ArgumentParser, threads: bool = True) -> argparse._ArgumentGroup:
    """Add the options every tracking CLI shares, in a "tracker" group: --max-faces, --weights,
    --detector, --backend and (unless `threads` is False) --threads. -> the group, for more."""
    from nnlite.backend import BACKENDS
    from tracker.detection import DEFAULT_DETECTOR, DETECTORS

    group = parser.add_argument_group("tracker")
    group.add_argument("--max-faces", type=int, default=1, metavar="N",
                       help="most faces tracked at once (default 1)")
    group.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                       help="landmark model: a weights file, or a shipped model's name: demo (default), "
                            "lite (faster, slightly less accurate) or full (most accurate)")
    group.add_argument("--detector", choices=sorted(DETECTORS), default=DEFAULT_DETECTOR,
                       help=f"face detector (default {DEFAULT_DETECTOR})")
    group.add_argument("--backend", choices=BACKENDS, default=None,
                       help="kernel backend (default: $NNLITE_BACKEND, else numba when installed, else numpy)")
    if threads:
        group.add_argument("--threads", type=positive_int, default=None, metavar="N",
                           help="most CPU threads: caps the model's Numba kernels (default: cores - 1, 1 to 4) "
                                "and, when given, OpenCV's")
    return group


def check_counts(args: argparse.Namespace, *names: str) -> None:
    """InputError naming the option when one of the count options `names` (e.g. "max_faces") is below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


@dataclass(frozen=True)
class Engine:
    """What a CLI builds from its options: the makeup renderer (None: no makeup), the face
    detector, the landmark model, the kernel backend name they run on, and on an empty
    Numba cache the helper process compiling on the second core (`tracker.precompile`)."""
    render: Render | None
    detector: object
    landmarker: object
    backend: str
    precompile_helper: object = None


def build_engine(args: argparse.Namespace, flip_average: bool = False) -> Engine:
    """The `Engine` of parsed options (`add_look_arguments`, `add_engine_arguments`).

    Checked in the order a user can fix them, each an InputError naming the option or
    file: the makeup options, the backend ($NNLITE_BACKEND), then the weights.
    """
    from tracker.detection import build_detector

    try:
        render = makeup_renderer(look_from_args(args))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    backend = check_backend(args.backend)  # before the detector, which runs on it too
    detector = build_detector(args.detector, backend)
    landmarker = load_landmarker(args.weights, backend=backend, threads=args.threads, flip_average=flip_average)
    from tracker.precompile import start_if_first_run

    return Engine(render, detector, landmarker, backend, start_if_first_run(landmarker, args.weights))


def build_tracker(args: argparse.Namespace, engine: Engine, detector=None, **options):
    """The `tracker.tracking.Tracker` of parsed options over `engine`'s models (--max-faces,
    --threads); `detector` replaces the engine's (e.g. wrapped in a BackgroundDetector);
    `options`: any other Tracker argument (static_image_mode, fps, ...)."""
    from tracker.tracking import Tracker

    tracker = Tracker(engine.landmarker, engine.detector if detector is None else detector,
                      max_faces=args.max_faces, threads=args.threads, **options)
    tracker.precompile_helper = engine.precompile_helper  # the warm-up waits for it to render
    return tracker


def say_kernel_notice(console: Console, backend: str) -> None:
    """Print `kernel_cache_notice(backend)` when there is one (before the kernels first load)."""
    notice = kernel_cache_notice(backend)
    if notice is not None:
        console.say(notice)
