"""The CLI's other jobs from Python: zero-shot, distillation, the dataset list."""

import numpy as np
import pytest
import strata


def test_zero_shot_reproduces_ibm_ttm_r2_on_etth1(data_root):
    """IBM reports MSE 0.3628 for TinyTimeMixer R2 zero-shot on ETTh1 512 -> 96."""
    r = strata.zero_shot(data_root / "ttm-r2", "etth1", horizon=96)
    assert r["mse"] == pytest.approx(0.3628, abs=5e-4)
    assert r["test_windows"] == 2785


def test_distill_returns_its_record(data_root, tmp_path):
    r = strata.distill("los-loop", tmp_path / "d", method="random", overrides={"distill.seed": 3})
    assert (r["real_windows"], r["real_locations"]) == (1395, 207)
    # 10% of the windows and of the locations (the defaults), in the arrays written.
    assert (r["m"], r["k"]) == (140, 21)
    x = np.load(tmp_path / "d" / "x.npy")
    assert x.shape[0] == 140 and 21 in x.shape


def test_datasets_lists_the_registry_and_what_is_on_disk(data_root):
    names = {d["name"]: d for d in strata.datasets()}
    assert names["etth1"]["on_disk"] and names["etth1"]["freq"] == "h"
    assert names["los-loop"]["kind"] == "spatio-temporal"


def test_finetune_needs_its_settings(tmp_path):
    with pytest.raises(strata.StrataError, match="method"):
        strata.finetune("no-such-model", dataset="etth1", method="nonsense", out=tmp_path / "f")
