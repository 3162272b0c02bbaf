"""The accuracy diagnostics: tools.landmarks.evaluate's fit report and bias table, tools.landmarks.overfit_check."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from tools.common import HELEN_TRAIN as HELEN
from tools.common import inter_ocular
from tools.landmarks import data as D
from tools.landmarks import evaluate as E

needs_data = pytest.mark.skipif(
    not HELEN.is_dir(), reason=f"300-W data not found at {HELEN} (../shared beside the repo)")


def _faces(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(20, 200, (n, 68, 2)).astype(np.float32)


def test_bias_is_the_mean_signed_error_in_inter_ocular_units():
    gt = _faces()
    io = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    shift = np.array([0.5, -0.25], np.float32)
    pred = gt + shift * io[:, None, None] / 100  # 0.5% io right, 0.25% io up on every face
    pred[:, 8, 0] += io * 0.03                   # one landmark 3% further right
    b = E.bias(pred, gt)
    assert len(b["x"]) == len(b["y"]) == 68
    np.testing.assert_allclose(b["y"], -0.25, atol=1e-4)
    np.testing.assert_allclose(np.delete(b["x"], 8), 0.5, atol=1e-4)
    assert b["x"][8] == pytest.approx(3.5, abs=1e-3)
    assert b["mean_x"] == pytest.approx(0.5 + 3.0 / 68, abs=1e-4)
    # Errors that cancel over faces have no bias, although every face is off.
    pred = gt.copy()
    pred[0::2] += 0.02 * io[0::2, None, None]
    pred[1::2] -= 0.02 * io[1::2, None, None]
    assert abs(E.bias(pred, gt)["mean_x"]) < 1e-4 and E.nme_per_face(pred, gt)["io"].min() > 0


def test_paired_difference_reads_a_shift_from_noise_shared_by_both_models():
    rng = np.random.default_rng(1)
    hard = rng.gamma(2.0, 2.5, 133)                   # how hard each face is, for any model
    a = hard + rng.normal(0, 0.05, 133)
    p = E.paired_difference(a, a + 0.1)               # b is 0.1 worse on every face
    assert p["diff"] == pytest.approx(0.1) and p["rel"] == pytest.approx(0.1 / a.mean())
    assert p["ci95"][0] == pytest.approx(0.1) and p["ci95"][1] == pytest.approx(0.1)
    assert p["b_closer"] == 0.0 and p["faces"] == 133
    # The same mean shift drowned in per-face noise: the interval holds both 0 and the shift.
    b = a + 0.1 + rng.normal(0, 2.0, 133)
    p = E.paired_difference(a, b)
    assert p["ci95"][0] < 0 < p["ci95"][1] and p["ci95"][0] < p["diff"] < p["ci95"][1]
    assert p["mean_b"] - p["mean_a"] == pytest.approx(p["diff"])
    assert E.paired_difference(a, b) == p             # a fixed seed: the same interval every run
    with pytest.raises(ValueError, match="one length"):
        E.paired_difference(a, b[:-1])


def test_contour_errors_split_a_slide_along_the_jaw_from_a_step_off_it():
    gt = _faces().astype(np.float64)
    io = np.linalg.norm(gt[:, 36] - gt[:, 45], axis=-1)
    t = E.contour_tangents(gt)
    assert np.allclose(np.linalg.norm(t, axis=2), 1.0)
    normal = np.stack([-t[..., 1], t[..., 0]], axis=2)
    pred = gt.copy()
    jaw, lips = slice(0, 17), slice(48, 68)
    pred[:, jaw] += 0.04 * io[:, None, None] * t[:, jaw]       # slid 4% io along the jaw line
    pred[:, lips] += 0.01 * io[:, None, None] * normal[:, lips]  # 1% io off the lip lines
    c = E.contour_errors(pred, gt)
    assert c["jaw"]["along"] == pytest.approx(4.0)
    assert c["jaw"]["across"] == pytest.approx(0.0, abs=1e-9)
    assert c["lips"]["along"] == pytest.approx(0.0, abs=1e-9)
    assert c["lips"]["across"] == pytest.approx(1.0)
    assert c["eyes"]["along"] == c["eyes"]["across"] == c["eyes"]["share"] == 0.0
    # Shares: each part's part of the summed point errors.
    assert c["jaw"]["share"] == pytest.approx(17 * 4.0 / (17 * 4.0 + 20 * 1.0))
    assert sum(v["share"] for v in c.values()) == pytest.approx(1.0)


def _copy_faces(folder: Path, n: int) -> Path:
    folder.mkdir()
    for img, pts in D.find_pairs(HELEN)[:n]:
        shutil.copy(img, folder)
        shutil.copy(pts, folder)
    return folder


@needs_data
def test_fit_report_and_bias_from_one_command(tmp_path, capsys):
    folder = _copy_faces(tmp_path / "faces", 24)
    train, val = D.split_pairs(D.find_pairs(folder), 0.1, seed=0)
    out = tmp_path / "fit.json"
    rc = E.main([str(folder), "--weights", "demo", "--fit-report", "--bias", "--contour",
                 "--compare", "lite", "--json", str(out),
                 "--ced", str(tmp_path / "ced.png")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "fit: training / validation NME" in text and "mean signed error per landmark" in text
    report = json.loads(out.read_text())
    rows = report["summary"]
    assert rows["train refined (stage 2)"]["faces"] == len(train)
    assert rows["val refined (stage 2)"]["faces"] == len(val)
    ratio = report["fit_ratio_io"]["refined"]
    assert ratio == pytest.approx(rows["train refined (stage 2)"]["nme_io"]
                                  / rows["val refined (stage 2)"]["nme_io"])
    for name in ("train refined", "train coarse", "val refined", "val coarse"):
        b = report["bias"][name]
        assert len(b["x"]) == 68 and b["mean_x"] == pytest.approx(np.mean(b["x"]))
    assert "along" in text and set(report["contour"]["val refined"]) == set(E.PARTS)
    for name, split in (("train", train), ("val", val)):
        p = report["compare"][name]
        assert p["faces"] == len(split) and p["ci95"][0] <= p["diff"] <= p["ci95"][1]
        assert p["mean_a"] == pytest.approx(rows[f"{name} refined (stage 2)"]["nme_ip"])
    assert "lite closer on" in text
    # A trained model lands within a few % of the inter-ocular distance on average.
    assert 0.5 < rows["val refined (stage 2)"]["nme_io"] < 15


@needs_data
def test_compare_with_missing_weights_fails_before_any_model_runs(tmp_path, capsys):
    folder = _copy_faces(tmp_path / "faces", 2)
    assert E.main([str(folder), "--compare", str(tmp_path / "nosuch.h5")]) == 2
    captured = capsys.readouterr()
    assert "nosuch.h5" in captured.err and "faces/s" not in captured.err and captured.out == ""


@needs_data
def test_overfit_check_fits_a_few_faces(tmp_path, capsys):
    pytest.importorskip("torch")
    from tools.landmarks import overfit_check
    from tools.landmarks.config import make_config

    folder = _copy_faces(tmp_path / "faces", 12)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(make_config(alpha=1 / 6, input_size=64, name="tiny")))
    rc = overfit_check.main(["--out", str(tmp_path / "run"), "--config", str(cfg), "--faces", "8",
                             "--epochs", "60", "--batch", "8", "--eval-every", "20",
                             "--target", "100", "--", "--lr", "1e-2", "--data", str(folder)])
    assert rc == 0
    rows = overfit_check.fit_curve(tmp_path / "run" / "log.csv")
    assert [r["epoch"] for r in rows] == [19, 39, 59]
    assert rows[-1]["fit_nme_io"] < 0.6 * rows[0]["fit_nme_io"]
    assert "overfit check:" in capsys.readouterr().out

    # tools.landmarks.experiments scores the same run through nnlite, both splits, one table row.
    from tools.landmarks import experiments
    pairs = D.find_pairs(folder)
    row = experiments.score_run(tmp_path / "run", {"train": pairs[:8], "val": pairs[8:]})
    assert row["epochs"] == 60 and row["params"] > 0 and row["macs"] > 0
    assert row["train"]["refined"]["faces"] == 8 and row["val"]["refined"]["faces"] == 4
    assert row["variant"] == "l2 x1, input 64, augment none"  # not the usual 128-pixel crops
    line = experiments.markdown_row(row)
    assert line.startswith("| run: l2 x1, input 64, augment none |") and line.count("|") == 12


def _mirrored(flip_shift, seed=3):
    """A synthetic face's always-mirrored crop without and with a flip shift."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (200, 180, 3), dtype=np.uint8)
    sample = D.Sample("synthetic", img, _faces(1)[0] * 0.5 + 40)
    still = dict(max_rotation_deg=0.0, scale_range=0.0, shift=0.0, blur=0.0, noise=0.0,
                 occlude=0.0, gray=0.0, flip=1.0)
    plain = D.augment_crop(sample, 64, 1.4, np.random.default_rng(0), D.AugmentParams(**still))
    moved = D.augment_crop(sample, 64, 1.4, np.random.default_rng(0),
                           D.AugmentParams(**still, flip_shift=flip_shift))
    return plain, moved


