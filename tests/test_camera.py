"""The live try-on: key handling (pure), the live loop on a file played as a camera, the CLI's errors.

Runs headless everywhere; the one test that opens a real window starts its own
Xvfb and is skipped where Xvfb is not installed.
"""
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fakes import (BlobDetector, CountingCapture, ManualClock, TemplateLandmarker, draw_scene,
                         face_points, wait_for)
from tracker import camera as camera_cli
from tracker import live, sources
from tracker.camera_keys import ESC, LIP_COLORS, ViewState, handle_key
from tracker.errors import InputError
from tracker.live import FrameGrabber, RecordSink, TryOn, run_live
from tracker.makeup import available_looks, load_look
from tracker.makeup import makeup_renderer
from tracker.sources import FrameSource, open_source
from tracker.tracking import Tracker

ROOT = Path(__file__).resolve().parents[1]
CLIP_FRAMES, CLIP_SIZE, CLIP_FPS = 15, (320, 240), 30.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """15 frames, 320x240 at 30 frames/s: one synthetic face (a white blob) drifting right."""
    path = tmp_path_factory.mktemp("live") / "face.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, CLIP_SIZE)
    for i in range(CLIP_FRAMES):
        writer.write(draw_scene([face_points(140 + 2 * i, 120, 110)], CLIP_SIZE))
    writer.release()
    return path


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    """A fake landmark model (tracker.landmarks.Landmarker: the template landmarker); returns a weights path that exists."""
    import tracker.landmarks

    monkeypatch.setattr(tracker.landmarks, "Landmarker", lambda path, **engine: TemplateLandmarker())
    weights = tmp_path / "fake.h5"
    weights.write_bytes(b"not used")
    return weights


def make_tracker():
    return Tracker(TemplateLandmarker(), BlobDetector())


def read_all(path):
    with open_source(Path(path)) as source:
        return source.size, sum(1 for _ in source)


# ----------------------------------------------------------------------------- keys

LOOKS = ("bold", "evening", "natural")


def test_keys_switch_looks_and_makeup():
    s = ViewState(looks=LOOKS, look=2)
    assert handle_key(s, ord("1")).look == 0 and handle_key(s, ord("3")).look == 2
    assert handle_key(s, ord("4")) is s  # no fourth look: ignored
    off = handle_key(s, ord("m"))
    assert not off.makeup and handle_key(off, ord("m")).makeup
    assert handle_key(off, ord("2")).makeup  # choosing a look turns makeup back on
    assert s.look_name == "natural" and off.describe() == "no makeup"


def test_keys_cycle_lip_colours_and_intensity():
    s = ViewState(looks=LOOKS)
    assert s.lip_color is None
    s1 = handle_key(s, ord("c"))
    assert s1.lip == 1 and s1.lip_color == LIP_COLORS[0][1] and "lips red" in s1.describe()
    back = handle_key(s, ord("C"))
    assert back.lip == len(LIP_COLORS)  # wraps around backwards
    for _ in range(len(LIP_COLORS)):
        s1 = handle_key(s1, ord("c"))
    assert s1.lip == 0  # full cycle: the look's own colour again
    down = handle_key(s, ord("-"))
    assert down.intensity == pytest.approx(0.9)
    assert handle_key(s, ord("+")).intensity == 1.0  # clamped
    low = ViewState(looks=LOOKS, intensity=0.05)
    assert handle_key(low, ord("_")).intensity == 0.0
    assert handle_key(down, ord("=")).intensity == 1.0


def test_keys_toggles_snapshot_quit_and_unknown():
    s = ViewState(looks=LOOKS)
    assert handle_key(s, ord("l")).landmarks and handle_key(s, ord("b")).split
    assert handle_key(s, ord("h")).help
    assert handle_key(s, ord("s")).snapshot
    assert handle_key(s, ord("q")).quit and handle_key(s, ESC).quit
    for key in (-1, ord("z"), ord("0"), 0x10FF00 + ord("?")):
        assert handle_key(s, key) is s
    assert s == ViewState(looks=LOOKS)  # frozen: handle_key never mutates
    with pytest.raises(ValueError):
        ViewState(looks=LOOKS, look=3)


