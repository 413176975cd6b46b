"""Sites: which data each federated client owns, as a strata run config.

Partitions (app config ``partition``):

- ``stations``: each site is one dataset of ``sites`` (``"etth1,etth2"``: ETDataset's two
  stations; ``"ettm1,ettm2"`` likewise). Channel-independent models (DLinear, PatchTST) share
  every parameter across sites whatever their columns.
- ``columns``: the columns of one ``dataset`` split into ``num-partitions`` contiguous groups, one
  per site (same timestamps, disjoint series); the union of the sites is the whole table, so the
  pooled (centralised) baseline is the plain dataset.
- ``regions``: the sensors of a spatio-temporal ``dataset`` (``los-loop``) cut into
  ``num-partitions`` connected-ish regions of equal size along the graph's Fiedler vector
  (spectral partitioning); each site holds its sensors' series and the graph among them. Per-node
  parameters (``local-params``, e.g. STID's ``node_emb``) stay on the site; the rest is shared.
"""

from __future__ import annotations

import csv
import gzip
import os
import tomllib
from pathlib import Path

import numpy as np


REGION_SOURCES = {"los-loop": ("los-loop/los_speed.csv", "los-loop/los_adj.csv", 288)}
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


def regions(adj: np.ndarray, n: int) -> list[np.ndarray]:
    """Split the graph's nodes into ``n`` equal parts along the Fiedler vector of its symmetrised
    Laplacian (nodes sorted by it, cut into contiguous runs): neighbours tend to share a part."""
    a = (np.abs(adj) + np.abs(adj.T)) / 2
    np.fill_diagonal(a, 0)
    lap = np.diag(a.sum(1)) - a
    _, vecs = np.linalg.eigh(lap)
    order = np.argsort(vecs[:, 1], kind="stable")
    return [np.sort(part) for part in np.array_split(order, n)]


def _region_files(dataset: str, pid: int, n: int, work: Path) -> tuple[Path, Path, int]:
    """Write site ``pid``'s sensors (signal ``[T, k]`` and graph ``[k, k]`` as .npy)."""
    if dataset not in REGION_SOURCES:
        raise ValueError(f"partition 'regions': dataset '{dataset}'; expected one of {sorted(REGION_SOURCES)}")
    signal_file, graph_file, steps_per_day = REGION_SOURCES[dataset]
    signal_out, graph_out = work / f"{dataset}-region-{pid}-of-{n}.npy", work / f"{dataset}-region-{pid}-of-{n}.graph.npy"
    if not (signal_out.exists() and graph_out.exists()):
        signal = np.loadtxt(data_root() / signal_file, delimiter=",", skiprows=1, dtype=np.float32)
        adj = np.loadtxt(data_root() / graph_file, delimiter=",", dtype=np.float32)
        nodes = regions(adj, n)[pid]
        work.mkdir(parents=True, exist_ok=True)
        for out, arr in ((signal_out, signal[:, nodes]), (graph_out, adj[np.ix_(nodes, nodes)])):
            tmp = out.with_suffix(".tmp.npy")
            np.save(tmp, np.ascontiguousarray(arr))
            os.replace(tmp, out)
    return signal_out, graph_out, steps_per_day


def local_params(c) -> list[str]:
    """Parameter-path pieces that stay on the sites (``local-params = "node_emb"``)."""
    return [p.strip() for p in str(c.get("local-params", "")).split(",") if p.strip()]


def is_local(name: str, c) -> bool:
    return any(piece in name for piece in local_params(c))


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
    elif partition == "regions":
        signal, graph, steps_per_day = _region_files(str(c.get("dataset", "los-loop")), pid, n, work)
        data |= {"dataset": "spatial", "path": str(signal), "graph": str(graph), "steps_per_day": steps_per_day}
    else:
        raise ValueError(f"partition '{partition}': expected 'stations', 'columns' or 'regions'")
    return {"name": f"site-{pid}", "data": data, "model": model_table(c), "train": train_table(c)}


def initial_config(c, work: Path) -> dict:
    """A run config with the sites' model and shapes on a table made up for it (seeded noise,
    ``channels`` columns or sensors): the server builds the initial weights without any site's
    data."""
    channels = int(c.get("channels", 7))
    if str(c.get("partition", "stations")) == "regions":
        steps_per_day = REGION_SOURCES.get(str(c.get("dataset", "los-loop")), (None, None, 288))[2]
        signal, graph = work / f"init-{channels}-nodes.npy", work / f"init-{channels}-nodes.graph.npy"
        if not signal.exists():
            work.mkdir(parents=True, exist_ok=True)
            np.save(graph, np.eye(channels, dtype=np.float32))
            np.save(signal, np.random.default_rng(0).standard_normal((2 * steps_per_day, channels)).astype(np.float32))
        data = {"dataset": "spatial", "path": str(signal), "graph": str(graph), "steps_per_day": steps_per_day, "seq_len": int(c.get("seq-len", 12)), "pred_len": int(c.get("pred-len", 12))}
        return {"name": "initial", "data": data, "model": model_table(c), "train": {**train_table(c), "epochs": 0}}
    # Enough rows that the 7:1:2 split leaves every split a window.
    rows = 20 * (int(c.get("seq-len", 96)) + int(c.get("pred-len", 96))) + 100
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