def test_flip_shift_moves_mirrored_points_right_by_twice_the_offset():
    plain, moved = _mirrored(0.01)
    np.testing.assert_array_equal(plain[0], moved[0])
    io = np.linalg.norm(plain[1][36] - plain[1][45])
    np.testing.assert_allclose(moved[1][:, 0] - plain[1][:, 0], 0.02 * io, rtol=1e-5)
    np.testing.assert_array_equal(moved[1][:, 1], plain[1][:, 1])


@needs_data
def test_decode_cache_holds_plain_data(tmp_path):
    """The decode cache survives a move of tools' modules: it pickles no tools class."""
    import pickle
    import pickletools

    pairs = D.find_pairs(_copy_faces(tmp_path / "faces", 3))
    first = D.load_samples(pairs, cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*.pkl")
    ops = [arg for op, arg, _ in pickletools.genops(cache.read_bytes()) if isinstance(arg, str)]
    assert not any(a.startswith("tools") for a in ops)
    again = D.load_samples(pairs, cache_dir=tmp_path / "cache")
    assert [s.name for s in again] == [s.name for s in first]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.points, b.points)
    assert pickle.loads(cache.read_bytes())[0][0] == first[0].name


def test_per_landmark_flip_shift_moves_each_point_by_its_own_and_its_partners_offset():
    offsets = tuple(np.linspace(0.002, 0.015, 68))
    plain, moved = _mirrored(offsets, seed=4)
    io = np.linalg.norm(plain[1][36] - plain[1][45])
    want = (np.array(offsets) + np.array(offsets)[D.FLIP_68]) * io
    np.testing.assert_allclose(moved[1][:, 0] - plain[1][:, 0], want, rtol=1e-4)
    # A constant per-landmark offset is the scalar one.
    np.testing.assert_allclose(D.mirrored_shift((0.01,) * 68), D.mirrored_shift(0.01))


