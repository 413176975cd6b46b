"""Online forecasting from Python (`strata.online`) against the CLI: the same stream, the same
numbers; a config without an `online` section is refused with the fix."""

import json

import pytest
import strata
from conftest import run_cli

ONLINE = {
    "name": "py_online",
    "data": {"dataset": "etth2", "seq_len": 24, "pred_len": 4, "split_rows": [720, 240, 600]},
    "model": {"name": "dlinear"},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.005, "seed": 3},
    "online": {"strategy": "ogd", "checkpoint_every": 200},
}


def curve(folder):
    with open(f"{folder}/online/online_curve.csv") as f:
        return [float(line.split(",")[1]) for line in f.read().splitlines()[1:]]


def test_online_equals_the_cli_walk(tmp_path):
    r = strata.online(ONLINE, out=tmp_path / "py")
    assert r["steps"] == 600 - 4 + 1
    # The frozen walk from the same warm-up scores as the evaluation of its test split.
    frozen = strata.online(ONLINE, out=tmp_path / "frozen", overrides={"online.strategy": "none", "online.from": r["folder"] + "/warmup"})
    assert abs(frozen["mse"] - r["warmup_test_mse"]) <= 1e-5 * r["warmup_test_mse"]
    assert frozen["mse"] != r["mse"]
    cfg = tmp_path / "online.toml"
    toml = "\n".join(
        f"[{section}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) for section, values in ONLINE.items() if isinstance(values, dict)
    )
    cfg.write_text(toml)
    run_cli("online", "--config", cfg, "--out", tmp_path / "cli")
    cli = json.loads((tmp_path / "cli" / "online" / "online.json").read_text())
    assert cli["mse"] == r["mse"] and cli["mae"] == r["mae"]
    assert curve(tmp_path / "cli") == curve(r["folder"])


def test_a_config_without_online_is_refused(tmp_path):
    cfg = {k: v for k, v in ONLINE.items() if k != "online"}
    with pytest.raises(strata.StrataError, match="online"):
        strata.online(cfg, out=tmp_path / "x")
