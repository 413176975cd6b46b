#!/usr/bin/env bash
# Dynamic graphs on a SYNTHETIC process whose diffusion follows a graph redrawn every 30 steps
# (`strata synth --dynamic-graph`, strata_data::dynamic_diffusion): each model given each window's
# graph against the same model given the time-averaged graph (data.dynamic_graph = "mean"),
# 3 seeds, 15 epochs, test masked MAE. Resumable: a finished run folder is skipped.
#   bash scripts/dynamic_graph_experiment.sh [OUT]   (default runs/dynamic_graph)
set -euo pipefail
out=${1:-runs/dynamic_graph}
strata=${STRATA_BIN:-target/release/strata}
mkdir -p "$out"
"$strata" synth --dynamic-graph --seed 7 --out "$out/data" > /dev/null
data="$out/data/diffusion.json"
for model in gwnet stgcn mtgnn; do
  extra=""
  [ "$model" = mtgnn ] && extra=$'prior = true\nsubgraph_size = 6'
  for graph in window mean; do
    dyn=""
    [ "$graph" = mean ] && dyn='dynamic_graph = "mean"'
    for seed in 1 2 3; do
      run="$out/${model}_${graph}_s$seed"
      [ -f "$run/results.json" ] && continue
      cat > "$run.toml" <<TOML
name = "${model}_${graph}_s$seed"
[data]
dataset = "spatial"
path = "$data"
graph = "$data"
seq_len = 12
pred_len = 3
$dyn
[model]
name = "$model"
$extra
[train]
epochs = 15
batch_size = 32
lr = 0.002
loss = "mae"
seed = $seed
TOML
      "$strata" train --config "$run.toml" --out "$run" --fresh > "$run.log" 2>&1
    done
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
print("| model | graph | test MAE (3 seeds) | horizon 3 MAE | s per run |")
print("|---|---|---|---|---|")
for model in ["gwnet", "stgcn", "mtgnn"]:
    for graph in ["window", "mean"]:
        r = [json.load(open(f"{out}/{model}_{graph}_s{s}/results.json")) for s in (1, 2, 3)]
        mae = [x["spatial"]["test"]["average"]["mae"] for x in r]
        h3 = [x["spatial"]["test"]["horizons"][-1]["mae"] for x in r]
        wall = statistics.mean(x["wall_seconds"] for x in r)
        name = "each window's graph" if graph == "window" else "time-averaged graph"
        print(f"| {model}{' (prior)' if model == 'mtgnn' else ''} | {name} | {statistics.mean(mae):.4f} ± {statistics.stdev(mae):.4f} | {statistics.mean(h3):.4f} | {wall:.1f} |")
PY
