"""Frame sources: spec parsing, files, cameras and streams behind one reader, clear errors."""
from pathlib import Path

import numpy as np
import pytest

from tracker import sources
from tracker.errors import InputError
from tracker.sources import (CAMERA, FILE, STREAM, FrameSource, open_camera, open_source,
                             open_stream, parse_source)

SAMPLE = Path(__file__).resolve().parents[1] / "tracker" / "data" / "sample.mp4"


class FakeCapture:
    """cv2.VideoCapture stand-in: `n` frames of `size`, optionally never opened; records set() calls."""

    def __init__(self, n=3, size=(64, 48), opened=True, sizes=None):
        self.n, self.size, self.opened, self.i = n, size, opened, 0
        self.sizes = sizes
        self.props = {}
        self.released = False

    def isOpened(self):
        return self.opened

    def read(self):
        if self.i >= self.n:
            return False, None
        w, h = self.sizes[self.i] if self.sizes else self.size
        self.i += 1
        return True, np.full((h, w, 3), self.i, np.uint8)

    def get(self, prop):
        return 0.0

    def set(self, prop, value):
        self.props[prop] = value
        return True

    def release(self):
        self.released = True


@pytest.mark.parametrize("text, expected", [
    ("0", 0), ("12", 12), (" 1 ", 1),
    ("rtsp://cam.local/stream", "rtsp://cam.local/stream"),
    ("http://127.0.0.1:8080/video.mjpg", "http://127.0.0.1:8080/video.mjpg"),
    ("clip.mp4", Path("clip.mp4")), ("dir/0.mp4", Path("dir/0.mp4")),
    ("file:///tmp/a.mp4", Path("/tmp/a.mp4")),
    (3, 3), (Path("x.mp4"), Path("x.mp4")),
])
def test_parse_source(text, expected):
    got = parse_source(text)
    assert got == expected and type(got) is type(expected)


def test_file_source():
    with open_source(str(SAMPLE)) as source:
        assert isinstance(source, FrameSource) and source.kind == FILE and not source.is_live
        assert source.size == (640, 480) and source.fps == pytest.approx(30.0)
        first = source.read()
        assert first.shape == (480, 640, 3) and first.dtype == np.uint8
        assert sum(1 for _ in source) == 119 and source.read() is None


@pytest.mark.parametrize("make", ["missing", "empty", "folder", "text"])
def test_file_errors_name_the_path(tmp_path, make):
    path = tmp_path / "in.mp4"
    if make == "empty":
        path.write_bytes(b"")
    elif make == "folder":
        path.mkdir()
    elif make == "text":
        path.write_text("not a video\n" * 50)
    with pytest.raises(InputError, match="in.mp4"):
        open_source(path)


def test_reader_checks_every_frame():
    source = FrameSource(FakeCapture(3, sizes=[(64, 48), (64, 48), (32, 24)]), "fake")
    assert source.read().shape == (48, 64, 3) and source.read() is not None
    with pytest.raises(InputError, match="fake: frame 2 is 32x24, earlier frames 64x48"):
        source.read()
    with pytest.raises(InputError, match="has no readable frames"):
        FrameSource(FakeCapture(0), "none")
    with pytest.raises(ValueError, match="kind"):
        FrameSource(FakeCapture(1), "x", kind="tape")


def test_skip_buffered_drops_the_frame_read_at_open():
    source = FrameSource(FakeCapture(3), "cam", kind=CAMERA)
    assert source.is_live
    source.skip_buffered()
    assert source.read()[0, 0, 0] == 2


def test_no_camera(monkeypatch):
    monkeypatch.setattr(sources, "camera_devices", lambda: [])
    with pytest.raises(InputError, match="no camera found"):
        open_source(0)


def test_camera_that_cannot_be_opened(monkeypatch):
    monkeypatch.setattr(sources, "camera_devices", lambda: ["/dev/video0"])
    fake = FakeCapture(opened=False)
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda index: fake)
    with pytest.raises(InputError, match=r"cannot open camera 2 .*in use"):
        open_camera(2)
    assert fake.released
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda index: FakeCapture(0))
    with pytest.raises(InputError, match="camera 0 opened but gives no frames"):
        open_camera(0)


def test_camera_source(monkeypatch):
    monkeypatch.setattr(sources, "camera_devices", lambda: None)  # e.g. not Linux: cannot list
    fake = FakeCapture(5, size=(320, 240))
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda index: fake)
    with open_source("0", size=(320, 240)) as source:
        assert source.kind == CAMERA and source.is_live and source.name == "camera 0"
        assert source.size == (320, 240) and source.fps == sources.DEFAULT_FPS  # camera gave 0
        assert fake.props[sources.cv2.CAP_PROP_FRAME_WIDTH] == 320
        assert len(list(source)) == 5
    assert fake.released


def test_stream_source(monkeypatch):
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda url: FakeCapture(opened=False))
    with pytest.raises(InputError, match="rtsp://cam.invalid/live"):
        open_source("rtsp://cam.invalid/live")
    monkeypatch.setattr(sources.cv2, "VideoCapture", lambda url: FakeCapture(2))
    with open_stream("http://cam.invalid/v.mjpg") as source:
        assert source.kind == STREAM and source.is_live and len(list(source)) == 2
