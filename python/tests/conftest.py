"""Shared fixtures: the real data (STRATA_DATA, default ../shared/data beside the repository), a
small DLinear run on ETTh1 trained once per session, and the strata CLI to compare with."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("STRATA_DATA", REPO.parent / "shared" / "data")).resolve()
os.environ["STRATA_DATA"] = str(DATA)

# A run that trains in seconds on two cores: DLinear, 48 -> 12, one short epoch.
SMALL = {
    "name": "py_small",
    "data": {"dataset": "etth1", "seq_len": 48, "pred_len": 12},
    "model": {"name": "dlinear"},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.005, "max_steps_per_epoch": 30, "seed": 7},
}


def cli() -> list[str]:
    """The strata binary (STRATA_BIN, else target/release/strata); `python -m strata` if absent."""
    for b in (os.environ.get("STRATA_BIN"), REPO / "target" / "release" / "strata"):
        if b and Path(b).is_file():
            return [str(b)]
    return [sys.executable, "-m", "strata"]


def run_cli(*args, cwd=None) -> str:
    p = subprocess.run([*cli(), *map(str, args)], capture_output=True, text=True, cwd=cwd)
    assert p.returncode == 0, f"strata {' '.join(map(str, args))} failed: {p.stderr}"
    return p.stdout


def etth1(rows: slice):
    """ETTh1 rows as a pandas frame with a `date` column (read by pandas, not by strata)."""
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(DATA / "ETTh1" / "ETTh1.csv", parse_dates=["date"])
    return df.iloc[rows].reset_index(drop=True)


@pytest.fixture(scope="session")
def data_root() -> Path:
    if not (DATA / "ETTh1" / "ETTh1.csv").exists():
        pytest.fail(f"real data not found at {DATA}: set STRATA_DATA")
    return DATA


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, data_root):
    import strata

    return strata.train(SMALL, out=tmp_path_factory.mktemp("runs") / "small", fresh=True)


@pytest.fixture()
def run_copy(small_run, tmp_path):
    """A private copy of the small run, for tests that change it."""
    import strata

    dst = tmp_path / "copy"
    shutil.copytree(small_run.path, dst)
    return strata.Run.load(dst)


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