def test_flip_shift_argument_reads_a_number_or_an_asymmetry_file(tmp_path):
    pytest.importorskip("torch")
    import argparse

    from tools.landmarks.train import flip_shift_arg

    assert flip_shift_arg("0.006") == 0.006
    good = tmp_path / "shift.json"
    good.write_text(json.dumps({"flip_shift": [0.01] * 68}))
    assert flip_shift_arg(str(good)) == [0.01] * 68
    bad = tmp_path / "short.json"
    bad.write_text(json.dumps({"flip_shift": [0.01] * 5}))
    for text in (str(bad), str(tmp_path / "missing.json")):
        with pytest.raises(argparse.ArgumentTypeError):
            flip_shift_arg(text)


@needs_data
def test_asymmetry_measures_the_convention_a_model_learnt(tmp_path, capsys):
    import h5py

    from tools.landmarks import asymmetry
    from tools.landmarks.train import flip_shift_arg

    folder = _copy_faces(tmp_path / "faces", 12)
    out = tmp_path / "shift.json"
    assert asymmetry.main(["--weights", "demo", "--data", str(folder), "--out", str(out)]) == 0
    assert "training faces: x offset" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert len(result["flip_shift"]) == 68 and result["faces"] == len(D.split_pairs(
        D.find_pairs(folder), 0.1, seed=0)[0])
    # The shipped model learnt 300-W's convention: points right of mirror symmetry, not in y.
    assert 0 < np.mean(result["flip_shift"]) < 0.03
    assert abs(np.mean(result["flip_shift_y"])) < 0.5 * np.mean(result["flip_shift"])
    assert flip_shift_arg(str(out)) == result["flip_shift"]
    # A model trained with plainly mirrored crops cannot show the convention: refused.
    from tracker.resources import shipped_weights
    flipped = tmp_path / "flipped.h5"
    shutil.copy(shipped_weights("demo"), flipped)
    with h5py.File(flipped, "r+") as f:
        config = json.loads(f.attrs["config"])
        config["recipe"]["flip"] = 0.5
        config["recipe"]["flip_shift"] = None
        f.attrs["config"] = json.dumps(config)
    assert asymmetry.main(["--weights", str(flipped), "--data", str(folder), "--out", str(out)]) == 2


