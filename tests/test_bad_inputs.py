"""The bad-input table: every way a user can hand the CLIs something wrong, and what they promise.

Each case runs a CLI (`tracker.video`, `tracker.image`, `tracker.camera`) in a folder holding
every kind of input, good and bad, and checks the promise of the README's "What happens on bad
input": the exit status (2), exactly one message line on stderr that names the input (the
file, option or setting at fault), no traceback, no file left behind (hidden temporary files
included) and every input unchanged. stderr is captured at the file-descriptor level, so
FFmpeg's or OpenCV's own lines would count as extra lines.

Most cases run in-process with a stand-in landmark model (the bad input is found before the
model would run); the cases about the weights load the real loader. The read-only file system
(a real read-only mount) and SIGTERM / SIGHUP (sent to a child process mid-run) run real
`python -m tracker.*` processes.
"""
import hashlib
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fakes import TemplateLandmarker
from tracker import camera as camera_cli
from tracker import cli
from tracker import image as image_cli
from tracker import video as video_cli
from tracker.sources import open_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tracker" / "data" / "sample.mp4"
CLIS = {"video": video_cli, "image": image_cli, "camera": camera_cli}
CLIP_FRAMES = 6


# ------------------------------------------------------------------------------ inputs

def _faststart(data: bytes) -> bytes:
    """An MP4 with its index (moov) moved before the media data (mdat), chunk offsets shifted:
    what streaming encoders write. Cut in half it still opens and announces every frame."""
    def boxes(buf, start, end):
        i = start
        while i < end:
            size, kind = struct.unpack(">I4s", buf[i:i + 8])
            yield kind, i, size
            i += size

    def shift(moov, start, end, delta):
        for kind, i, size in boxes(moov, start, end):
            if kind in (b"trak", b"mdia", b"minf", b"stbl"):
                shift(moov, i + 8, i + size, delta)
            elif kind == b"stco":
                (n,) = struct.unpack(">I", moov[i + 12:i + 16])
                for k in range(n):
                    at = i + 16 + 4 * k
                    moov[at:at + 4] = struct.pack(">I", struct.unpack(">I", moov[at:at + 4])[0] + delta)

    top = list(boxes(data, 0, len(data)))
    (_, at, size), = [b for b in top if b[0] == b"moov"]
    moov = bytearray(data[at:at + size])
    shift(moov, 8, len(moov), len(moov))
    mdat = next(i for kind, i, _ in top if kind == b"mdat")
    return data[:mdat] + bytes(moov) + b"".join(data[i:i + s] for k, i, s in top if k != b"moov" and i >= mdat)


