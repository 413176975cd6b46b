"""Bad input raises the right exception with strata's one-line message."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import strata
from conftest import SMALL, etth1


def test_wrong_columns(small_run):
    history = etth1(slice(9000, 9100)).drop(columns=["HULL"])
    with pytest.raises(strata.StrataError, match="HULL"):
        small_run.predict(history)
    assert issubclass(strata.StrataError, ValueError)


def test_too_short_a_history(small_run):
    with pytest.raises(ValueError, match=r"48"):
        small_run.predict(etth1(slice(9000, 9020)))


def test_wrong_dtypes(small_run):
    history = etth1(slice(9000, 9100))
    with pytest.raises(TypeError, match="column 'OT'.*numbers expected"):
        small_run.predict(history.assign(OT=history["OT"].astype(str)))
    with pytest.raises(TypeError, match="column 'date'"):
        small_run.predict(history.assign(date=np.arange(len(history))))
    with pytest.raises(TypeError):
        small_run.predict("not a frame")


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.toml"):
        strata.Run.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="cannot read config"):
        strata.train(tmp_path / "missing.toml")
    cfg = {**SMALL, "data": {**SMALL["data"], "dataset": "custom", "path": str(tmp_path / "absent.csv")}}
    with pytest.raises(FileNotFoundError, match="absent.csv: file not found"):
        strata.train(cfg, out=tmp_path / "r")


def test_a_bad_setting_names_its_key(tmp_path):
    cfg = {**SMALL, "train": {**SMALL["train"], "epochs": "many"}}
    with pytest.raises(strata.StrataError, match="train.epochs"):
        strata.train(cfg, out=tmp_path / "r")
    with pytest.raises(strata.StrataError, match="unknown dataset 'nope'"):
        strata.train({**SMALL, "data": {**SMALL["data"], "dataset": "nope"}}, out=tmp_path / "r2")


def test_python_m_strata_mirrors_the_cli():
    p = subprocess.run([sys.executable, "-m", "strata", "eval", "/no/such/run"], capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr.strip().startswith("error: /no/such/run is not a run folder")
    p = subprocess.run([sys.executable, "-m", "strata", "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "forecast" in p.stdout


def test_ctrl_c_stops_training_at_a_step_and_keeps_the_checkpoint(tmp_path):
    """SIGINT while training (the GIL released): KeyboardInterrupt naming the epoch; the run
    folder holds the last finished epoch, and training it again resumes there."""
    script = textwrap.dedent(f"""
        import json, os, signal, threading, strata
        cfg = {SMALL!r}
        cfg["train"] = dict(cfg["train"], epochs=100000, max_steps_per_epoch=2, patience=100000)
        out = {str(tmp_path / "run")!r}
        threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            strata.train(cfg, out=out)
            print("not interrupted")
        except KeyboardInterrupt as e:
            state = json.load(open(os.path.join(out, "state.json")))
            print("interrupted", e, "|", state["epochs_done"])
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip().splitlines()[-1]
    assert line.startswith("interrupted interrupted during epoch "), line
    epoch = int(line.split("during epoch ")[1].split(":")[0])
    assert int(line.split("|")[1]) == epoch - 1 >= 1, "the finished epochs are kept"
