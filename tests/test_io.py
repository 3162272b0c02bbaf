"""Video and file I/O: clear errors naming the path, reads checked, writes atomic."""
import json
from pathlib import Path

import numpy as np
import pytest

from tests.fakes import face_points
from tracker.errors import InputError, OutputError
from tracker.io import LandmarkWriter, VideoWriter, atomic_path
from tracker.sources import FrameSource, open_file
from tracker.types import Box, Face

SAMPLE = Path(__file__).resolve().parents[1] / "tracker" / "data" / "sample.mp4"


class SynthSource:
    """cv2.VideoCapture-like source: `n` frames of size (w, h), then read() fails."""

    def __init__(self, n, size=(64, 48)):
        self.n, self.size, self.i = n, size, 0

    def isOpened(self):
        return True

    def read(self):
        if self.i >= self.n:
            return False, None
        self.i += 1
        return True, np.full((self.size[1], self.size[0], 3), self.i, np.uint8)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(InputError, match="nope.mp4"):
        open_file(path)


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 50])
def test_not_a_video(tmp_path, content):
    path = tmp_path / "fake.mp4"
    path.write_bytes(content)
    with pytest.raises(InputError, match="fake.mp4"):
        open_file(path)


def test_folder_is_not_a_video(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path.name)):
        open_file(tmp_path)


def test_sample_clip_reads_back():
    with open_file(SAMPLE) as reader:
        assert reader.size == (640, 480) and reader.fps == pytest.approx(30.0)
        first = next(iter(reader))
        assert first.shape == (480, 640, 3) and first.dtype == np.uint8


def test_synthetic_source_and_zero_frames():
    reader = FrameSource(SynthSource(3), "synth", fps=25)
    frames = list(reader)
    assert [f[0, 0, 0] for f in frames] == [1, 2, 3] and reader.frames_read == 3
    with pytest.raises(InputError, match="synth0 has no readable frames"):
        FrameSource(SynthSource(0), "synth0")


def test_video_writer_round_trip(tmp_path):
    dst = tmp_path / "out.mp4"
    with VideoWriter(dst, 25.0, (64, 48)) as writer:
        for frame in FrameSource(SynthSource(5), "synth"):
            writer.write(frame)
    assert list(tmp_path.iterdir()) == [dst]
    with open_file(dst) as reader:
        assert reader.size == (64, 48) and reader.fps == pytest.approx(25.0)
        assert len(list(reader)) == 5


def test_video_writer_leaves_nothing_on_error(tmp_path):
    dst = tmp_path / "out.mp4"
    dst_old = tmp_path / "keep.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(dst, 25.0, (64, 48)) as writer:
            writer.write(np.zeros((48, 64, 3), np.uint8))
            raise RuntimeError("boom")
    with pytest.raises(ValueError, match="expected uint8"):
        with VideoWriter(dst_old, 25.0, (64, 48)) as writer:
            writer.write(np.zeros((10, 10, 3), np.uint8))  # wrong size: refused, not dropped
    assert list(tmp_path.iterdir()) == []


def test_video_writer_bad_destination(tmp_path):
    with pytest.raises(OutputError, match="missing"):
        VideoWriter(tmp_path / "missing" / "out.mp4", 30.0, (64, 48))
    with pytest.raises(OutputError, match="out.xyz"):
        VideoWriter(tmp_path / "out.xyz", 30.0, (64, 48))
    with pytest.raises(OutputError, match="no video written"):
        with VideoWriter(tmp_path / "empty.mp4", 30.0, (64, 48)):
            pass
    assert list(tmp_path.iterdir()) == []


def test_atomic_path(tmp_path):
    dst = tmp_path / "a.txt"
    dst.write_text("old")
    with pytest.raises(KeyError):
        with atomic_path(dst) as tmp:
            tmp.write_text("half")
            raise KeyError("x")
    assert dst.read_text() == "old" and list(tmp_path.iterdir()) == [dst]
    with atomic_path(dst) as tmp:
        tmp.write_text("new")
    assert dst.read_text() == "new" and list(tmp_path.iterdir()) == [dst]


def _face(track_id=1):
    pts = face_points(100, 100, 50)
    return Face(Box(*pts.min(0), *pts.max(0), 0.9), pts, 0.9, track_id)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_landmark_writer(tmp_path, suffix):
    dst = tmp_path / f"lm{suffix}"
    with LandmarkWriter(dst, {"source": "x.mp4"}) as out:
        out.write(0, 0.0, [_face()])
        out.write(1, 1 / 30, [])
    text = dst.read_text()
    if suffix == ".json":
        data = json.loads(text)
        assert data["source"] == "x.mp4" and len(data["frames"]) == 2
        lm = np.array(data["frames"][0]["faces"][0]["landmarks"])
        np.testing.assert_allclose(lm, _face().landmarks, atol=1e-3)
        assert data["frames"][1]["faces"] == []
    else:
        rows = text.strip().splitlines()
        assert len(rows) == 3 and rows[0].startswith("frame,time,track_id,score,box_x0")
        assert len(rows[1].split(",")) == 8 + 136
        # a frame without faces still has its row, with only frame and time filled in
        assert rows[2].split(",") == ["1", "0.0333"] + [""] * (6 + 136)
    with pytest.raises(RuntimeError):
        with LandmarkWriter(tmp_path / f"bad{suffix}") as out:
            out.write(0, 0.0, [_face()])
            raise RuntimeError("boom")
    assert sorted(tmp_path.iterdir()) == [dst]
    with pytest.raises(OutputError, match="lm.txt"):
        LandmarkWriter(tmp_path / "lm.txt")
