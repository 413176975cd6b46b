"""Federated vs each region alone vs pooled, on a sensor graph split into regions (Flower, loopback).

    STRATA_DATA=../shared/data python python/examples/flower/regions_experiment.py --out runs/flower_regions

los-loop's 207 sensors in 2 spectral regions (104 / 103 sensors), STID 12 -> 12 (the traffic
protocol: masked MAE / RMSE on the original scale). Per-sensor embeddings (``node_emb``) stay on
the sites; everything else is averaged (FedAvg). Every arm trains ``--rounds`` epochs' worth:
federated = rounds of one local epoch (final global model, each site with its own embeddings),
alone = each region on its own (best validation epoch), pooled = all 207 sensors in one model
(best validation epoch). Overall = over all sensors (count-weighted). Arms are kept as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import strata
from strata.flower.local import run_local
from strata.flower.sites import site_config

APP = Path(__file__).resolve().parent
BASE = {"partition": "regions", "dataset": "los-loop", "model": "stid", "local-params": "node_emb", "seq-len": 12, "pred-len": 12, "lr": 0.002, "batch-size": 32}


def scores(results: dict) -> dict:
    t = results["test"]
    return {"mae": t["mae"], "rmse": t["rmse"], "count": t["count"]}


def overall(sites: list[dict]) -> dict:
    n = sum(s["count"] for s in sites)
    return {"mae": sum(s["mae"] * s["count"] for s in sites) / n, "rmse": math.sqrt(sum(s["rmse"] ** 2 * s["count"] for s in sites) / n)}


def arm(path: Path, fn) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    start = time.time()
    r = fn()
    r["wall_seconds"] = time.time() - start
    path.write_text(json.dumps(r, indent=2))
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/flower_regions")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2021, 2022, 2023])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = {"federated": [], "alone": [], "pooled": []}
    for seed in args.seeds:
        c = {**BASE, "seed": seed, "local-epochs": 1, "patience": 3}
        w = out / f"seed{seed}"

        def fed():
            cfg = " ".join(f"{k}={json.dumps(v) if isinstance(v, str) else v}" for k, v in c.items() if k != "patience").replace('"', "'")
            run_local(APP, sites=2, run_config=f"{cfg} num-server-rounds={args.rounds} work-dir='{w / 'fed'}'", timeout=3600, logs=w / "fed" / "logs")
            return {"sites": [scores({"test": strata.Run(w / "fed" / f"site-{i}").evaluate("test")}) for i in range(2)]}

        def alone():
            sites = []
            for pid in range(2):
                cfg = site_config(c, pid, 2, w / "alone")
                cfg["train"] |= {"epochs": args.rounds, "patience": 3}
                sites.append(scores(strata.train(cfg, out=w / "alone" / f"region-{pid}", fresh=True).results))
            return {"sites": sites}

        def pooled():
            cfg = {"data": {"dataset": "los-loop", "seq_len": 12, "pred_len": 12}, "model": {"name": "stid"}, "train": {"epochs": args.rounds, "batch_size": 32, "lr": 0.002, "patience": 3, "seed": seed, "schedule": "constant"}}
            return {"sites": [scores(strata.train(cfg, out=w / "pooled", fresh=True).results)]}

        for name, fn in (("federated", fed), ("alone", alone), ("pooled", pooled)):
            r = arm(out / f"seed{seed}_{name}.json", fn)
            rows[name].append({**overall(r["sites"]), "sites": r["sites"], "wall": r["wall_seconds"]})
    print("| arm | region 1 MAE | region 2 MAE | overall MAE | overall RMSE | wall s |")
    print("|---|---|---|---|---|---|")
    for name, rs in rows.items():
        cell = lambda xs: f"{np.mean(xs):.4f} ± {np.std(xs):.4f}"  # noqa: E731
        regions = [cell([r["sites"][i]["mae"] for r in rs]) for i in range(2)] if name != "pooled" else ["-", "-"]
        print(f"| {name} | {regions[0]} | {regions[1]} | {cell([r['mae'] for r in rs])} | {cell([r['rmse'] for r in rs])} | {np.mean([r['wall'] for r in rs]):.0f} |")
    (out / "summary.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
