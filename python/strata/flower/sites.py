"""Sites: which data each federated client owns, as a strata run config.

Partitions (app config ``partition``):

- ``stations``: each site is one dataset of ``sites`` (``"etth1,etth2"``: ETDataset's two
  stations; ``"ettm1,ettm2"`` likewise). Channel-independent models (DLinear, PatchTST) share
  every parameter across sites whatever their columns.
- ``columns``: the columns of one ``dataset`` split into ``num-partitions`` contiguous groups, one
  per site (same timestamps, disjoint series); the union of the sites is the whole table, so the
  pooled (centralised) baseline is the plain dataset.
"""

from __future__ import annotations

import csv
import gzip
import os
import tomllib
from pathlib import Path


STATION_FILES = {"etth1": "ETTh1/ETTh1.csv", "etth2": "ETTh2/ETTh2.csv", "ettm1": "ETTm1/ETTm1.csv.gz", "ettm2": "ETTm2/ETTm2.csv.gz"}


def data_root() -> Path:
    return Path(os.environ.get("STRATA_DATA", "../shared/data"))


def model_table(c) -> dict:
    """``[model]`` from ``model`` and ``model-settings`` (inline TOML: ``"d_model = 16, n_heads = 2"``)."""
    extra = tomllib.loads(f"m = {{ {c.get('model-settings', '')} }}")["m"]
    return {"name": str(c.get("model", "dlinear")), **extra}


def train_table(c) -> dict:
    t = {
        "epochs": int(c.get("local-epochs", 1)),
        "batch_size": int(c.get("batch-size", 32)),
        "lr": float(c.get("lr", 0.005)),
        "optimizer": str(c.get("optimizer", "adam")),
        "seed": int(c.get("seed", 2021)),
        # Local epochs are few: no early stopping inside a round, no learning-rate decay.
        "patience": 1_000_000,
        "schedule": "constant",
    }
    if int(c.get("max-steps", 0)) > 0:
        t["max_steps_per_epoch"] = int(c["max-steps"])
    return t


def _columns_file(dataset: str, pid: int, n: int, work: Path) -> tuple[Path, str]:
    """Write site ``pid``'s share of ``dataset``'s columns as a CSV; returns it and its last column."""
    src = data_root() / STATION_FILES.get(dataset, dataset)
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    names = header[1:]
    if n > len(names):
        raise ValueError(f"partition 'columns': {len(names)} columns of {src} cannot make {n} sites")
    bounds = [round(i * len(names) / n) for i in range(n + 1)]
    keep = list(range(1 + bounds[pid], 1 + bounds[pid + 1]))
    out = work / f"{src.name.split('.')[0]}-site-{pid}-of-{n}.csv"
    if not out.exists():
        work.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            for r in [header, *body]:
                w.writerow([r[0], *(r[j] for j in keep)])
        os.replace(tmp, out)
    return out, header[keep[-1]]


def site_config(c, pid: int, n: int, work: Path) -> dict:
    """The strata run config of site ``pid`` of ``n`` under the app config ``c``."""
    data = {"seq_len": int(c.get("seq-len", 96)), "pred_len": int(c.get("pred-len", 96))}
    partition = str(c.get("partition", "stations"))
    if partition == "stations":
        sites = [s.strip() for s in str(c.get("sites", "etth1,etth2")).split(",") if s.strip()]
        if len(sites) != n:
            raise ValueError(f"partition 'stations': sites = {sites} names {len(sites)} sites for {n} partitions")
        data["dataset"] = sites[pid]
    elif partition == "columns":
        path, target = _columns_file(str(c.get("dataset", "etth1")), pid, n, work)
        data |= {"dataset": "custom", "path": str(path), "target": target}
    else:
        raise ValueError(f"partition '{partition}': expected 'stations' or 'columns'")
    return {"name": f"site-{pid}", "data": data, "model": model_table(c), "train": train_table(c)}


def initial_config(c, work: Path) -> dict:
    """A run config with the sites' model and shapes on a table made up for it (seeded noise,
    ``channels`` columns): the server builds the initial weights without any site's data."""
    import numpy as np

    channels = int(c.get("channels", 7))
    rows = 4 * (int(c.get("seq-len", 96)) + int(c.get("pred-len", 96))) + 100
    path = work / f"init-{channels}.csv"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        values = np.random.default_rng(0).standard_normal((rows, channels))
        dates = np.datetime64("2020-01-01T00:00") + np.arange(rows).astype("timedelta64[h]")
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write("date," + ",".join(f"c{j}" for j in range(channels)) + "\n")
            for d, v in zip(np.datetime_as_string(dates, unit="s"), values):
                f.write(d.replace("T", " ") + "," + ",".join(f"{x:.6f}" for x in v) + "\n")
        os.replace(tmp, path)
    data = {"dataset": "custom", "path": str(path), "target": f"c{channels - 1}", "seq_len": int(c.get("seq-len", 96)), "pred_len": int(c.get("pred-len", 96))}
    return {"name": "initial", "data": data, "model": model_table(c), "train": {**train_table(c), "epochs": 0}}


