"""The weights loader refuses files it cannot run, naming the file and the array."""
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from nnlite.model import TwoStageModel
from nnlite.weights import WeightsError, load

GOOD = Path(__file__).parent / "fixtures" / "model_small.h5"


@pytest.fixture
def copy(tmp_path):
    dst = tmp_path / "w.h5"
    shutil.copy(GOOD, dst)
    return dst


def test_loads_good_file():
    config, arrays, meta = load(GOOD)
    assert config["num_landmarks"] == 68
    assert arrays["blocks.0.dw.weight"].dtype == np.float32


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        TwoStageModel.load(tmp_path / "nope.h5")


def test_truncated_file(copy):
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 3])
    with pytest.raises(WeightsError, match=str(copy.name)):
        TwoStageModel.load(copy)


def test_not_hdf5(tmp_path):
    p = tmp_path / "w.h5"
    p.write_text("hello")
    with pytest.raises(WeightsError, match="not a readable HDF5"):
        TwoStageModel.load(p)


def test_wrong_format_and_version(copy):
    with h5py.File(copy, "r+") as f:
        f.attrs["version"] = 99
    with pytest.raises(WeightsError, match="version 99"):
        TwoStageModel.load(copy)
    with h5py.File(copy, "r+") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(WeightsError, match="format is 'something-else'"):
        TwoStageModel.load(copy)


def test_wrong_shape_names_array(copy):
    with h5py.File(copy, "r+") as f:
        w = f["blocks.3.dw/weight"][()]
        del f["blocks.3.dw/weight"]
        f["blocks.3.dw"].create_dataset("weight", data=w[: w.shape[0] // 2])
    with pytest.raises(WeightsError, match=r"'blocks.3.dw.weight': expected shape \(\d+, 1, 3, 3\)"):
        TwoStageModel.load(copy)


def test_missing_group(copy):
    with h5py.File(copy, "r+") as f:
        del f["refine"]
    with pytest.raises(WeightsError, match="missing array 'refine.weight'"):
        TwoStageModel.load(copy)


def test_unused_array(copy):
    with h5py.File(copy, "r+") as f:
        f.create_group("extra").create_dataset("weight", data=np.zeros(3, np.float32))
    with pytest.raises(WeightsError, match="not used by the config: extra.weight"):
        TwoStageModel.load(copy)


def test_bad_config(copy):
    with h5py.File(copy, "r+") as f:
        cfg = json.loads(f.attrs["config"])
        del cfg["refine"]
        f.attrs["config"] = json.dumps(cfg)
    with pytest.raises(WeightsError, match="config"):
        TwoStageModel.load(copy)


def test_refuses_other_model_type():
    det = Path(__file__).parent / "fixtures" / "detector_small.h5"
    with pytest.raises(WeightsError, match="single_shot_detector"):
        TwoStageModel.load(det)


@pytest.mark.parametrize("name", ["demo", "lite", "full"])
def test_shipped_models_score_faces_by_the_softmax_peak(name):
    """Every shipped model carries the score kind and the tracking threshold tuned for it."""
    from tracker.landmarks import Landmarker
    from tracker.tracking import default_min_tracking_score

    lm = Landmarker(name, backend="numpy")
    assert lm.model.config["heatmap"]["confidence"] == "softmax_peak"
    assert 0.1 < default_min_tracking_score(lm) == lm.model.config["tracking"]["min_score"] < 0.5