def _write_pts(path: Path, pts: np.ndarray) -> None:
    body = "\n".join(f"{x + 1:.6f} {y + 1:.6f}" for x, y in pts)  # 300-W is 1-based
    path.write_text(f"version: 1\nn_points: {len(pts)}\n{{\n{body}\n}}\n")


@needs_data
def test_a_face_annotated_twice_is_found_by_its_picture_and_measured(tmp_path, capsys):
    from tools.landmarks import annotation_noise as N

    (img_a, pts_a), (img_c, pts_c) = D.find_pairs(HELEN)[:2]
    folder = tmp_path / "faces"
    folder.mkdir()
    picture, points = cv2.imread(str(img_a)), D.read_pts(pts_a)
    # The same face cropped again: scaled by 0.8, shifted; annotated again with the jaw
    # points moved by 2% of the inter-ocular distance along x.
    m = np.array([[0.8, 0.0, 7.0], [0.0, 0.8, -3.0]])
    again = cv2.warpAffine(picture, m, (picture.shape[1], picture.shape[0]))
    moved = points @ m[:, :2].T + m[:, 2]
    noisy = moved.copy()
    noisy[:17, 0] += 0.02 * float(inter_ocular(moved))
    cv2.imwrite(str(folder / "123_1.png"), picture)
    _write_pts(folder / "123_1.pts", points)
    cv2.imwrite(str(folder / "123_2.png"), again)
    _write_pts(folder / "123_2.pts", noisy)
    # Another picture of the same photo id, annotated with the first face's shape: not a repeat.
    cv2.imwrite(str(folder / "123_3.png"), cv2.resize(cv2.imread(str(img_c)), picture.shape[1::-1]))
    _write_pts(folder / "123_3.pts", points)
    found = N.twice_annotated(D.find_pairs(folder))
    assert [(a[1].name, b[1].name) for a, b, _ in found] == [("123_1.pts", "123_2.pts")]
    err = found[0][2]
    # The alignment spreads the jaw's shift over the face; what is left is of its size.
    assert 0.003 < err[:17].mean() < 0.02 and err[17:].mean() < err[:17].mean()
    out = tmp_path / "noise.json"
    assert N.main([str(folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["twice_annotated"] == 1
    assert report["aligned_error_io"]["two annotations"]["jaw"] == pytest.approx(err[:17].mean() * 100)
    assert "annotated twice" in capsys.readouterr().out