@pytest.fixture(scope="module")
def materials(tmp_path_factory):
    """Bytes of the inputs every case folder holds, made once."""
    tmp = tmp_path_factory.mktemp("materials")
    clip = tmp / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    with open_file(SAMPLE) as reader:
        for i, frame in enumerate(reader):
            if i == 0:
                first = frame
            if i == CLIP_FRAMES:
                break
            writer.write(frame)
    writer.release()
    clip_bytes = clip.read_bytes()
    ok, png = cv2.imencode(".png", first)
    assert ok
    rgba = np.dstack([first, np.full(first.shape[:2], 200, np.uint8)])
    deep = first.astype(np.uint16) * 257
    import h5py

    wrong = tmp / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f.attrs["format"] = "something-else"
        f["x"] = np.zeros(3, np.float32)
    return {
        "clip.mp4": clip_bytes,
        "face.png": png.tobytes(),
        "rgba.png": cv2.imencode(".png", rgba)[1].tobytes(),
        "deep.png": cv2.imencode(".png", deep)[1].tobytes(),
        "empty.mp4": b"",
        "empty.png": b"",
        "empty.h5": b"",
        "junk.mp4": np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes(),
        "junk.png": np.random.default_rng(1).integers(0, 256, 5000, np.uint8).tobytes(),
        "text.mp4": b"this is not a video\n" * 100,
        "text.jpg": b"this is not an image\n" * 100,
        "text.h5": b"these are not weights\n" * 100,
        "notes.txt": b"some notes\n",
        "header.mp4": b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 12 + b"garbage" * 500,
        "cut.mp4": clip_bytes[: len(clip_bytes) // 2],  # index at the end: lost
        "cut.png": png.tobytes()[: len(png) // 3],
        "half.mp4": (lambda fs: fs[: len(fs) // 2])(_faststart(SAMPLE.read_bytes())),
        "wrong.h5": wrong.read_bytes(),
        "fake.h5": b"stand-in model: never read",
    }


@pytest.fixture
def work(tmp_path, materials, monkeypatch):
    """A folder with every input (plus a sub-folder, a symbolic and a hard link to the clip),
    made the current folder, so cases name inputs as a user types them."""
    folder = tmp_path / "work"
    folder.mkdir()
    for name, data in materials.items():
        (folder / name).write_bytes(data)
    (folder / "folder").mkdir()
    (folder / "link.mp4").symlink_to("clip.mp4")
    os.link(folder / "clip.mp4", folder / "hard.mp4")
    (folder / "face-link.png").symlink_to("face.png")
    monkeypatch.chdir(folder)
    return folder


def snapshot(folder: Path) -> dict:
    """name -> content hash (or "dir" / link target) of everything in a folder, hidden files too."""
    out = {}
    for p in sorted(folder.rglob("*")):
        key = str(p.relative_to(folder))
        if p.is_symlink():
            out[key] = "-> " + os.readlink(p)
        elif p.is_dir():
            out[key] = "dir"
        else:
            out[key] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


def message_lines(stderr: str) -> list[str]:
    """What stays on screen of stderr: each line's text after its last carriage return
    (a progress line is rewritten in place), blank lines left out."""
    return [line.rsplit("\r", 1)[-1].strip() for line in stderr.split("\n") if line.rsplit("\r", 1)[-1].strip()]


def assert_one_message(stderr: str, needle: str, besides: str | None = None) -> str:
    """The one message line of `stderr`, checked to name `needle`; `besides`: the start of a
    line a good run prints before (tracker.camera's "live from ..."), not counted."""
    lines = [line for line in message_lines(stderr) if besides is None or not line.startswith(besides)]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one message line, got {len(lines)}: {stderr!r}"
    assert needle in lines[0], f"the message does not name {needle!r}: {lines[0]}"
    assert ".partial" not in lines[0], f"the message shows a temporary name: {lines[0]}"
    return lines[0]


# ------------------------------------------------------------------------------- table

@dataclass(frozen=True)
class Case:
    """One bad input: the CLI, its arguments, the text its one message must contain (the input
    at fault), the exit status; `real_weights`: run the real weights loader (no stand-in)."""
    cli: str
    args: tuple
    needle: str
    status: int = 2
    real_weights: bool = False
    env: tuple = ()

    @property
    def id(self) -> str:
        return f"{self.cli}:{' '.join(self.args)}" + "".join(f" {k}={v}" for k, v in self.env)


def V(*args, needle, **kw):
    return Case("video", args, needle, **kw)


def I(*args, needle, **kw):
    return Case("image", args, needle, **kw)


def C(*args, needle, **kw):
    return Case("camera", (*args, "--no-window"), needle, **kw)  # headless: the input is what is checked


CASES = [
    # --- missing, empty, junk, text, truncated inputs
    V("missing.mp4", needle="missing.mp4"),
    V("empty.mp4", needle="empty.mp4"),
    V("junk.mp4", needle="junk.mp4"),                      # FFmpeg's own complaint must not leak
    V("text.mp4", needle="text.mp4"),
    V("header.mp4", needle="header.mp4"),
    V("cut.mp4", needle="cut.mp4"),                        # truncated: its index is lost
    V("notes.txt", needle="notes.txt"),
    V("folder", needle="folder"),                          # a folder is not "not found"
    V("face.png", needle="tracker.image"),                 # a still image: pointed to tracker.image
    V("half.mp4", "--strict", needle="half.mp4"),          # ended early, --strict
    V("7", needle="--device 7"),                           # digits: not a file, maybe a camera
    V("rtsp://127.0.0.1:9/none", needle="rtsp://127.0.0.1:9/none"),
    I("missing.jpg", needle="missing.jpg"),
    I("empty.png", needle="empty.png"),
    I("junk.png", needle="junk.png"),
    I("text.jpg", needle="text.jpg"),
    I("cut.png", needle="cut.png"),
    I("clip.mp4", needle="clip.mp4"),
    I("folder", needle="folder"),
    I("deep.png", "-o", "deep-out.png", needle="deep.png"),        # 16-bit: refused, not reduced
    I("rgba.png", "-o", "rgba-out.jpg", needle="rgba.png"),        # alpha cannot go into a JPEG
    C("--source", "missing.mp4", needle="missing.mp4"),
    C("--source", "junk.mp4", needle="junk.mp4"),
    C("--source", "empty.mp4", needle="empty.mp4"),
    C("--source", "folder", needle="folder"),
    C("--source", "face.png", needle="face.png"),
    # --- bad weights (the real loader)
    V("clip.mp4", "--weights", "missing.h5", needle="missing.h5", real_weights=True),
    V("clip.mp4", "--weights", "empty.h5", needle="empty.h5", real_weights=True),
    V("clip.mp4", "--weights", "text.h5", needle="text.h5", real_weights=True),
    V("clip.mp4", "--weights", "wrong.h5", needle="wrong.h5", real_weights=True),
    V("clip.mp4", "--weights", "folder", needle="folder", real_weights=True),
    V("clip.mp4", "--weights", "nosuch", needle="nosuch", real_weights=True),
    I("face.png", "--weights", "text.h5", needle="text.h5", real_weights=True),
    I("face.png", "--weights", "nosuch", needle="nosuch", real_weights=True),
    C("--source", "clip.mp4", "--weights", "wrong.h5", needle="wrong.h5", real_weights=True),
    # --- bad colours, intensities, face counts, looks and other options
    V("clip.mp4", "--lip-color", "#12345", needle="#12345"),
    V("clip.mp4", "--lip-color", "crimson?", needle="crimson?"),
    V("clip.mp4", "--lip-color", "#gggggg", needle="#gggggg"),
    V("clip.mp4", "--eyeshadow-color", "300,0,0", needle="300,0,0"),
    V("clip.mp4", "--blush-color", "", needle="--blush-color"),
    I("face.png", "--lip-color", "#12", needle="#12"),
    C("--source", "clip.mp4", "--lip-color", "blue!", needle="blue!"),
    V("clip.mp4", "--intensity", "1.5", needle="1.5"),
    V("clip.mp4", "--intensity", "-0.1", needle="-0.1"),
    V("clip.mp4", "--intensity", "nan", needle="nan"),
    V("clip.mp4", "--intensity", "lots", needle="lots"),
    I("face.png", "--intensity", "2", needle="'2'"),
    V("clip.mp4", "--max-faces", "0", needle="--max-faces"),
    V("clip.mp4", "--max-faces", "-3", needle="--max-faces"),
    V("clip.mp4", "--max-faces", "two", needle="two"),
    I("face.png", "--max-faces", "0", needle="--max-faces"),
    C("--source", "clip.mp4", "--max-faces", "0", needle="--max-faces"),
    V("clip.mp4", "--look", "clown", needle="clown"),
    I("face.png", "--look", "clown", needle="clown"),
    C("--source", "clip.mp4", "--look", "clown", needle="clown"),
    V("clip.mp4", "--lip-finish", "satin", needle="satin"),
    V("clip.mp4", "--detector", "nosuch", needle="nosuch"),
    V("clip.mp4", "--backend", "cuda", needle="cuda"),
    V("clip.mp4", needle="NNLITE_BACKEND", env=(("NNLITE_BACKEND", "cuda"),)),
    I("face.png", needle="NNLITE_BACKEND", env=(("NNLITE_BACKEND", "cuda"),)),
    C("--source", "clip.mp4", needle="NNLITE_BACKEND", env=(("NNLITE_BACKEND", "cuda"),)),
    V("clip.mp4", "--threads", "0", needle="--threads"),
    V("clip.mp4", "--bogus", needle="--bogus"),
    V("clip.mp4", "extra.mp4", needle="extra.mp4"),
    I(needle="input"),                                     # the image is required
    C("--size", "10x10", needle="10x10"),
    C("--size", "big", needle="big"),
    C("--frames", "0", needle="--frames"),
    C("--device", "1", "--source", "clip.mp4", needle="--source"),
    # --- outputs: format, folder, not writable, output = input
    V("clip.mp4", "-o", "out.xyz", needle="out.xyz"),
    V("clip.mp4", "-o", "nofolder/out.mp4", needle="nofolder"),
    V("clip.mp4", "-o", "folder", needle="folder"),
    V("clip.mp4", "-o", "/proc/out.mp4", needle="/proc/out.mp4"),
    V("clip.mp4", "--landmarks", "lm.txt", needle="lm.txt"),
    V("clip.mp4", "--landmarks", "nofolder/lm.json", needle="nofolder"),
    V("clip.mp4", "--landmarks", "/proc/lm.json", needle="/proc/lm.json"),  # not the temporary name
    V("clip.mp4", "--landmarks", "folder", needle="folder"),
    I("face.png", "-o", "out.gif", needle="out.gif"),
    I("face.png", "-o", "/proc/out.png", needle="/proc/out.png"),          # not "unsupported extension"
    I("face.png", "-o", "nofolder/out.png", needle="nofolder"),
    I("face.png", "--landmarks", "/proc/lm.csv", needle="/proc/lm.csv"),
    I("face.png", "--landmarks", "lm.xml", needle="lm.xml"),
    C("--source", "clip.mp4", "--record", "out.gif", needle="out.gif"),
    C("--source", "clip.mp4", "--record", "nofolder/out.mp4", needle="nofolder"),
    C("--source", "clip.mp4", "--record", "/proc/out.mp4", needle="/proc/out.mp4"),
    V("clip.mp4", "-o", "clip.mp4", needle="clip.mp4"),
    V("clip.mp4", "-o", "../work/clip.mp4", needle="clip.mp4"),
    V("clip.mp4", "-o", "link.mp4", needle="link.mp4"),
    V("clip.mp4", "-o", "hard.mp4", needle="hard.mp4"),
    V("clip.mp4", "-o", "out.mp4", "--landmarks", "out.mp4", needle="out.mp4"),  # both outputs one file
    I("face.png", "-o", "face.png", needle="face.png"),
    I("face.png", "-o", "face-link.png", needle="face-link.png"),
    I("face.png", "-o", "./face.png", needle="face.png"),
    C("--source", "clip.mp4", "--record", "clip.mp4", needle="clip.mp4"),   # was data loss
    C("--source", "clip.mp4", "--record", "link.mp4", needle="link.mp4"),
    C("--source", "clip.mp4", "--record", "hard.mp4", needle="hard.mp4"),
    C("--source", "link.mp4", "--record", "../work/clip.mp4", needle="clip.mp4"),
]


@pytest.fixture
def stand_in_model(monkeypatch):
    """A stand-in landmark model (tracker.landmarks.Landmarker: the template landmarker), as the CLI tests use."""
    import tracker.landmarks

    monkeypatch.setattr(tracker.landmarks, "Landmarker", lambda path, **engine: TemplateLandmarker())


def test_the_table_covers_every_cli_and_kind():
    assert len(CASES) >= 88 and len({c.id for c in CASES}) == len(CASES)
    assert {c.cli for c in CASES} == set(CLIS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case, work, capfd, request, monkeypatch):
    if not case.real_weights:
        request.getfixturevalue("stand_in_model")
    for key, value in case.env:
        monkeypatch.setenv(key, value)
    args = list(case.args) + ([] if case.real_weights else ["--weights", "fake.h5"])
    before = snapshot(work)
    status = CLIS[case.cli].main(args)
    out, err = capfd.readouterr()
    assert status == case.status, err
    assert out == ""
    assert_one_message(err, case.needle)
    assert snapshot(work) == before, "a file was left behind or an input changed"


# --------------------------------------------------------------------- behaviour of good runs

def test_truncated_video_is_reported(work, capfd, stand_in_model):
    """Without --strict, an input that ends early is processed as far as it goes, and the
    summary line and the landmarks file say so."""
    assert video_cli.main(["half.mp4", "-o", "o.mp4", "--landmarks", "lm.json", "--weights", "fake.h5"]) == 0
    line = assert_one_message(capfd.readouterr().err, "ended early")
    import json

    data = json.loads((work / "lm.json").read_text())
    read = len(data["frames"])
    assert f"{read} of the 120 frames" in line and 0 < read < 120
    assert data["ended_early"] is True and data["frames_read"] == read and data["frames_announced"] == 120
    assert video_cli.main(["half.mp4", "-o", "o2.mp4", "--landmarks", "lm.csv", "--weights", "fake.h5"]) == 0
    rows = (work / "lm.csv").read_text().splitlines()
    assert rows[-1] == f"# input ended early: {read} of 120 announced frames read"
    assert len(rows) == 1 + read + 1  # header, a row per frame read, the note


def test_complete_video_says_nothing_of_an_early_end(work, capfd, stand_in_model):
    assert video_cli.main(["clip.mp4", "-o", "o.mp4", "--landmarks", "lm.csv", "--weights", "fake.h5"]) == 0
    line = assert_one_message(capfd.readouterr().err, f"{CLIP_FRAMES} frames")
    assert "early" not in line and not (work / "lm.csv").read_text().splitlines()[-1].startswith("#")
    assert len((work / "lm.csv").read_text().splitlines()) == 1 + CLIP_FRAMES


def test_image_landmarks_named_and_alpha_kept(work, capfd, stand_in_model):
    assert image_cli.main(["rgba.png", "-o", "out.png", "--landmarks", "lm.json", "--weights", "fake.h5"]) == 0
    assert_one_message(capfd.readouterr().err, "wrote out.png and lm.json")
    out = cv2.imread(str(work / "out.png"), cv2.IMREAD_UNCHANGED)
    src = cv2.imread(str(work / "rgba.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == src.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 3], src[..., 3])  # the alpha channel as it was
    assert not np.array_equal(out[..., :3], src[..., :3])   # and the made-up colour channels


def test_speed_is_measured_after_the_kernels_are_loaded(work, capfd, stand_in_model, monkeypatch):
    """The first model call (where Numba compiles or loads its cache) happens before the timed run."""
    from tracker import pipeline

    calls = []
    original_run = TemplateLandmarker.run
    monkeypatch.setattr(TemplateLandmarker, "run",
                        lambda self, frame, crops: calls.append("model") or original_run(self, frame, crops))
    original = pipeline.process_video
    monkeypatch.setattr(pipeline, "process_video",
                        lambda *a, **k: calls.append("timed run") or original(*a, **k))
    assert video_cli.main(["clip.mp4", "-o", "o.mp4", "--weights", "fake.h5"]) == 0
    assert calls[:2] == ["model", "timed run"]


def test_kernel_cache_notice(tmp_path, monkeypatch):
    """Said once before the kernels load: compiling on a first run (naming the cache folder),
    or that nothing can be cached (naming NUMBA_CACHE_DIR); nothing with a warm cache or NumPy."""
    empty = tmp_path / "cache"
    empty.mkdir()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(empty))
    notice = cli.kernel_cache_notice("numba")
    assert "compiling" in notice and "first run" in notice and str(empty) in notice
    assert cli.kernel_cache_notice("numpy") is None
    import hashlib as _hashlib

    import nnlite.kernels

    folder = os.path.abspath(os.path.dirname(nnlite.kernels.__file__))
    entries = empty / f"kernels_{_hashlib.sha1(folder.encode()).hexdigest()}"
    entries.mkdir()
    (entries / "conv.conv2d-10.py311.nbi").write_bytes(b"index")  # what Numba leaves after a first run
    assert cli.kernel_cache_notice("numba") is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(blocker / "cache"))
    notice = cli.kernel_cache_notice("numba")
    assert "not writable" in notice and "NUMBA_CACHE_DIR" in notice and "every run" in notice
    monkeypatch.delenv("NUMBA_CACHE_DIR")  # what nnlite leaves when no folder is writable
    assert "NUMBA_CACHE_DIR" in cli.kernel_cache_notice("numba")


# ------------------------------------------------------------- real processes: ro mount, signals

def _child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("NNLITE_BACKEND", "PYTHONPATH")}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **extra)
    return env


def _read_only_runner(folder: Path):
    """A command prefix that runs a child with `folder` read-only for real, or None.

    As root, where chmod is ignored: a private mount namespace with a read-only tmpfs mounted
    over the folder (`unshare -m`; nothing outside the child sees it); as another user: the
    same in a user namespace (`unshare -rm`), else a folder without write permission.
    """
    unshare = shutil.which("unshare")
    script = 'mount -t tmpfs -o ro tmpfs "$0" && exec "$@"'
    if unshare is not None:
        for flags in (["-m"], ["-rm"]) if os.geteuid() == 0 else (["-rm"],):
            probe = subprocess.run([unshare, *flags, "sh", "-c", script, str(folder), "true"],
                                   capture_output=True, timeout=30)
            if probe.returncode == 0:
                return [unshare, *flags, "sh", "-c", script, str(folder)]
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    return None


READ_ONLY_CASES = [
    ("video", [str(SAMPLE), "-o", "{ro}/out.mp4"]),
    ("video", [str(SAMPLE), "-o", "{ok}/out.mp4", "--landmarks", "{ro}/lm.json"]),
    ("video", [str(SAMPLE), "-o", "{ok}/out.mp4", "--landmarks", "{ro}/lm.csv"]),
    ("image", ["{ok}/face.png", "-o", "{ro}/out.png"]),
    ("image", ["{ok}/face.png", "-o", "{ok}/out.png", "--landmarks", "{ro}/lm.json"]),
    ("camera", ["--source", str(SAMPLE), "--no-window", "--record", "{ro}/rec.mp4"]),
]


@pytest.mark.parametrize("name, args", READ_ONLY_CASES,
                         ids=[f"{n}:{' '.join(a)}".replace(str(SAMPLE), "SAMPLE") for n, a in READ_ONLY_CASES])
def test_read_only_file_system(tmp_path, materials, name, args):
    ro, ok = tmp_path / "ro", tmp_path / "ok"
    ro.mkdir()
    ok.mkdir()
    (ok / "face.png").write_bytes(materials["face.png"])
    runner = _read_only_runner(ro)
    if runner is None:
        pytest.skip("no way to make a read-only folder here (root without mount namespaces)")
    before = snapshot(tmp_path)
    args = [a.format(ro=ro, ok=ok) for a in args]
    proc = subprocess.run([*runner, sys.executable, "-m", f"tracker.{name}", *args], env=_child_env(),
                          capture_output=True, text=True, timeout=300)
    ro.chmod(0o755)
    assert proc.returncode == 2, proc.stderr
    line = assert_one_message(proc.stderr, str(ro))
    assert "read-only" in line or "permission" in line, line
    assert snapshot(tmp_path) == before


def test_writers_on_a_read_only_file_system(tmp_path):
    """The writers themselves (no CLI in front): OutputError naming the file, and clean-up that
    does not raise (unlinking on a read-only mount fails with EROFS even for a missing file)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    runner = _read_only_runner(ro)
    if runner is None:
        pytest.skip("no way to make a read-only folder here (root without mount namespaces)")
    code = f"""
import sys
from pathlib import Path
from tracker.errors import OutputError
from tracker.io import LandmarkWriter, VideoWriter, atomic_path, remove_quietly
ro = Path({str(ro)!r})
remove_quietly(ro / ".gone.partial.mp4")
for make in (lambda: VideoWriter(ro / "a.mp4", 30.0, (64, 48)), lambda: LandmarkWriter(ro / "a.json").__enter__(),
             lambda: atomic_path(ro / "a.png").__enter__()):
    try:
        make()
    except OutputError as exc:
        print(exc)
    else:
        sys.exit("no OutputError")
"""
    proc = subprocess.run([*runner, sys.executable, "-c", code], env=_child_env(), capture_output=True,
                          text=True, timeout=120)
    ro.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"cannot write {ro}/a.mp4", f"cannot write {ro}/a.json",
                                                      f"cannot write {ro}/a.png"]
    assert list(ro.iterdir()) == []


@pytest.mark.parametrize("name, args, needle", [("video", ["junk.mp4"], "junk.mp4"),
                                                ("image", ["cut.png"], "cut.png"),
                                                ("camera", ["--source", "junk.mp4", "--no-window"], "junk.mp4")])
def test_damaged_input_in_a_fresh_process(work, name, args, needle):
    """As a user runs it: FFmpeg and libpng, which complain on stderr themselves, stay quiet."""
    proc = subprocess.run([sys.executable, "-m", f"tracker.{name}", *args], cwd=work, env=_child_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stdout == ""
    assert_one_message(proc.stderr, needle)


def _start_and_signal(cmd, cwd, ready: str, signum: int, timeout: float = 300):
    """Run `cmd`, wait until its stderr shows `ready` (it is mid-run), send `signum`;
    -> (exit status, stderr, whether any .partial file existed while it ran)."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=_child_env(NNLITE_BACKEND="numpy"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen = bytearray()
    ready_event = threading.Event()

    def pump():
        while True:
            chunk = proc.stderr.read1(4096)
            if not chunk:
                return
            seen.extend(chunk)
            if ready.encode() in seen:
                ready_event.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        got_ready = ready_event.wait(timeout)
        partial = any(".partial" in p.name for p in Path(cwd).iterdir())
        assert got_ready, f"never saw {ready!r}: {seen.decode(errors='replace')[-2000:]}"
        proc.send_signal(signum)
        status = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(10)
    return status, seen.decode(errors="replace"), partial


SIGNAL_CASES = [
    ("video", signal.SIGTERM, ["-m", "tracker.video", str(SAMPLE), "-o", "out.mp4", "--landmarks", "lm.json",
                               "--no-makeup"], "frame "),
    ("video", signal.SIGHUP, ["-m", "tracker.video", str(SAMPLE), "-o", "out.mp4", "--landmarks", "lm.csv",
                              "--no-makeup"], "frame "),
    ("camera", signal.SIGTERM, ["-m", "tracker.camera", "--source", str(SAMPLE), "--no-window", "--record",
                                "rec.mp4", "--no-makeup"], "live from"),
]


@pytest.mark.parametrize("name, signum, args, ready", SIGNAL_CASES,
                         ids=[f"{n}-{signal.Signals(s).name}" for n, s, _, _ in SIGNAL_CASES])
def test_stop_signal_mid_run_leaves_nothing(tmp_path, name, signum, args, ready):
    status, stderr, partial = _start_and_signal([sys.executable, *args], tmp_path, ready, signum)
    assert status == 128 + signum, stderr
    assert partial, "the run was not mid-way (no temporary file yet) when the signal came"
    assert_one_message(stderr, f"stopped by {signal.Signals(signum).name}", besides="live from")
    assert list(tmp_path.iterdir()) == []  # no output, no hidden temporary file
