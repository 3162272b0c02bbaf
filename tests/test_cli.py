"""Command-line tools, driven in-process: clear errors, exit codes, no partial output, a short happy path."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fakes import TemplateLandmarker
from tracker import image as image_cli
from tracker import video as video_cli
from tracker.sources import open_file

SAMPLE = Path(__file__).resolve().parents[1] / "tracker" / "data" / "sample.mp4"


@pytest.fixture
def fake_model(monkeypatch, tmp_path):
    """A fake landmark model (tracker.landmarks.Landmarker: the template landmarker); returns a weights path that exists."""
    import tracker.landmarks

    monkeypatch.setattr(tracker.landmarks, "Landmarker", lambda path, **engine: TemplateLandmarker())
    weights = tmp_path / "fake.h5"
    weights.write_bytes(b"not used")
    return weights


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first 6 frames of the sample clip (face visible from frame 0)."""
    path = tmp_path_factory.mktemp("clip") / "short.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 480))
    with open_file(SAMPLE) as reader:
        for i, frame in enumerate(reader):
            if i == 6:
                break
            writer.write(frame)
    writer.release()
    return path


def files(folder):
    return sorted(p.name for p in Path(folder).iterdir())


def test_missing_input(tmp_path, capsys):
    assert video_cli.main([str(tmp_path / "nope.mp4")]) == 2
    err = capsys.readouterr().err
    assert "nope.mp4" in err and "Traceback" not in err
    assert files(tmp_path) == []


def test_not_a_video(tmp_path, capsys, fake_model):
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello\n" * 100)
    assert video_cli.main([str(bad), "--weights", str(fake_model)]) == 2
    assert "notes.mp4" in capsys.readouterr().err
    assert files(tmp_path) == ["fake.h5", "notes.mp4"]


def test_missing_weights(tmp_path, short_clip, capsys):
    out = tmp_path / "out.mp4"
    assert video_cli.main([str(short_clip), "-o", str(out), "--weights", str(tmp_path / "w.h5")]) == 2
    err = capsys.readouterr().err
    assert "w.h5" in err and "weights" in err
    assert files(tmp_path) == []


def test_shipped_model_names():
    from tracker.errors import InputError
    from tracker.landmarks import DEFAULT_WEIGHTS, load_landmarker
    from tracker.resources import shipped_weights

    assert shipped_weights("demo") == DEFAULT_WEIGHTS
    assert shipped_weights("runs/demo") == Path("runs/demo")  # a path is never a name
    with pytest.raises(InputError, match=r"nosuch.*shipped model name: demo"):
        load_landmarker("nosuch")


@pytest.mark.parametrize("args, message", [
    (["--max-faces", "0"], "max-faces"),
    (["-o", "out.xyz"], "out.xyz"),
    (["--landmarks", "lm.txt"], "lm.txt"),
    (["--detector", "nosuch"], "nosuch"),
    (["--look", "clown"], "natural"),          # the message lists the valid looks
    (["--lip-color", "#12345"], "#rrggbb"),    # and the accepted colour formats
    (["--lip-finish", "satin"], "gloss"),
])
def test_bad_arguments(tmp_path, short_clip, capsys, fake_model, args, message):
    args = [str(tmp_path / a) if a.startswith(("out.", "lm.")) else a for a in args]
    assert video_cli.main([str(short_clip), "--weights", str(fake_model), *args]) == 2
    assert message in capsys.readouterr().err
    assert files(tmp_path) == ["fake.h5"]


def test_video_happy_path(tmp_path, short_clip, capsys, fake_model):
    src = tmp_path / "in.mp4"
    src.write_bytes(short_clip.read_bytes())
    lm = tmp_path / "lm.json"
    assert video_cli.main([str(src), "--weights", str(fake_model), "--landmarks", str(lm), "--draw-landmarks"]) == 0
    err = capsys.readouterr().err
    assert "frames/s" in err
    assert files(tmp_path) == ["fake.h5", "in.makeup.mp4", "in.mp4", "lm.json"]
    with open_file(tmp_path / "in.makeup.mp4") as reader:
        assert reader.size == (640, 480) and reader.fps == pytest.approx(30.0)
        assert len(list(reader)) == 6
    data = json.loads(lm.read_text())
    assert len(data["frames"]) == 6
    assert all(len(f["faces"]) == 1 and f["faces"][0]["track_id"] == 1 for f in data["frames"])
    assert np.array(data["frames"][0]["faces"][0]["landmarks"]).shape == (68, 2)


def test_interrupt_leaves_no_output(tmp_path, short_clip, capsys, monkeypatch, fake_model):
    calls = {"n": 0}
    original_run = TemplateLandmarker.run

    def run(self, frame, crops):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original_run(self, frame, crops)

    monkeypatch.setattr(TemplateLandmarker, "run", run)
    out, lm = tmp_path / "out.mp4", tmp_path / "lm.csv"
    assert video_cli.main([str(short_clip), "-o", str(out), "--landmarks", str(lm),
                           "--weights", str(fake_model)]) == 130
    assert files(tmp_path) == ["fake.h5"]


def test_default_output_names(tmp_path):
    assert video_cli.default_output(None) == Path.cwd() / "sample.makeup.mp4"
    assert video_cli.default_output(tmp_path / "a.mov") == tmp_path / "a.makeup.mov"
    assert video_cli.default_output(tmp_path / "a.webm") == tmp_path / "a.makeup.mp4"
    assert image_cli.default_output(tmp_path / "a.jpg") == tmp_path / "a.makeup.jpg"


def test_image_cli(tmp_path, capsys, fake_model):
    with open_file(SAMPLE) as reader:
        frame = next(iter(reader))
    src = tmp_path / "face.png"
    cv2.imwrite(str(src), frame)
    assert image_cli.main([str(src), "--weights", str(fake_model), "--landmarks", str(tmp_path / "f.csv")]) == 0
    assert files(tmp_path) == ["f.csv", "face.makeup.png", "face.png", "fake.h5"]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 128, np.uint8))
    assert image_cli.main([str(blank), "--weights", str(fake_model)]) == 1
    assert "no face" in capsys.readouterr().err
    assert image_cli.main([str(tmp_path / "missing.jpg"), "--weights", str(fake_model)]) == 2
    notimage = tmp_path / "x.jpg"
    notimage.write_text("hello")
    assert image_cli.main([str(notimage), "--weights", str(fake_model)]) == 2
    assert "x.jpg" in capsys.readouterr().err
    assert "blank.makeup.png" not in files(tmp_path)
