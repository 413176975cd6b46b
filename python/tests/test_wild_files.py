"""Files written by polars (an independent Parquet / Arrow writer) read as strata reads CSV."""

import datetime as dt

import numpy as np
import pytest
import strata


def long_frame(pl):
    """Three hourly series of different spans; `b` misses one hour."""
    rows = []
    start = dt.datetime(2024, 1, 1)
    for k, uid in enumerate(["b", "a", "c"]):
        for t in range(5 * k, 400):
            if uid == "b" and t == 200:
                continue
            rows.append((uid, start + dt.timedelta(hours=t), float(np.sin(0.2 * t + k) * 5 + 20), float(np.cos(0.05 * t))))
    return pl.DataFrame(rows, schema=["unique_id", "ds", "y", "temp"], orient="row")


@pytest.mark.parametrize("compression", ["zstd", "snappy", "lz4"])
def test_parquet_and_arrow_from_polars_train_as_their_csv(tmp_path, compression):
    pl = pytest.importorskip("polars")
    df = long_frame(pl)
    df.write_csv(tmp_path / "long.csv", datetime_format="%Y-%m-%d %H:%M:%S")
    df.write_parquet(tmp_path / "long.parquet", compression=compression)
    ipc = "lz4" if compression == "lz4" else "zstd"
    df.write_ipc(tmp_path / "long.arrow", compression=ipc)
    runs = {}
    for name in ["long.csv", "long.parquet", "long.arrow"]:
        config = {
            "data": {"dataset": "custom", "path": str(tmp_path / name), "seq_len": 24, "pred_len": 6, "columns": ["temp"]},
            "model": {"name": "dlinear"},
            "train": {"epochs": 1, "batch_size": 16, "seed": 3},
        }
        runs[name] = strata.train(config, tmp_path / f"run_{name}")
    csv = runs["long.csv"].results
    assert csv["data"]["columns"] == ["a:y", "a:temp", "b:y", "b:temp", "c:y", "c:temp"]
    assert csv["data"]["read"]["gaps"] == [["a", 5], ["b", 1], ["c", 10]]
    for name in ["long.parquet", "long.arrow"]:
        other = runs[name].results
        assert other["data"]["columns"] == csv["data"]["columns"]
        assert other["test"]["mse"] == pytest.approx(csv["test"]["mse"], rel=1e-6), name


def test_inspect_reports_the_layout_and_the_first_problem(tmp_path):
    pl = pytest.importorskip("polars")
    df = long_frame(pl)
    df.write_parquet(tmp_path / "long.parquet")
    text = strata.inspect(tmp_path / "long.parquet")
    assert "layout: long" in text
    assert "nodes: 3 (a, b, c)" in text
    assert "gaps: 16 missing time steps inserted" in text
    assert text.rstrip().endswith("no problems: strata reads this as it is")
    # A text column is the first problem until it is encoded.
    wide = pl.DataFrame({"date": [f"2024-01-01 {h:02d}:00:00" for h in range(4)], "wd": ["N", "S", "N", "E"], "OT": [1.0, 2.0, 3.0, 4.0]})
    wide.write_csv(tmp_path / "wide.csv")
    text = strata.inspect(tmp_path / "wide.csv")
    assert "first problem:" in text and "column 2 (wd): cannot parse 'N' as a number" in text
    text = strata.inspect(tmp_path / "wide.csv", categorical="onehot")
    assert "text column wd: 3 values: E, N, S" in text
    assert "values: 4 columns wd=E, wd=N, wd=S, OT" in text
