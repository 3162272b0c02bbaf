"""tracker.batch: many files on worker processes and on Ray, with the real tracker on tiny clips.

The library is a few 160x120 clips and photos cut from the bundled sample clip,
plus one corrupt and one faceless file. A module fixture compiles (or loads)
the Numba kernels once in this process, so the workers only load the cache.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tracker import batch
from tracker.batch_job import EngineOptions, FileJob
from tracker.batch_pool import run_local
from tracker.errors import InputError
from tracker.sources import open_file
from tracker.landmarks import DEFAULT_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tracker" / "data" / "sample.mp4"
SIZE = (160, 120)
STATE_FILES = {batch.MANIFEST, batch.LOCK}


def _frames(start, count):
    with open_file(SAMPLE) as reader:
        frames = [f for _, f in zip(range(start + count), reader)][start:]
    return [cv2.resize(f, SIZE, interpolation=cv2.INTER_AREA) for f in frames]


def _write_clip(path, frames, fourcc="mp4v"):
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 30.0, SIZE)
    for f in frames:
        writer.write(f)
    writer.release()


def make_library(root, clips=2, photos=1):
    """clips/c0.mp4, clips/sub/c1.avi, ... (4 frames each), photos/p0.jpg ..., one faceless
    photo and one corrupt clip; -> {name: path}."""
    files = {}
    for i in range(clips):
        path = root / "clips" / ("sub/" if i % 2 else "") / f"c{i}{'.avi' if i % 2 else '.mp4'}"
        _write_clip(path, _frames(4 * i, 4), "MJPG" if i % 2 else "mp4v")
        files[f"c{i}"] = path
    (root / "photos").mkdir(parents=True, exist_ok=True)
    for i in range(photos):
        files[f"p{i}"] = root / "photos" / f"p{i}.jpg"
        cv2.imwrite(str(files[f"p{i}"]), _frames(10 * i, 1)[0])
    files["blank"] = root / "photos" / "blank.png"
    cv2.imwrite(str(files["blank"]), np.full((SIZE[1], SIZE[0], 3), 90, np.uint8))
    files["bad"] = root / "clips" / "bad.mp4"
    files["bad"].write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x01" * 300)
    return files


def tree(folder):
    """Every file below folder, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def manifest_lines(out):
    return [json.loads(line) for line in (Path(out) / batch.MANIFEST).read_text().splitlines()]


def landmarks_of(path):
    """(frames, faces, 68, 2) float array of a landmarks JSON file."""
    data = json.loads(Path(path).read_text())
    return np.array([[face["landmarks"] for face in frame["faces"]] for frame in data["frames"]], dtype=float)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    root = tmp_path_factory.mktemp("library")
    files = make_library(root)
    from tracker.tracking import Tracker

    with Tracker.from_weights(threads=1) as warm:  # compile / load the kernels once, here
        warm.process(_frames(0, 1)[0])
    return root, files


@pytest.fixture(scope="module")
def local_run(library, tmp_path_factory):
    root, files = library
    out = tmp_path_factory.mktemp("out") / "local"
    seen = []
    rows = batch.run([root], out, workers=2, look=None, landmarks="json", progress=seen.append)
    return out, rows, seen


