"""Track faces and render makeup on many videos and photos at once, on every core or on a Ray cluster.

usage: python -m tracker.batch INPUT... -o OUT_DIR [--workers N] [--ray [ADDRESS]]
                               [--landmarks json|csv] [--draw-landmarks] [--force]
                               [makeup options] [--flip-average] [--max-faces N] [--weights PATH]
                               [--detector NAME] [--backend numba|numpy]

INPUT: video or image files, folders (searched recursively for videos and
images; hidden files and folders and OUT_DIR itself are left out) or text files
(.txt, .lst, .list) listing such paths one per line (relative to the list's
folder; blank lines and lines starting with # are ignored).

Outputs mirror the input tree under OUT_DIR: the paths below the inputs'
common folder are kept (`batch clips photos -o out` writes out/clips/...,
out/photos/...; `batch clips -o out` writes out/...). Each input gives its
rendered file of the same name (a video format OpenCV cannot write becomes
.mp4) and, with --landmarks, NAME.EXT.landmarks.json or .csv beside it.

Every output is written under a temporary name and renamed when complete.
OUT_DIR/manifest.jsonl gets one JSON line per finished input: input, kind
(video or image), status (done, no_face or failed), output, landmarks, frames,
frames_with_faces, faces (distinct face tracks), seconds, error, error_kind
(input, output, internal or crash), key, host, pid. A rerun with the same
options skips every input already done, faceless, or failed because the file
itself is bad (unless the file changed since); other failures are retried, and
--force redoes everything. A stopped batch (Ctrl-C, SIGTERM, a killed worker)
loses only the files in flight.

--workers N runs N processes (default: the cores), each with its own tracker
on one thread. --ray runs the same job as Ray tasks (pip install
"facelite[ray]"): on the cluster at ADDRESS (started with `ray start --head`;
inputs and OUT_DIR must be at the same paths on every node), or on a local Ray
with --workers CPUs when no address is given (put a bare --ray after the
inputs, or it takes the first input for an address). Progress (files done of total,
frames/s over all workers, time left) goes to stderr.

Exit status: 0 every input done; 1 some input failed or had no face (the
manifest and the summary say which); 2 bad arguments, inputs or options (one
message, nothing processed or written); 130 interrupted (Ctrl-C), 143 stopped
by SIGTERM, 129 by SIGHUP: finished files are kept and recorded, a rerun does the rest.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tracker.batch_job import IMAGE, VIDEO, EngineOptions, FileJob
from tracker.errors import InputError, OutputError
from tracker.io import IMAGE_SUFFIXES

MANIFEST = "manifest.jsonl"
STAGING = ".batch-staging"  # per-job temporary folders, removed when a batch starts
LOCK = ".batch.lock"
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")
LIST_SUFFIXES = (".txt", ".lst", ".list")
LANDMARK_KINDS = ("json", "csv")
# Statuses a rerun with the same options and input file does not redo: the outcome would be the same.
FINAL_STATUSES = ("done", "no_face")


@dataclass(frozen=True)
class BatchProgress:
    """Where a batch stands: inputs finished (skipped ones included) of all, failed and
    faceless so far, frames processed this run, frames/s over all workers (wall clock),
    estimated seconds left (None until a file has finished; from the inputs' bytes)."""
    files_done: int
    files_total: int
    failed: int
    frames: int
    frames_per_second: float
    seconds_left: float | None


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return VIDEO
    if suffix in IMAGE_SUFFIXES:
        return IMAGE
    return None


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _search(folder: Path, out_dir: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and _kind(p) and not _hidden(p, folder) and not _inside(p.resolve(), out_dir))


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the list of inputs {path}: {exc}") from None
    entries = [line.strip() for line in lines]
    return [path.parent / e for e in entries if e and not e.startswith("#")]


def _expand(arg: Path, out_dir: Path, from_list: Path | None = None) -> tuple[list[Path], list[Path]]:
    """-> (files, anchors): the inputs one argument or list line stands for, and the
    folders the output tree is relative to (a folder itself, a file's folder)."""
    where = f" (listed in {from_list})" if from_list else ""
    if arg.is_dir():
        return _search(arg, out_dir), [arg]
    suffix = arg.suffix.lower()
    if from_list is None and suffix in LIST_SUFFIXES:
        if not arg.is_file():
            raise InputError(f"list of inputs not found: {arg}")
        files, anchors = [], []
        for entry in _read_list(arg):
            f, a = _expand(entry, out_dir, from_list=arg)
            files += f
            anchors += a
        return files, anchors
    if _kind(arg) is None:
        raise InputError(f"{arg}{where} is not a video, an image, a folder or a list of paths "
                         f"({', '.join(LIST_SUFFIXES)})")
    if from_list is None and not arg.exists():
        raise InputError(f"input not found: {arg}")
    # A listed file that is missing stays in: its job fails with "not found", recorded in the manifest.
    return [arg], [arg.parent]


def _output_name(path: Path) -> str:
    from tracker.io import VIDEO_CODECS

    if _kind(path) == VIDEO and path.suffix.lower() not in VIDEO_CODECS:
        return path.stem + ".mp4"
    return path.name


def discover(inputs: Iterable[str | os.PathLike], out_dir: str | os.PathLike) -> list[tuple[Path, Path]]:
    """The inputs as (absolute input path, output path relative to OUT_DIR), in a stable order.

    Raises InputError for a missing argument, an unknown file type, two inputs that
    would write the same output, or an input that would be overwritten.
    """
    out = Path(out_dir).resolve()
    files, anchors = [], []
    for arg in inputs:
        f, a = _expand(Path(arg), out)
        files += f
        anchors += a
    if not files:
        raise InputError("no videos or images found in " + ", ".join(map(str, inputs)))
    base = Path(os.path.commonpath([str(a.resolve()) for a in anchors]))
    plan, seen, taken = [], set(), {}
    for f in files:
        src = f.resolve()
        if src in seen:
            continue  # the same file through two arguments
        seen.add(src)
        rel = src.parent.relative_to(base) / _output_name(src)
        if (out / rel) == src:
            raise InputError(f"output folder {out} would overwrite the input {src}")
        if rel in taken:
            raise InputError(f"inputs {taken[rel]} and {src} would both write {out / rel}")
        taken[rel] = src
        plan.append((src, rel))
    return plan


def _file_key(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}-{st.st_mtime_ns}"


def _options_key(engine: EngineOptions, look, draw_landmarks: bool, landmarks: str | None) -> str:
    weights = Path(engine.weights)
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()
    text = json.dumps({"engine": dataclasses.asdict(engine), "weights_sha1": digest,
                       "look": dataclasses.asdict(look) if look is not None else None,
                       "draw_landmarks": draw_landmarks, "landmarks": landmarks}, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def read_manifest(out_dir: str | os.PathLike) -> dict[str, dict]:
    """The latest row per input (absolute path) in OUT_DIR's manifest; {} when there is none.

    A torn last line (a batch killed while writing it) is ignored."""
    path = Path(out_dir) / MANIFEST
    rows = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                row = json.loads(line)
                if isinstance(row, dict) and "input" in row:
                    rows[row["input"]] = row
    return rows


def _reusable(row: dict | None, key: str, output: str) -> bool:
    if row is None or row.get("key") != key:
        return False
    if row.get("status") == "done":
        return row.get("output") == output and all(
            Path(p).is_file() for p in (row.get("output"), row.get("landmarks")) if p)
    return row.get("status") in FINAL_STATUSES or row.get("error_kind") == "input"


class ManifestWriter:
    """Appends rows to OUT_DIR/manifest.jsonl, one whole line per write, flushed to disk."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST
        self._file = open(self.path, "a+b")
        self._file.seek(0, os.SEEK_END)
        if self._file.tell():
            self._file.seek(-1, os.SEEK_END)
            if self._file.read(1) != b"\n":  # a torn line: end it so the next row stands alone
                self._file.write(b"\n")

    def write(self, row: dict) -> None:
        self._file.write((json.dumps(row) + "\n").encode())
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def _locked(out_dir: Path):
    """Hold OUT_DIR's lock (one batch per output folder at a time) and start with no staging left."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None
    with open(out_dir / LOCK, "a") as lock:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise OutputError(f"another batch is writing to {out_dir} (it holds {out_dir / LOCK})") from None
        # Staging of batches that were stopped: their files in flight, never complete outputs.
        shutil.rmtree(out_dir / STAGING, ignore_errors=True)
        try:
            yield
        finally:
            shutil.rmtree(out_dir / STAGING, ignore_errors=True)


class _Tally:
    """Counts finished inputs and turns them into BatchProgress."""

    def __init__(self, total_files: int, total_bytes: int, progress: Callable[[BatchProgress], None] | None):
        self.total_files, self.bytes_left = total_files, total_bytes
        self.progress = progress
        self.start = time.perf_counter()
        self.done = self.failed = self.frames = 0
        self.bytes_done = 0

    def add(self, row: dict, size: int, ran: bool) -> None:
        self.done += 1
        self.failed += row.get("status") != "done"
        if ran:
            self.frames += int(row.get("frames") or 0)
            self.bytes_done += size
        self.bytes_left -= size
        if self.progress is not None:
            self.progress(self.snapshot())

    def snapshot(self) -> BatchProgress:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        left = self.bytes_left * elapsed / self.bytes_done if self.bytes_done else None
        return BatchProgress(self.done, self.total_files, self.failed, self.frames, self.frames / elapsed,
                             0.0 if self.done == self.total_files else left)


def _resolve_look(look):
    from tracker.makeup import DEFAULT_LOOK, load_look

    if look == "default":
        return load_look(DEFAULT_LOOK)
    if isinstance(look, str):
        try:
            return load_look(look)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    return look


def _engine_options(weights, detector, backend, max_faces, flip_average) -> EngineOptions:
    from tracker.detection import DEFAULT_DETECTOR, DETECTORS
    from tracker.landmarks import DEFAULT_WEIGHTS, check_backend, load_landmarker
    from tracker.resources import shipped_weights

    detector = DEFAULT_DETECTOR if detector is None else detector
    if detector not in DETECTORS:
        raise InputError(f"unknown detector {detector!r}; choose one of {', '.join(sorted(DETECTORS))}")
    if max_faces < 1:
        raise InputError(f"max_faces must be at least 1, got {max_faces}")
    weights = shipped_weights(DEFAULT_WEIGHTS if weights is None else weights)
    backend = check_backend(backend)  # resolved here: every worker then uses the same one
    load_landmarker(weights, backend=backend, threads=1)  # a bad weights file fails here, once
    return EngineOptions(str(weights.resolve()), detector, backend, int(max_faces), bool(flip_average))


def run(inputs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, workers: int | None = None,
        ray: bool | str | None = None, look="default", weights=None, detector: str | None = None,
        backend: str | None = None, max_faces: int = 1, flip_average: bool = False,
        draw_landmarks: bool = False, landmarks: str | None = None, force: bool = False,
        progress: Callable[[BatchProgress], None] | None = None) -> list[dict]:
    """Process many videos and images; -> one manifest row (dict) per input, in input order.

    inputs : files, folders, lists of paths (see the module docstring); out_dir : created if needed;
    workers : local processes (default: the cores), or the CPUs of a local Ray;
    ray : None/False: local processes; True: Ray (the one initialised in this process, else a
        local one); a string: the address of a Ray cluster;
    look : a `tracker.makeup.Look`, a preset name, "default" (the default look) or None (no makeup);
    weights, detector, backend, max_faces : the tracker (as in `tracker.video`); flip_average:
        also run each photo's faces mirrored and average;
    draw_landmarks : overlay points and boxes; landmarks : "json" / "csv" to write landmarks too;
    force : redo inputs the manifest has as done;
    progress : called with a `BatchProgress` after each input.

    Rows of inputs skipped as already done are their earlier manifest rows with
    "skipped": True. Raises InputError / OutputError (nothing written) for bad
    arguments, and KeyboardInterrupt when interrupted (finished rows are kept).
    """
    if landmarks is not None and landmarks not in LANDMARK_KINDS:
        raise InputError(f"landmarks must be one of {', '.join(LANDMARK_KINDS)}, got {landmarks!r}")
    if workers is None:
        workers = os.cpu_count() or 1
    if workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"output folder {out} is a file")
    plan = discover(inputs, out)
    if ray is not None and ray is not False:
        from tracker.batch_pool import require_ray

        require_ray()
    look = _resolve_look(look)
    engine = _engine_options(weights, detector, backend, max_faces, flip_average)
    options_key = _options_key(engine, look, draw_landmarks, landmarks)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out}: {exc}") from None
    out = out.resolve()

    with _locked(out):
        previous = {} if force else read_manifest(out)
        rows: dict[str, dict] = {}
        jobs, sizes = [], {}
        for src, rel in plan:
            key = f"{options_key}-{_file_key(src)}"
            sizes[str(src)] = src.stat().st_size if src.is_file() else 0
            row = previous.get(str(src))
            if _reusable(row, key, str(out / rel)):
                rows[str(src)] = {**row, "skipped": True}
                continue
            marks = str(out / rel) + f".landmarks.{landmarks}" if landmarks else None
            jobs.append(FileJob(str(src), _kind(src), str(out / rel), marks,
                                str(out / STAGING / uuid.uuid4().hex), key, engine, look, draw_landmarks))
        tally = _Tally(len(plan), sum(sizes.values()), progress)
        for row in rows.values():
            tally.add(row, sizes[row["input"]], ran=False)
        manifest = ManifestWriter(out)

        def finished(row: dict) -> None:
            manifest.write(row)
            rows[row["input"]] = row
            tally.add(row, sizes[row["input"]], ran=True)

        try:
            if ray is None or ray is False:
                from tracker.batch_pool import run_local

                run_local(jobs, workers, finished)
            else:
                from tracker.batch_pool import run_ray

                run_ray(jobs, finished, address=ray if isinstance(ray, str) and ray else None, num_cpus=workers)
        finally:
            manifest.close()
    return [rows[str(src)] for src, _ in plan]


