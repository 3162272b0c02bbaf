"""What the command-line tools share: one-line errors, exit statuses, signals, a status line.

Every CLI (`tracker.video`, `tracker.image`, `tracker.camera`) is

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
from collections.abc import Callable, Iterator

from tracker.errors import TrackerError, UsageError

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
