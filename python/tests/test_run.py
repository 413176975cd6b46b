"""Runs from Python against the CLI: the same forecast, the same scores."""

import csv
import json

import numpy as np
import pytest
import strata
from conftest import SMALL, etth1, run_cli


def read_forecast_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_predict_equals_the_cli_forecast_csv(small_run, tmp_path):
    history = etth1(slice(9000, 9100))
    history.to_csv(tmp_path / "history.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")
    run_cli("forecast", "--model", small_run.path, "--input", tmp_path / "history.csv", "--out", tmp_path / "cli.csv")
    header, rows = read_forecast_csv(tmp_path / "cli.csv")
    ours = small_run.predict(history)
    assert list(ours.columns) == ["ds", *header[1:]], "date column, then the model's columns"
    assert len(ours) == len(rows) == 12
    expected = np.array([[float(v) for v in r[1:]] for r in rows])
    assert np.abs(ours[header[1:]].to_numpy() - expected).max() <= 1e-6 * max(1.0, np.abs(expected).max())
    # The forecast rows follow the history hour by hour.
    next_hour = (history["date"].iloc[-1] + np.timedelta64(1, "h")).strftime("%Y-%m-%d %H:%M:%S")
    assert str(ours["ds"].iloc[0]) == rows[0][0] == next_hour
    assert (ours["ds"].diff().dropna().dt.total_seconds() == 3600).all()


def test_predict_takes_polars_numpy_and_an_origin(small_run):
    pl = pytest.importorskip("polars")
    history = etth1(slice(9000, 9100))
    at = history["date"].iloc[95].strftime("%Y-%m-%d %H:%M:%S")
    by_pandas = small_run.predict(history, at=at)
    by_polars = small_run.predict(pl.from_pandas(history), at=at)
    assert isinstance(by_polars, pl.DataFrame)
    assert np.array_equal(by_polars["OT"].to_numpy(), by_pandas["OT"].to_numpy())
    # A bare array is in the model's column order, without dates: the last 48 rows to 00:00.
    values = history.drop(columns=["date"]).to_numpy()[:96]
    by_array = small_run.predict(values)
    assert np.array_equal(by_array["OT"], by_pandas["OT"].to_numpy())


def test_a_model_trained_in_python_scores_as_the_cli_trained_one(small_run, tmp_path):
    toml = tmp_path / "small.toml"
    lines = [f'name = "{SMALL["name"]}"']
    for section in ("data", "model", "train"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in SMALL[section].items()]
    toml.write_text("\n".join(lines) + "\n")
    run_cli("train", "--config", toml, "--out", tmp_path / "cli_run", "--fresh")
    cli = json.loads((tmp_path / "cli_run" / "results.json").read_text())
    ours = small_run.results
    for split in ("val", "test"):
        for metric in ("mse", "mae"):
            assert ours[split][metric] == pytest.approx(cli[split][metric], rel=1e-6), (split, metric)
    # evaluate() scores the saved best checkpoint again: the same numbers.
    assert small_run.evaluate("test")["mse"] == pytest.approx(cli["test"]["mse"], rel=1e-6)


def test_fit_continues_training_from_the_last_checkpoint(run_copy):
    state = json.loads((run_copy.path / "state.json").read_text())
    assert state["epochs_done"] == 1 and state["finished"]
    run_copy.fit(epochs=2)
    state = json.loads((run_copy.path / "state.json").read_text())
    assert state["epochs_done"] == 3 and len(state["history"]) == 3
    assert run_copy.results["training"]["resumed_at_epoch"] == 1
    assert run_copy.results["config"]["train"]["epochs"] == 3


def test_save_copies_the_run_and_train_accepts_a_toml_path_with_overrides(small_run, tmp_path):
    saved = small_run.save(tmp_path / "saved")
    assert (saved.path / "best.bpk").read_bytes() == (small_run.path / "best.bpk").read_bytes()
    with pytest.raises(FileExistsError):
        small_run.save(tmp_path / "saved")
    # A TOML path plus overrides (as `--set`): a quickstart-sized run of the repo's config.
    from conftest import REPO

    r = strata.train(REPO / "configs" / "etth1_dlinear_336_96.toml", out=tmp_path / "toml_run", overrides={"train.epochs": 1, "train.max_steps_per_epoch": 5, "data.seq_len": 48, "data.pred_len": 12})
    assert r.results["config"]["data"]["seq_len"] == 48 and r.results["test"]["count"] > 0


def test_fedprox_term_holds_the_weights_to_where_the_fit_started(tmp_path):
    """The proximal term mu/2 ||w - w0||^2 pulls toward w0: the larger mu, the less the same
    20 SGD steps move the weights (mu = 0 is plain training)."""
    cfg = {**SMALL, "train": {**SMALL["train"], "epochs": 0, "optimizer": "sgd", "lr": 0.005, "max_steps_per_epoch": 20}}
    moved = []
    for mu in (0.0, 10.0, 100.0):
        r = strata.train(cfg, out=tmp_path / f"mu{mu}", fresh=True)
        w0 = r.get_weights()
        r.fit(1, proximal_mu=mu)
        w1 = r.get_weights("last")
        moved.append(sum(float(((w1[k] - w0[k]) ** 2).sum()) for k in w0) ** 0.5)
        assert r.results["config"]["train"]["proximal_mu"] == mu
    assert moved[0] > moved[1] > moved[2] > 0, moved
    with pytest.raises(strata.StrataError, match="proximal_mu"):
        r.fit(1, proximal_mu=-1.0)