# ----------------------------------------------------------------------- live loop

def test_live_loop_headless_records_input_size(clip, tmp_path):
    out = tmp_path / "rec.mp4"
    with open_source(clip) as source, RecordSink(out, source.fps, source.size) as sink:
        stats = run_live(source, make_tracker(), makeup_renderer(load_look("natural")), sink, max_frames=10)
        written = sink.frames_written
    assert stats.ended_by == "frame limit" and stats.frames_offered == 10
    assert stats.frames_processed + stats.frames_dropped == stats.frames_offered
    assert stats.frames_processed >= 1 and stats.frames_with_faces >= 1
    assert stats.latency_ms.shape == (stats.frames_processed,) and (stats.latency_ms > 0).all()
    # dropped frames are filled with the frame on screen: the recording keeps the timeline
    assert written == 10 and read_all(out) == (CLIP_SIZE, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.mp4"]


PERIOD = 1 / 32  # a frame rate whose period and its multiples are exact in binary floating point


def paced_source(n):
    """n synthetic frames at 32 frames/s, played like a camera (paced); -> (source, its capture)."""
    capture = CountingCapture(n)
    return FrameSource(capture, "synthetic", fps=1 / PERIOD, kind=sources.SYNTHETIC), capture


def caught_up(capture, clock, n):
    """True once the capture thread has offered every frame due by `clock` (it has read the
    next one, or read past the end), so the loop's next take sees the newest frame."""
    due = int(clock.now() / PERIOD)
    return capture.reads >= min(due + 2, n + 1)


def test_live_loop_drops_stale_frames_instead_of_queueing():
    """Processing takes 3 frame periods: the loop shows every third frame, each as soon as it
    is captured plus the processing time; a queue would show all 16 with a growing delay."""
    n = 16
    clock = ManualClock()
    source, capture = paced_source(n)
    tracker = make_tracker()
    process = tracker.process
    shown = []

    def slow(frame, timestamp=None):
        shown.append(int(frame[0, 0, 0]))
        clock.advance(3 * PERIOD)
        wait_for(lambda: caught_up(capture, clock, n), "the capture thread to offer the due frames")
        return process(frame, timestamp)

    tracker.process = slow
    stats = run_live(source, tracker, clock=clock, status=False)
    assert stats.ended_by == "end of source" and stats.frames_offered == n
    assert shown == [0, 3, 6, 9, 12, 15]  # the newest frame each time, in order
    assert stats.frames_processed == 6 and stats.frames_dropped == 10
    # each frame shown 3 periods after its capture (the processing), never later
    np.testing.assert_array_equal(stats.latency_ms, np.full(6, 3 * PERIOD * 1e3))


def test_file_is_paced_like_a_camera():
    """Frame i is offered at i periods after the first, not before, and none is dropped
    when each is taken in time."""
    n = 12
    clock = ManualClock()
    source, capture = paced_source(n)
    grabber = FrameGrabber(source, pace=True, clock=clock).start()
    stamps = []
    try:
        for i in range(n):
            wait_for(lambda: caught_up(capture, clock, n), f"frame {i} to be offered")
            frame = grabber.take(timeout=0)
            assert frame is not None and frame.index == i and int(frame.image[0, 0, 0]) == i
            assert grabber.take(timeout=0) is None  # frame i + 1 is read but not due yet
            stamps.append(frame.captured_at)
            clock.advance(PERIOD)
        wait_for(lambda: grabber.finished, "the end of the source")
    finally:
        grabber.stop()
    assert grabber.offered == n and grabber.dropped == 0
    assert stamps == [i * PERIOD for i in range(n)]


class ScriptedSink:
    """A sink that 'presses' keys on given frames (by count of frames shown) and keeps the frames."""

    def __init__(self, keys, stop=None, stop_after=None):
        self.keys, self.frames, self.stop, self.stop_after = keys, [], stop, stop_after

    def show(self, frame, info):
        self.frames.append(frame)
        if self.stop is not None and len(self.frames) == self.stop_after:
            self.stop.set()
        return self.keys.get(len(self.frames), -1)

    def poll(self):
        return -1


def test_tryon_keys_drive_the_loop(clip, tmp_path):
    saved = []
    tryon = TryOn(ViewState(looks=available_looks(), look=available_looks().index("natural")),
                  snapshot_dir=tmp_path, on_snapshot=saved.append)
    sink = ScriptedSink({1: ord("c"), 2: ord("b"), 3: ord("s"), 4: ord("q")})
    with open_source(clip) as source:
        stats = run_live(source, make_tracker(), tryon, sink, on_key=tryon.on_key, caption=tryon.caption)
    assert stats.ended_by == "quit" and stats.frames_processed == 4
    assert stats.frames_processed + stats.frames_dropped == stats.frames_offered
    assert tryon.state.lip == 1 and tryon.state.split and not tryon.state.snapshot
    assert tryon.look().lips.color == LIP_COLORS[0][1]
    assert len(saved) == 1 and saved[0].parent == tmp_path and saved[0].name.startswith("tryon-")
    snap = cv2.imread(str(saved[0]))
    assert snap.shape == (CLIP_SIZE[1], CLIP_SIZE[0], 3)
    shown = sink.frames[2]  # the snapshot is that frame without the status line at the top
    assert np.array_equal(snap[60:], shown[60:]) and not np.array_equal(snap[:20], shown[:20])


def test_tryon_render_never_mutates_and_splits(clip):
    with open_source(clip) as source:
        frame = source.read()
    faces = make_tracker().process(frame)
    original = frame.copy()
    tryon = TryOn(ViewState(looks=LOOKS, look=0, split=True))
    out = tryon(frame, faces)
    assert np.array_equal(frame, original) and out is not frame
    mid = frame.shape[1] // 2
    assert np.array_equal(out[:200, : mid - 1], frame[:200, : mid - 1])  # left half: before
    assert not np.array_equal(out[:, mid + 1:], frame[:, mid + 1:])  # right half: made up
    tryon.state = ViewState(looks=LOOKS, makeup=False)
    assert tryon.look() is None and np.array_equal(tryon(frame, faces), frame)


def test_stop_event_ends_the_session(clip):
    stop = threading.Event()
    with open_source(clip) as source:
        stats = run_live(source, make_tracker(), None, ScriptedSink({}, stop, 3), stop=stop, status=False)
    assert stats.ended_by == "stopped" and stats.frames_processed == 3
    assert stats.frames_processed + stats.frames_dropped == stats.frames_offered


def test_source_error_surfaces_after_capture_stops():
    class Shrinking:
        i = 0

        def isOpened(self):
            return True

        def read(self):
            self.i += 1
            side = 32 if self.i < 4 else 16
            return True, np.zeros((side, side, 3), np.uint8)

    source = FrameSource(Shrinking(), "shrinking")
    with pytest.raises(InputError, match="shrinking: frame 3 is 16x16"):
        run_live(source, make_tracker(), pace=False)


# ------------------------------------------------------------------------------ CLI

def test_cli_headless_record(clip, tmp_path, capsys, fake_model):
    out = tmp_path / "live.mp4"
    assert camera_cli.main(["--source", str(clip), "--no-window", "--record", str(out), "--frames", "8",
                            "--lip-color", "#b3001b", "--weights", str(fake_model)]) == 0
    err = capsys.readouterr().err
    assert "shown" in err and f"wrote {out}" in err and "Traceback" not in err
    assert read_all(out) == (CLIP_SIZE, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.h5", "live.mp4"]


def _only_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY only decides on Linux/X11")
def test_cli_no_display(clip, capsys, monkeypatch, fake_model):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert camera_cli.main(["--source", str(clip), "--weights", str(fake_model)]) == 2
    _only_error(capsys, "no display", "--no-window --record out.mp4")


def test_cli_no_camera(capsys, monkeypatch, fake_model):
    monkeypatch.setattr(sources, "camera_devices", lambda: [])
    assert camera_cli.main(["--no-window", "--weights", str(fake_model)]) == 2
    _only_error(capsys, "no camera found", "python -m tracker.video", "--source FILE")


def test_cli_camera_cannot_be_opened(capsys, monkeypatch, fake_model):
    monkeypatch.setattr(sources, "camera_devices", lambda: ["/dev/video0"])

    class Closed:
        def isOpened(self):
            return False

        def release(self):
            pass

    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda index: Closed())
    assert camera_cli.main(["--device", "1", "--no-window", "--weights", str(fake_model)]) == 2
    _only_error(capsys, "cannot open camera 1", "python -m tracker.video")


@pytest.mark.parametrize("args, needle", [
    (["--record", "out.xyz"], "out.xyz"),
    (["--frames", "0"], "--frames"),
    (["--look", "clown"], "natural"),
    (["--size", "big"], "WIDTHxHEIGHT"),
    (["--weights", "missing.h5"], "missing.h5"),
    (["--source", "nope.mp4"], "nope.mp4"),
])
def test_cli_bad_arguments(clip, tmp_path, capsys, fake_model, args, needle):
    args = [str(tmp_path / a) if a.endswith((".xyz", ".h5", "nope.mp4")) else a for a in args]
    base = ["--no-window", "--record", str(tmp_path / "out.mp4"), "--weights", str(fake_model)]
    if "--source" not in args:
        base = ["--source", str(clip), *base]
    assert camera_cli.main([*base, *args]) == 2
    _only_error(capsys, needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake.h5"]


def test_window_problem_without_display(monkeypatch):
    if not sys.platform.startswith("linux"):
        pytest.skip("DISPLAY only decides on Linux/X11")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert "DISPLAY" in live.window_problem()


def test_bench_live_needs_weights(tmp_path):
    # run as it is run by hand: the tests import no benchmark module
    run = subprocess.run([sys.executable, "-m", "tools.bench.live", "--weights", str(tmp_path / "none.h5")],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "none.h5" in run.stderr


# ---------------------------------------------------------------------- real window

def _free_display() -> int:
    for n in range(90, 200):
        if not (Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists()):
            return n
    raise RuntimeError("no free X display number in 90..199")


@pytest.fixture
def xvfb():
    """A private Xvfb display (started here, stopped after the test); skips where Xvfb is missing."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the virtual-display test runs on Linux (Xvfb)")
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip("Xvfb is not installed, so no virtual display for the real-window test "
                    "(.ci/run installs it; apt-get install xvfb)")
    n = _free_display()
    proc = subprocess.Popen([binary, f":{n}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"Xvfb did not start on display :{n}")
            time.sleep(0.05)
        yield f":{n}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_WINDOW_RUN = """
import sys
import tracker.landmarks
from tests.fakes import TemplateLandmarker
tracker.landmarks.Landmarker = lambda path, **engine: TemplateLandmarker()
from tracker import camera
sys.exit(camera.main(sys.argv[1:]))
"""


def test_real_window_under_xvfb(xvfb, clip, tmp_path):
    # A child process: the Qt backend may end the process that owns the window when the
    # display goes away, which must not be pytest.
    weights = tmp_path / "fake.h5"
    weights.write_bytes(b"not used")
    env = {**os.environ, "DISPLAY": xvfb, "PYTHONPATH": str(ROOT)}
    env.pop("WAYLAND_DISPLAY", None)
    out = tmp_path / "shown.mp4"
    run = subprocess.run([sys.executable, "-c", _WINDOW_RUN, "--source", str(clip), "--frames", "6",
                          "--record", str(out), "--draw-landmarks", "--weights", str(weights)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "q or Esc" in run.stderr and "shown" in run.stderr
    assert read_all(out) == (CLIP_SIZE, 6)
