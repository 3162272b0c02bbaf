"""Training options: --bf16 (backbone in bfloat16, heads and decoders float32), --teacher and
--distill-heatmap, and a run resumed in the precision it started with."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tools.common import HELEN_TRAIN as HELEN  # noqa: E402
from tools.landmarks.config import make_config  # noqa: E402
from tools.landmarks.model import LandmarkNet  # noqa: E402


def _net():
    torch.manual_seed(0)
    net = LandmarkNet(make_config(alpha=1 / 6, input_size=64))
    torch.nn.init.normal_(net.heatmap.weight, std=3.0)  # peaked heatmaps, so points move with logits
    return net.eval()


def _tiny_setup(tmp_path):
    """12 HELEN faces in a folder and a tiny 64-pixel config file -> (folder, config path)."""
    import json
    import shutil

    from tools.landmarks import data as D

    folder = tmp_path / "faces"
    folder.mkdir()
    for img, pts in D.find_pairs(HELEN)[:12]:
        shutil.copy(img, folder)
        shutil.copy(pts, folder)
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(make_config(alpha=1 / 6, input_size=64, name="tiny")))
    return folder, cfg


def test_heads_stay_float32_under_autocast():
    net = _net()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))
    with torch.no_grad():
        ref = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
    for key in ("heatmaps", "refine_heatmaps", "coarse", "refined"):
        assert low[key].dtype == torch.float32, key
    # bfloat16 features move the points a little, not a lot (the real models: ~0.01 px).
    diff = (low["refined"] - ref["refined"]).abs()
    assert diff.max() < 0.5 and diff.mean() < 0.1


def test_bf16_gradients_reach_the_backbone():
    net = _net().train()
    x = torch.randn(2, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(x)
    out["refined"].sum().backward()
    grads = [p.grad for p in net.stem.parameters() if p.requires_grad]
    assert grads and all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)


def test_distilling_from_itself_costs_nothing_and_a_mismatched_teacher_is_refused(tmp_path):
    from tools.landmarks.train import distill_loss, load_teacher

    net = _net()
    torch.nn.init.normal_(net.refine.weight, std=0.5)  # so that refined and coarse points differ
    path = tmp_path / "teacher.pt"
    torch.save({"config": net.cfg, "model": net.state_dict()}, path)
    teacher = load_teacher(path, net.cfg, torch.device("cpu"))
    assert not any(p.requires_grad for p in teacher.parameters())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out, target = net(x), teacher(x)["refined"]
    # The refined points match the teacher's exactly; the coarse ones are what is left to learn.
    # The config's coordinate loss (squared distance, in heatmap pixels).
    coarse_gap = float((((out["coarse"] - target) / net.cfg["heatmap"]["stride"]) ** 2).sum(-1).mean())
    assert coarse_gap > 1e-5
    assert float(distill_loss(out, target, net.cfg)) == pytest.approx(coarse_gap, rel=1e-5)
    other = make_config(alpha=1 / 6, input_size=96)
    with pytest.raises(SystemExit, match="crops differ"):
        load_teacher(path, other, torch.device("cpu"))


def test_the_experiments_table_names_a_teacher():
    from tools.landmarks.experiments import describe

    cfg = make_config(alpha=1 / 6, input_size=64)
    assert "teacher" not in describe(cfg)
    cfg["recipe"] = {"augment": "light", "teacher": "tools/checkpoints/full.pt", "distill": 0.5}
    assert "teacher full x0.5" in describe(cfg)


def test_heatmap_distillation_is_zero_for_the_teachers_own_maps_and_trains_the_student():
    from tools.landmarks.train import heatmap_distill_loss

    torch.manual_seed(1)
    teacher = torch.randn(2, 5, 8, 8) * 3.0
    beta = torch.tensor(0.8)
    assert float(heatmap_distill_loss(teacher, teacher, beta, beta)) == pytest.approx(0.0, abs=1e-6)
    # The same distribution through another temperature: logits scaled to match cost nothing.
    assert float(heatmap_distill_loss(teacher * 2.0, teacher, beta / 2.0, beta)) == pytest.approx(0.0, abs=1e-5)
    student = torch.randn(2, 5, 8, 8, requires_grad=True)
    loss = heatmap_distill_loss(student, teacher, beta, beta)
    assert float(loss.detach()) > 0.1
    loss.backward()
    with torch.no_grad():  # a step down the gradient brings the student's maps closer
        closer = heatmap_distill_loss(student - 0.5 * student.grad / student.grad.norm(), teacher, beta, beta)
    assert float(closer) < float(loss.detach())


def test_the_experiments_table_names_heatmap_distillation():
    from tools.landmarks.experiments import describe

    cfg = make_config(alpha=1 / 6, input_size=64)
    cfg["recipe"] = {"augment": "light", "teacher": "tools/checkpoints/full.pt", "distill": 1.0,
                     "distill_heatmap": 5.0}
    assert "teacher full x1, teacher's heatmaps x5" in describe(cfg)


def test_a_checkpoint_carries_over_to_another_input_size():
    from tools.landmarks.config import with_input_size

    small = _net()
    cfg = with_input_size(small.cfg, 96)
    assert cfg["input"]["size"] == 96 and cfg["heatmap"]["size"] == 12
    assert small.cfg["input"]["size"] == 64  # a new dict
    big = LandmarkNet(cfg).eval()
    big.load_state_dict(small.state_dict())
    with torch.no_grad():
        out = big(torch.zeros(1, 3, 96, 96))
    assert out["heatmaps"].shape[-2:] == (12, 12) and out["refined"].shape == (1, 68, 2)
    with pytest.raises(ValueError, match="multiple of 8"):
        with_input_size(small.cfg, 100)
    from tools.landmarks.experiments import describe
    assert "input 96" in describe(cfg) and "input" not in describe(make_config())


@pytest.mark.skipif(not HELEN.is_dir(), reason=f"300-W data not found at {HELEN}")
def test_a_distilling_bf16_run_resumes_in_bf16(tmp_path):
    # One tiny epoch with a teacher (points and heatmaps) in bfloat16, then --resume without
    # --bf16: the resumed run keeps the precision it started with.
    from tools.landmarks import train

    folder, cfg = _tiny_setup(tmp_path)
    net = LandmarkNet(make_config(alpha=1 / 6, input_size=64, name="tiny"))
    torch.save({"config": net.cfg, "model": net.state_dict()}, tmp_path / "teacher.pt")
    out = tmp_path / "run"
    common = ["--out", str(out), "--data", str(folder), "--batch", "4", "--threads", "1",
              "--fit-faces", "4"]
    assert train.main(["--config", str(cfg), "--epochs", "1", "--bf16", "--teacher",
                       str(tmp_path / "teacher.pt"), "--distill-heatmap", "5", *common]) == 0
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["bf16"] is True and state["config"]["recipe"]["distill_heatmap"] == 5.0
    assert train.main(["--resume", "--epochs", "2", *common]) == 0
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 1 and state["bf16"] is True
    # A last.pt carried across sessions without its optimizer state resumes too (fresh moments).
    del state["optimizer"]
    torch.save(state, out / "last.pt")
    assert train.main(["--resume", "--epochs", "3", *common]) == 0
    state = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    assert state["epoch"] == 2 and "optimizer" in state


def test_the_ablation_passes_a_recipe_to_every_run(tmp_path, monkeypatch):
    from tools.landmarks import ablation

    calls = []
    monkeypatch.setattr(ablation.subprocess, "run", lambda cmd, check: calls.append(cmd))
    argv = ["--out", str(tmp_path), "--epochs", "3", "--variants", "full", "no_stage2",
            "--", "--bf16", "--coord-loss", "l1"]
    assert ablation.main(argv) == 2  # the runs were not really trained: nothing to tabulate
    assert len(calls) == 2
    for cmd, variant_flag in zip(calls, (None, "--no-stage2")):
        i = cmd.index("--epochs")
        assert cmd[i + 1] == "3" and cmd[cmd.index("--bf16") + 1:cmd.index("--bf16") + 3] == [
            "--coord-loss", "l1"]
        assert variant_flag is None or variant_flag in cmd


def test_the_coordinate_loss_can_count_a_pixel_as_the_nme_by_inter_pupil_distance_does():
    from tools.landmarks.experiments import describe
    from tools.landmarks.train import coord_loss, face_weights

    gt = torch.zeros(2, 68, 2)
    gt[:, 42:48, 0] = torch.tensor([[10.0], [40.0]])  # pupils 10 and 40 px apart
    pred = gt + torch.tensor([0.0, 2.0])  # every point 2 px off on both faces
    assert face_weights(gt, "none") is None
    w = face_weights(gt, "ip")
    assert w.tolist() == pytest.approx([1.6, 0.4])  # 1 / ip, mean 1
    assert float(coord_loss(pred, gt, "l1", 1.0, w)) == pytest.approx(2.0)
    # The error on the narrow face (the larger NME) costs 4x the same error on the wide one.
    pred_narrow = pred.clone()
    pred_narrow[1] = gt[1]
    pred_wide = pred.clone()
    pred_wide[0] = gt[0]
    assert float(coord_loss(pred_narrow, gt, "l1", 1.0, w)) == pytest.approx(
        4.0 * float(coord_loss(pred_wide, gt, "l1", 1.0, w)))
    with pytest.raises(ValueError, match="normalisation"):
        face_weights(gt, "io")
    cfg = make_config(alpha=1 / 6, input_size=64)
    cfg["loss"].update(coord="l1", lambda_l2=10.0, coord_norm="ip")
    assert describe(cfg).startswith("l1 x10 per ip")


def test_the_learning_curve_gain_per_doubling_is_the_slope_of_log_error():
    from tools.landmarks.learning_curve import per_doubling, sizes_for

    assert sizes_for(1074, None) == [268, 537, 1074]
    assert sizes_for(1074, [537, 100, 537]) == [100, 537]
    with pytest.raises(SystemExit, match="1..1074"):
        sizes_for(1074, [2000])
    rows = {n: {"val": {"nme_ip": 6.0 * 0.9 ** k}} for k, n in enumerate((250, 500, 1000))}
    assert per_doubling(rows) == pytest.approx(-0.10)
    assert per_doubling({500: rows[500]}) is None


def test_the_learning_curve_names_a_missing_data_folder(tmp_path, capsys):
    from tools.landmarks import learning_curve

    assert learning_curve.main(["--data", str(tmp_path / "missing"), "--evaluate-only"]) == 2
    assert "missing: no such folder" in capsys.readouterr().err


@pytest.mark.skipif(not HELEN.is_dir(), reason=f"300-W data not found at {HELEN}")
def test_the_learning_curve_trains_each_size_on_the_first_faces_and_tabulates(tmp_path, capsys):
    import json

    from tools.landmarks import learning_curve

    folder, cfg = _tiny_setup(tmp_path)
    out = tmp_path / "lc"
    argv = ["--out", str(out), "--config", str(cfg), "--epochs", "2", "--faces", "4", "8",
            "--data", str(folder), "--", "--batch", "4", "--augment", "none"]
    assert learning_curve.main(argv) == 0
    for n in (4, 8):  # each size trained on the first n faces of the fixed shuffle
        state = torch.load(out / f"n{n}" / "last.pt", map_location="cpu", weights_only=False)
        assert state["config"]["recipe"]["subset"] == n and state["epoch"] == 1
    report = json.loads((out / "learning_curve.json").read_text())
    assert set(report["rows"]) == {"4", "8"} and report["per_doubling"] is not None
    assert report["rows"]["4"]["own"]["faces"] == 4 and report["rows"]["8"]["own"]["faces"] == 8
    text = capsys.readouterr().out
    assert "| 4 | 2 |" in text and "per doubling" in text
    # Finished runs are scored again without training.
    assert learning_curve.main(["--out", str(out), "--config", str(cfg), "--faces", "4", "8",
                                "--epochs", "2", "--data", str(folder), "--evaluate-only"]) == 0