def test_discover_mirrors_the_tree_below_the_common_folder(tmp_path):
    for name in ("a/x.mp4", "a/sub/y.jpg", "b/z.webm", "a/.hidden/h.jpg", "a/notes.md", "a/out/old.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    rel = lambda plan: sorted(str(r) for _, r in plan)  # noqa: E731
    assert rel(batch.discover([tmp_path / "a"], tmp_path / "a" / "out")) == ["sub/y.jpg", "x.mp4"]
    assert rel(batch.discover([tmp_path / "a", tmp_path / "b"], tmp_path / "o")) == [
        "a/out/old.mp4", "a/sub/y.jpg", "a/x.mp4", "b/z.mp4"]  # .webm: written as .mp4
    listing = tmp_path / "list.txt"
    listing.write_text("# clips\na/x.mp4\n\nb\nmissing.jpg\n")
    plan = batch.discover([listing], tmp_path / "o")
    assert rel(plan) == ["a/x.mp4", "b/z.mp4", "missing.jpg"]  # a listed missing file fails in its job
    assert all(src.is_absolute() for src, _ in plan)


@pytest.mark.parametrize("args, message", [
    (["nope.mp4"], "input not found: .*nope.mp4"),
    (["a/notes.md"], "notes.md is not a video, an image"),
    (["a/x.mp4", "a/x.webm"], "would both write"),  # .webm is written as .mp4
    (["empty"], "no videos or images found"),
])
def test_discover_errors_name_the_input(tmp_path, args, message):
    for name in ("a/x.mp4", "a/x.webm", "a/notes.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=message):
        batch.discover([tmp_path / a for a in args], tmp_path / "out")


def test_input_folder_as_output_folder_is_refused(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="would overwrite the input"):
        batch.discover([tmp_path / "x.jpg"], tmp_path)


def test_torn_manifest_line_is_ignored_and_ended(tmp_path):
    (tmp_path / batch.MANIFEST).write_text('{"input": "/a", "status": "done"}\n{"input": "/b", "sta')
    assert list(batch.read_manifest(tmp_path)) == ["/a"]
    manifest = batch.ManifestWriter(tmp_path)
    manifest.write({"input": "/c", "status": "failed"})
    manifest.close()
    assert list(batch.read_manifest(tmp_path)) == ["/a", "/c"]


def test_batch_outputs_and_manifest(library, local_run):
    root, files = library
    out, rows, seen = local_run
    by_name = {Path(r["input"]).name: r for r in rows}
    assert list(by_name) == ["bad.mp4", "c0.mp4", "c1.avi", "blank.png", "p0.jpg"]  # the folder's order
    assert {n: r["status"] for n, r in by_name.items()} == {
        "c0.mp4": "done", "c1.avi": "done", "p0.jpg": "done", "blank.png": "no_face", "bad.mp4": "failed"}
    assert tree(out) == sorted(STATE_FILES | {
        "clips/c0.mp4", "clips/c0.mp4.landmarks.json", "clips/sub/c1.avi", "clips/sub/c1.avi.landmarks.json",
        "photos/p0.jpg", "photos/p0.jpg.landmarks.json"})
    bad = by_name["bad.mp4"]
    assert bad["error_kind"] == "input" and "bad.mp4" in bad["error"]
    assert "blank.png" in by_name["blank.png"]["error"] and by_name["blank.png"]["output"] is None
    for name in ("c0.mp4", "c1.avi"):
        row = by_name[name]
        assert (row["frames"], row["frames_with_faces"], row["faces"]) == (4, 4, 1)
        with open_file(row["output"]) as reader:
            assert reader.size == SIZE and len(list(reader)) == 4
        assert landmarks_of(row["landmarks"]).shape == (4, 1, 68, 2)
    assert by_name["p0.jpg"]["faces"] == 1 and cv2.imread(by_name["p0.jpg"]["output"]).shape == (120, 160, 3)
    assert all(r["seconds"] > 0 and r["key"].startswith(rows[0]["key"][:16]) for r in rows)
    assert sorted(r["input"] for r in manifest_lines(out)) == sorted(r["input"] for r in rows)
    # Progress: one report per file, the last one complete.
    assert [p.files_done for p in seen] == [1, 2, 3, 4, 5]
    assert seen[-1].files_total == 5 and seen[-1].failed == 2 and seen[-1].frames == 4 + 4 + 1 + 1
    assert seen[-1].seconds_left == 0.0 and seen[-1].frames_per_second > 0


def test_rerun_skips_everything(library, local_run):
    root, _ = library
    out, first, _ = local_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name not in STATE_FILES}
    rows = batch.run([root], out, workers=2, look=None, landmarks="json")
    assert all(r.get("skipped") for r in rows)
    assert [r["status"] for r in rows] == [r["status"] for r in first]
    assert len(manifest_lines(out)) == len(first)  # nothing was run again
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert batch.summary(rows) == {"done": 0, "skipped": 3, "no_face": 1, "failed": 1}


def test_other_options_or_force_redo_the_files(library, tmp_path):
    _, files = library
    first = batch.run([files["p0"]], tmp_path, workers=1, look=None, landmarks="csv")
    assert first[0]["status"] == "done" and first[0]["landmarks"].endswith(".landmarks.csv")
    other = batch.run([files["p0"]], tmp_path, workers=1, look=None, landmarks="json")
    assert not other[0].get("skipped") and other[0]["key"] != first[0]["key"]
    forced = batch.run([files["p0"]], tmp_path, workers=1, look=None, landmarks="json", force=True)
    assert not forced[0].get("skipped") and forced[0]["key"] == other[0]["key"]
    assert len(manifest_lines(tmp_path)) == 3


def test_killed_worker_loses_only_its_file(library, tmp_path):
    _, files = library
    out = tmp_path / "out"
    engine = EngineOptions(str(DEFAULT_WEIGHTS), "blaze")
    names = ["p0", "blank", "p0"]
    jobs = [FileJob(str(files[n]), "image", str(out / f"{i}.jpg"), None, str(out / ".staging" / str(i)),
                    "k", engine) for i, n in enumerate(names)]
    out.mkdir()
    rows = []

    def on_row(row):
        rows.append(row)
        if len(rows) == 1:  # kill the worker as it takes its next file
            os.kill(row["pid"], signal.SIGKILL)

    run_local(jobs, 1, on_row)
    assert [Path(r["input"]).name for r in rows] == ["p0.jpg", "blank.png", "p0.jpg"]
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert rows[1]["error_kind"] == "crash" and "signal 9" in rows[1]["error"]
    assert rows[0]["pid"] != rows[2]["pid"]  # a new worker took over
    assert tree(out) == ["0.jpg", "2.jpg"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stopped_batch_resumes_with_no_duplicate_or_partial_file(tmp_path, library, sig):
    root = tmp_path / "lib"
    make_library(root, clips=6, photos=2)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tracker.batch", str(root), "-o", str(out), "--workers", "1",
           "--no-makeup", "--landmarks", "csv"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
)
    try:
        deadline = time.monotonic() + 120
        while not (out / batch.MANIFEST).is_file() or len(manifest_lines(out)) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the batch finished no file in time"
            time.sleep(0.05)
        os.kill(proc.pid, sig)  # the batch only: its worker must stop with it
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    if sig == signal.SIGTERM:
        assert proc.returncode == 143, err.decode()
        assert b"a rerun does the rest" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    done_before = {r["input"] for r in manifest_lines(out) if r["status"] == "done"}
    assert 0 < len(done_before) < 8
    rows = batch.run([root], out, workers=2, look=None, landmarks="csv")
    assert [r["status"] for r in rows].count("done") == 8
    assert {r["input"] for r in rows if r.get("skipped")} >= done_before
    lines = manifest_lines(out)
    finished = [r["input"] for r in lines if r["status"] == "done"]
    assert len(finished) == len(set(finished)) == 8  # every input done exactly once
    outputs = [p for p in tree(out) if p not in STATE_FILES]
    assert len(outputs) == 16 and not any(".partial" in p or batch.STAGING in p for p in outputs)
    for row in rows:
        if row["kind"] == "video" and row["status"] == "done":
            with open_file(row["output"]) as reader:
                assert len(list(reader)) == 4
            assert len(Path(row["landmarks"]).read_text().splitlines()) == 1 + row["frames_with_faces"]


def test_cli_summary_and_exit_status(library, tmp_path, capsys):
    _, files = library
    out = tmp_path / "out"
    assert batch.main([str(files["p0"]), "-o", str(out), "--workers", "1", "--no-makeup"]) == 0
    assert "1 inputs: 1 done" in capsys.readouterr().err
    assert batch.main([str(files["p0"]), str(files["blank"]), "-o", str(out), "--no-makeup"]) == 1
    err = capsys.readouterr().err
    assert "0 done, 1 skipped (done before), 1 without a face" in err and "blank.png" in err
    assert batch.main([str(files["bad"]), "-o", str(tmp_path / "o2"), "--no-makeup"]) == 1
    err = capsys.readouterr().err
    assert "1 failed" in err and "bad.mp4" in err and "Traceback" not in err


@pytest.mark.parametrize("extra, message", [
    (["--workers", "0"], "workers must be at least 1"),
    (["--weights", "nosuch"], "nosuch"),
    (["--lip-color", "nocolor"], "nocolor"),
])
def test_cli_bad_options_write_nothing(library, tmp_path, capsys, extra, message):
    _, files = library
    out = tmp_path / "out"
    assert batch.main([str(files["p0"]), "-o", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_missing_input(tmp_path, capsys):
    assert batch.main([str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "out")]) == 2
    assert "nope.mp4" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ray_local_gives_the_same_landmarks(library, local_run, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]'; .ci/run does)")
    root, _ = library
    out, local_rows, _ = local_run
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})  # this checkout's tracker on the workers
    try:
        rows = batch.run([root], tmp_path / "ray", ray=True, look=None, landmarks="json")
    finally:
        ray.shutdown()
    assert [r["status"] for r in rows] == [r["status"] for r in local_rows]
    assert [r["error"] for r in rows if r["status"] != "done"] == [
        r["error"] for r in local_rows if r["status"] != "done"]
    assert tree(tmp_path / "ray") == tree(out)
    for mine, theirs in zip(rows, local_rows):
        if mine["status"] == "done":
            np.testing.assert_allclose(landmarks_of(mine["landmarks"]), landmarks_of(theirs["landmarks"]),
                                       atol=1e-3)  # the files' rounding
