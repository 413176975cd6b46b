"""The DataFrame-first estimator: long and wide frames, val_size/test_size, predict after fit."""

import json

import numpy as np
import pytest
import strata
from conftest import etth1


def long_frame(wide, ids=("HUFL", "MUFL", "OT")):
    pd = pytest.importorskip("pandas")
    return pd.concat([pd.DataFrame({"unique_id": c, "ds": wide["date"], "y": wide[c]}) for c in ids], ignore_index=True)


def test_long_frame_fit_predict(tmp_path):
    wide = etth1(slice(0, 1500))
    df = long_frame(wide)
    fc = strata.Forecaster("dlinear", h=24, input_size=96, freq="h", train={"epochs": 1, "max_steps_per_epoch": 20, "seed": 3}, out=tmp_path / "fc")
    fc.fit(df, val_size=200, test_size=200)
    r = fc.run.results
    assert r["data"]["columns"] == ["HUFL", "MUFL", "OT"]
    # The last 200 steps are the test split: 200 - 24 + 1 windows of 24 steps x 3 series.
    assert r["test"]["count"] == (200 - 24 + 1) * 24 * 3
    out = fc.predict()
    assert list(out.columns) == ["unique_id", "ds", "dlinear"]
    assert len(out) == 3 * 24 and list(out["unique_id"].unique()) == ["HUFL", "MUFL", "OT"]
    first = out[out["unique_id"] == "OT"]["ds"]
    assert first.iloc[0] == wide["date"].iloc[-1] + np.timedelta64(1, "h")
    # predict(df) on the same frame: the same numbers.
    assert np.array_equal(fc.predict(df)["dlinear"].to_numpy(), out["dlinear"].to_numpy())


def test_wide_polars_frame_and_quantile_columns(tmp_path):
    pl = pytest.importorskip("polars")
    wide = etth1(slice(0, 1200))[["date", "HUFL", "OT"]].rename(columns={"date": "ds"})
    fc = strata.Forecaster("transformer", h=12, input_size=48, train={"epochs": 1, "max_steps_per_epoch": 5, "batch_size": 16}, out=tmp_path / "fc", d_model=16, n_heads=2, e_layers=1, d_layers=1, d_ff=32, label_len=12, distribution="normal")
    out = fc.fit(pl.from_pandas(wide), val_size=150, test_size=150).predict()
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["ds", "HUFL", "HUFL-lo-80", "HUFL-median", "HUFL-hi-80", "OT", "OT-lo-80", "OT-median", "OT-hi-80"]
    lo, hi = out["OT-lo-80"].to_numpy(), out["OT-hi-80"].to_numpy()
    assert (lo <= hi).all() and (lo < hi).any()


def test_long_frame_with_a_repeated_timestamp_is_refused():
    df = long_frame(etth1(slice(0, 300)))
    pd = pytest.importorskip("pandas")
    df = pd.concat([df, df.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match="more than one row"):
        strata.Forecaster("dlinear", h=12, input_size=48).fit(df, val_size=50, test_size=50)
