"""Federated vs each site alone vs pooled (centralised) training, on Flower over loopback.

    STRATA_DATA=../shared/data python python/examples/flower/experiment.py --out runs/flower_experiment

Sites: ETDataset's two stations (ETTh1, ETTh2), each keeping its data. Every arm trains DLinear
(96 -> 96, Adam, lr 0.005, batch 32, constant rate) for the same number of epochs over its data:
federated = ``--rounds`` rounds of one local epoch (FedAvg, weighted by training windows; the final
global model), alone = each site ``--rounds`` epochs on its own, pooled = ``--rounds`` epochs on
both stations' columns in one table (ETTh's 12/4/4-month split). Alone and pooled keep their best
validation epoch. Each arm is scored on each site's test split. Results are written per seed and
arm as JSON (a finished arm is skipped when the script runs again) and printed as a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

import strata
from strata.flower.local import run_local
from strata.flower.sites import data_root

SITES = ["etth1", "etth2"]
FILES = {"etth1": "ETTh1/ETTh1.csv", "etth2": "ETTh2/ETTh2.csv"}
APP = Path(__file__).resolve().parent
APP_SECAGG = APP.parent / "flower-secagg"


def site_cfg(dataset: str, seed: int, epochs: int, args) -> dict:
    return {"data": {"dataset": dataset, "seq_len": args.seq_len, "pred_len": args.pred_len}, "model": {"name": "dlinear"}, "train": {"epochs": epochs, "batch_size": 32, "lr": 0.005, "schedule": "constant", "patience": 3, "seed": seed}}


def score_at_sites(weights: dict, seed: int, work: Path, args) -> dict:
    """Each site's val and test scores of ``weights`` (a scratch run per site)."""
    out = {}
    for s in SITES:
        run = strata.train(site_cfg(s, seed, 0, args), out=work / f"score-{s}", fresh=True)
        run.set_weights(weights)
        val, test = run.evaluate("val"), run.evaluate("test")
        out[s] = {"val_mse": val["mse"], "test_mse": test["mse"], "test_mae": test["mae"]}
    return out


def pooled_csv(work: Path) -> Path:
    """ETTh1's and ETTh2's columns side by side (same timestamps), the 12/4/4 months kept."""
    path = work / "etth12.csv"
    if path.exists():
        return path
    tables = [list(csv.reader(open(data_root() / FILES[s]))) for s in SITES]
    assert all(a[0] == b[0] for a, b in zip(*tables)), "ETTh1 and ETTh2 share their timestamps"
    work.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".tmp"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["date", *(f"{s}_{c}" for s, t in zip(SITES, tables) for c in t[0][1:])])
        for rows in list(zip(*tables))[1:14401]:
            w.writerow([rows[0][0], *(v for r in rows for v in r[1:])])
    os.replace(path.with_suffix(".tmp"), path)
    return path


def arm(name: str, seed: int, out: Path, fn) -> dict:
    path = out / f"seed{seed}_{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    start = time.time()
    r = fn()
    r["wall_seconds"] = time.time() - start
    path.write_text(json.dumps(r, indent=2))
    return r


def federated(seed: int, work: Path, args, extra: str = "", app: Path = APP) -> dict:
    cfg = f"num-server-rounds={args.rounds} seq-len={args.seq_len} pred-len={args.pred_len} seed={seed} local-epochs=1 lr=0.005 batch-size=32 work-dir='{work}' {extra}"
    run_local(app, sites=2, run_config=cfg, timeout=3600, logs=work / "logs")
    history = json.loads((work / "server" / "history.json").read_text())
    final = dict(np.load(work / "server" / "global.npz"))
    if history.get("secagg"):
        val_by_round = [history["val_loss_by_round"][str(r)] for r in range(1, args.rounds + 1)]
    else:
        val_by_round = [history["evaluate_metrics"][str(r)]["val-mse"] for r in range(1, args.rounds + 1)]
    return {"sites": score_at_sites(final, seed, work, args), "val_by_round": val_by_round, "payload_bytes_per_round": 2 * len(SITES) * history["model_bytes"], "rejected": history.get("rejected", [])}


