#!/usr/bin/env bash
# What static location covariates buy a spatio-temporal model (RESULTS.md, "Covariates on a
# sensor graph"): STID on los-loop (207 METR-LA sensors, 12 -> 12) with the sensors'
# latitude/longitude from DCRNN's metr-la_graph/graph_sensor_locations.csv as static covariates
# (data.covariates.static_file), with and without STID's learned node identity embedding.
# The training settings of configs/los-loop_stid.toml (100 epochs at most, patience 20), 3 seeds.
# Resumable: a finished run folder is skipped.
#   bash scripts/spatial_covariates_experiment.sh [OUT]   (default runs/spatial_covariates;
#   SEEDS="1" runs a subset of the seeds first)
set -euo pipefail
out=${1:-runs/spatial_covariates}
strata=${STRATA_BIN:-target/release/strata}
locations=${STRATA_DATA:-../shared/data}/metr-la_graph/graph_sensor_locations.csv
mkdir -p "$out"
arms="identity identity+coords coords none"
for arm in $arms; do
  for seed in ${SEEDS:-1 2 3}; do
    name="losloop_stid_${arm}_s$seed"
    run="$out/$name"
    [ -f "$run/results.json" ] && continue
    sets=(--set train.seed=$seed)
    case $arm in *coords*) sets+=(--set "data.covariates.static=[\"latitude\",\"longitude\"]" --set "data.covariates.static_file=\"$locations\"") ;; esac
    case $arm in coords|none) sets+=(--set model.node_dim=0) ;; esac
    "$strata" train --config configs/los-loop_stid.toml "${sets[@]}" --out "$run" > "$run.log" 2>&1
  done
done
python3 - "$out" "$arms" <<'PY'
import json, os, statistics, sys
out, arms = sys.argv[1], sys.argv[2].split()
label = {"identity": "learned node identity (STID)", "identity+coords": "identity + coordinates", "coords": "coordinates, no identity", "none": "neither"}
print("\nlos-loop, STID 12 -> 12: test masked MAE / RMSE / MAPE (all 12 steps), mean ± std over seeds\n")
print("| node features | MAE | RMSE | MAPE | epochs (best) | s per run |")
print("|---|---|---|---|---|---|")
for arm in arms:
    r = [json.load(open(p)) for p in (f"{out}/losloop_stid_{arm}_s{s}/results.json" for s in (1, 2, 3)) if os.path.exists(p)]
    if not r:
        continue
    get = lambda k: [x["spatial"]["test"]["average"][k] for x in r]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    mae, rmse, mape = get("mae"), get("rmse"), get("mape")
    ep = ", ".join(f'{x["training"]["epochs_run"]} ({x["training"]["best_epoch"]})' for x in r)
    wall = statistics.mean(x["wall_seconds"] for x in r)
    print(f"| {label[arm]} | {statistics.mean(mae):.3f} ± {sd(mae):.3f} | {statistics.mean(rmse):.3f} ± {sd(rmse):.3f} | {100*statistics.mean(mape):.2f}% | {ep} | {wall:.0f} ({len(r)} seeds) |")
PY