# ---------------------------------------------------------------------- command line

def summary(rows: list[dict]) -> dict[str, int]:
    """Counts of a batch's rows: done (this run), skipped, no_face, failed."""
    counts = {"done": 0, "skipped": 0, "no_face": 0, "failed": 0}
    for row in rows:
        if row.get("skipped") and row["status"] == "done":
            counts["skipped"] += 1
        else:
            counts[row["status"]] += 1
    return counts


def progress_text(p: BatchProgress) -> str:
    """The progress line of a batch: files done of total, failed, frames, frames/s, time left."""
    left = "" if p.seconds_left is None else f"  ~{time.strftime('%H:%M:%S', time.gmtime(p.seconds_left))} left"
    failed = f" ({p.failed} not done)" if p.failed else ""
    return f"files {p.files_done}/{p.files_total}{failed}  {p.frames} frames  {p.frames_per_second:.1f} frames/s{left}"


def build_parser() -> argparse.ArgumentParser:
    from tracker import cli

    parser = cli.parser("python -m tracker.batch", __doc__)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video, image, folder or list of paths")
    parser.add_argument("-o", "--output-dir", type=Path, required=True, metavar="OUT_DIR",
                        help="output folder (created; outputs mirror the input tree)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes, one thread each (default: the cores); with --ray and no "
                             "address, the CPUs of the local Ray")
    parser.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                        help="run on Ray: the cluster at ADDRESS, or a local Ray without one")
    parser.add_argument("--landmarks", choices=LANDMARK_KINDS, help="also write each input's landmarks")
    parser.add_argument("--draw-landmarks", action="store_true", help="overlay landmarks, boxes and track ids")
    parser.add_argument("--force", action="store_true", help="redo inputs the manifest has as done")
    cli.add_look_arguments(parser)
    engine = cli.add_engine_arguments(parser, threads=False)  # one thread per worker
    engine.add_argument("--flip-average", action="store_true",
                        help="photos: also run each face mirrored and average (twice the model time)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tracker import cli

    return cli.run(build_parser(), _main, argv)


def _main(args: argparse.Namespace, console) -> int:
    """The batch of parsed options, reported on `console` (a `tracker.cli.Console`); -> exit status."""
    from tracker import cli

    line = cli.ProgressLine(console, interval=0.5)

    def progress(p: BatchProgress) -> None:
        line.update(lambda: progress_text(p), last=p.files_done == p.files_total)

    try:
        look = cli.look_from_args(args)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    try:
        rows = run(args.inputs, args.output_dir, workers=args.workers, ray=args.ray, look=look,
                   weights=args.weights, detector=args.detector, backend=args.backend,
                   max_faces=args.max_faces, flip_average=args.flip_average,
                   draw_landmarks=args.draw_landmarks, landmarks=args.landmarks, force=args.force,
                   progress=progress)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (`cli.Terminated`): finished files are kept
        console.say(f"stopped; finished files are in {args.output_dir / MANIFEST}, a rerun does the rest")
        return 128 + exc.signum if isinstance(exc, cli.Terminated) else cli.EXIT_INTERRUPTED
    for row in rows:
        if row["status"] != "done":
            console.say(f"{row['status']}: {row['error']}")
    counts = summary(rows)
    console.say(f"{len(rows)} inputs: {counts['done']} done, {counts['skipped']} skipped (done before), "
                f"{counts['no_face']} without a face, {counts['failed']} failed; manifest "
                f"{args.output_dir / MANIFEST}")
    return 0 if counts["no_face"] == counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