def flower_only(seed: int, work: Path, args, extra: str, app: Path, sites: int = 3) -> dict:
    """A run scored by the sites' own last-round evaluation (test windows-weighted)."""
    cfg = f"num-server-rounds={args.rounds} seq-len={args.seq_len} pred-len={args.pred_len} seed={seed} local-epochs=1 lr=0.005 batch-size=32 work-dir='{work}' {extra}"
    run_local(app, sites=sites, run_config=cfg, timeout=3600, logs=work / "logs")
    history = json.loads((work / "server" / "history.json").read_text())
    last = history["evaluate_metrics"][str(args.rounds)]
    return {"test_mse": last["test-mse"], "test_mae": last["test-mae"], "server_seconds": history["wall_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/flower_experiment")
    ap.add_argument("--seeds", type=int, nargs="+", default=[2021, 2022, 2023])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seq-len", type=int, default=96)
    ap.add_argument("--pred-len", type=int, default=96)
    ap.add_argument("--dp", default="clipping-norm=0.5 noise-multiplier=0.1", help="the DP arm's settings (first seed)")
    ap.add_argument("--secagg", action=argparse.BooleanOptionalAction, default=True, help="a SecAgg+ arm (first seed)")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for seed in args.seeds:
        w = out / f"seed{seed}"
        r = {"federated": arm("federated", seed, out, lambda: federated(seed, w / "fed", args))}
        alone, wall = {}, 0.0
        for s in SITES:
            def one(s=s):
                run = strata.train(site_cfg(s, seed, args.rounds, args), out=w / f"alone-{s}", fresh=True)
                return {"sites": {s: {"val_mse": run.results["val"]["mse"], "test_mse": run.results["test"]["mse"], "test_mae": run.results["test"]["mae"]}}}
            a = arm(f"alone_{s}", seed, out, one)
            alone |= a["sites"]
            wall += a["wall_seconds"]
        r["alone"] = {"sites": alone, "wall_seconds": wall}

        def pooled():
            cfg = {"data": {"dataset": "custom", "path": str(pooled_csv(out)), "target": "etth2_OT", "seq_len": args.seq_len, "pred_len": args.pred_len, "val_size": 2880, "test_size": 2880}, "model": {"name": "dlinear"}, "train": site_cfg("etth1", seed, args.rounds, args)["train"]}
            run = strata.train(cfg, out=w / "pooled", fresh=True)
            return {"sites": score_at_sites(run.get_weights(), seed, w / "pooled-score", args)}

        r["pooled"] = arm("pooled", seed, out, pooled)
        results[seed] = r
    if args.dp:
        seed = args.seeds[0]
        extra = "dp='server-fixed' " + args.dp
        results["dp"] = arm("federated_dp", seed, out, lambda: federated(seed, out / f"seed{seed}" / "fed-dp", args, extra))
    if args.secagg:
        # SecAgg+ needs 3 sites or more: ETTh1's columns in 3 groups, plain FedAvg vs SecAgg+.
        seed = args.seeds[0]
        three = "partition='columns' dataset='etth1' min-nodes=3"
        for name, app in (("columns3_plain", APP), ("columns3_secagg", APP_SECAGG)):
            results[name] = arm(name, seed, out, lambda app=app, name=name: flower_only(seed, out / f"seed{seed}" / name, args, three, app))
    (out / "summary.json").write_text(json.dumps(results, indent=2))
    print_table(results, args)


def print_table(results: dict, args) -> None:
    seeds = [k for k in results if isinstance(k, int)]
    print(f"| arm | ETTh1 test MSE | ETTh1 test MAE | ETTh2 test MSE | ETTh2 test MAE | overall MSE | overall MAE | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("federated", "alone", "pooled"):
        cells = []
        for s in SITES:
            for m in ("test_mse", "test_mae"):
                v = [results[k][name]["sites"][s][m] for k in seeds]
                cells.append(f"{np.mean(v):.4f} ± {np.std(v):.4f}")
        for m in ("test_mse", "test_mae"):
            v = [np.mean([results[k][name]["sites"][s][m] for s in SITES]) for k in seeds]
            cells.append(f"{np.mean(v):.4f} ± {np.std(v):.4f}")
        wall = [results[k][name].get("wall_seconds", float("nan")) for k in seeds]
        print(f"| {name} | " + " | ".join(cells) + f" | {np.mean(wall):.0f} |")
    for k in seeds:
        pooled_val = np.mean([results[k]["pooled"]["sites"][s]["val_mse"] for s in SITES])
        fed = results[k]["federated"]["val_by_round"]
        within = next((i + 1 for i, v in enumerate(fed) if v <= 1.05 * pooled_val), None)
        print(f"seed {k}: pooled val MSE {pooled_val:.4f}; federated val MSE by round {[round(v, 4) for v in fed]}; within 5% at round {within}; payload {results[k]['federated']['payload_bytes_per_round']} bytes/round")
    if "columns3_plain" in results:
        p, q = results["columns3_plain"], results["columns3_secagg"]
        print(f"ETTh1 columns in 3 sites, seed {seeds[0]}: FedAvg test MSE {p['test_mse']:.4f} MAE {p['test_mae']:.4f}, server {p['server_seconds']:.0f}s (wall {p['wall_seconds']:.0f}s); SecAgg+ test MSE {q['test_mse']:.4f} MAE {q['test_mae']:.4f}, server {q['server_seconds']:.0f}s (wall {q['wall_seconds']:.0f}s)")
    for key, label in (("dp", f"central DP ({args.dp})"),):
        if key in results:
            d = results[key]
            print(f"{label}, seed {seeds[0]}: test MSE " + ", ".join(f"{s} {d['sites'][s]['test_mse']:.4f}" for s in SITES) + f"; overall {np.mean([d['sites'][s]['test_mse'] for s in SITES]):.4f}; wall {d['wall_seconds']:.0f}s (plain federated: {results[seeds[0]]['federated']['wall_seconds']:.0f}s)")


if __name__ == "__main__":
    main()
