"""Covariates through the Python package (docs/covariates.md): a long pandas frame with
per-series covariates (past-observed, future-known over the horizon, static) trains and
forecasts; the horizon rows carry only the future-known column; without them the error says
what to add."""

import datetime as dt

import numpy as np
import pytest
import strata


def frame(pd, rows, horizon):
    recs = []
    start = dt.datetime(2013, 3, 1)
    for k, uid in enumerate(["north", "south"]):
        for t in range(rows + horizon):
            holiday = float((t // 24) % 7 == 5)
            temp = 5 + 3 * np.sin(0.26 * t + k)
            y = 10 * k + np.sin(2 * np.pi * t / 24) + 0.5 * temp + 2 * holiday
            if t >= rows:
                y, temp = np.nan, np.nan
            recs.append((uid, start + dt.timedelta(hours=t), y, temp, holiday, 100.0 + 50 * k))
    return pd.DataFrame(recs, columns=["unique_id", "ds", "y", "temp", "holiday", "elev"])


def test_long_frame_with_covariates_forecasts_and_needs_the_horizon_rows(tmp_path):
    pd = pytest.importorskip("pandas")
    path = tmp_path / "train.csv"
    frame(pd, 24 * 20, 0).to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
    config = {
        "data": {
            "dataset": "custom",
            "path": str(path),
            "features": "M",
            "seq_len": 24,
            "pred_len": 6,
            "covariates": {"past": ["temp"], "future": ["holiday"], "static": ["elev"]},
        },
        "model": {"name": "tide", "hidden_size": 32, "temporal_decoder_hidden": 16, "final_norm": False},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.003, "seed": 1},
    }
    run = strata.train(config, tmp_path / "run")
    out = run.predict(frame(pd, 48, 6))
    assert list(out.columns) == ["unique_id", "ds", "tide"]
    assert list(out["unique_id"].unique()) == ["north", "south"] and len(out) == 12
    # The forecast starts after the last row with a target, not after the horizon rows.
    assert out["ds"].iloc[0] == pd.Timestamp("2013-03-03 00:00:00")
    south = out[out["unique_id"] == "south"]["tide"].mean() - out[out["unique_id"] == "north"]["tide"].mean()
    assert abs(south - 10) < 3, south
    with pytest.raises(Exception, match="future-known covariate"):
        run.predict(frame(pd, 48, 0))
