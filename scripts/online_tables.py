#!/usr/bin/env python3
"""Markdown tables of `strata online` runs (RESULTS.md, "Online forecasting").

Usage: scripts/online_tables.py runs/online [runs/online_fsnet ...]
Reads every <folder>/*/online/online.json and prints, per dataset, the cumulative MSE / MAE of
each (model, strategy, reveal, calendar features) at each horizon, with the ms per step.
"""
import json
import pathlib
import sys
from collections import defaultdict

cells = defaultdict(dict)
for folder in sys.argv[1:]:
    for f in sorted(pathlib.Path(folder).glob("*/online/online.json")):
        r = json.loads(f.read_text())
        c = r["config"]
        key = (c["data"]["dataset"], c["model"]["name"], c["online"]["strategy"], c["online"].get("reveal", "immediate"), c["data"].get("time_features", "timef"))
        cells[key][c["data"]["pred_len"]] = (r["mse"], r["mae"], r["seconds_per_step"], r["steps"])

label = {"none": "frozen", "ogd": "OGD", "er": "ER", "derpp": "DER++", "retrain": "re-train"}
for dataset in sorted({k[0] for k in cells}):
    rows = sorted((k for k in cells if k[0] == dataset), key=lambda k: (k[4] != "calendar", k[1] != "tcn", ["none", "ogd", "er", "derpp", "retrain"].index(k[2]), k[3]))
    horizons = sorted({h for k in rows for h in cells[k]})
    print(f"\n{dataset}: cumulative MSE / MAE (ms per step)\n")
    print("| model | update | reveal | calendar | " + " | ".join(f"H={h}" for h in horizons) + " |")
    print("|---|---|---|---|" + "---|" * len(horizons))
    for k in rows:
        vals = [f"{cells[k][h][0]:.3f} / {cells[k][h][1]:.3f} ({1e3 * cells[k][h][2]:.0f})" if h in cells[k] else "-" for h in horizons]
        print(f"| {k[1]} | {label.get(k[2], k[2])} | {k[3]} | {k[4]} | " + " | ".join(vals) + " |")
