#!/usr/bin/env bash
# What covariates buy (RESULTS.md, "Covariates"): the target OT of ETTh1 (the six load series
# as past-observed covariates) and of Weather (the twenty meteorological series), input 96,
# horizon 96, for TiDE, TimeXer and iTransformer given the target alone or the target with its
# covariates (the calendar is future-known in both), against DLinear (no covariates) and the
# MS way (every column a channel, OT scored). 3 seeds; TSLib's training defaults (10 epochs,
# batch 32, lr 1e-4, type1 halving, patience 3). Resumable: a finished run folder is skipped.
#   bash scripts/covariates_experiment.sh [OUT] [DATASETS]   (default runs/covariates "etth1 weather";
#   SEEDS="1" runs a subset of the seeds first)
set -euo pipefail
out=${1:-runs/covariates}
datasets=${2:-etth1 weather}
strata=${STRATA_BIN:-target/release/strata}
mkdir -p "$out"
model_block() {
  case $1 in
    tide) printf 'name = "tide"\nfinal_norm = false\n' ;;
    timexer) printf 'name = "timexer"\nd_model = 256\ne_layers = 1\n' ;;
    itransformer) printf 'name = "itransformer"\nd_model = 128\nd_ff = 128\n' ;;
    dlinear) printf 'name = "dlinear"\n' ;;
  esac
}
for ds in $datasets; do
  for spec in tide:alone tide:cov timexer:alone timexer:cov itransformer:alone itransformer:cov itransformer:ms dlinear:alone dlinear:ms; do
    model=${spec%%:*}; setting=${spec##*:}
    case $setting in
      alone) data='features = "S"' ;;
      cov) data=$'features = "S"\n[data.covariates]\npast = ["*"]' ;;
      ms) data='features = "MS"' ;;
    esac
    for seed in ${SEEDS:-1 2 3}; do
      name="${ds}_${model}_${setting}_s$seed"
      run="$out/$name"
      [ -f "$run/results.json" ] && continue
      cat > "$run.toml" <<TOML
name = "$name"
[model]
$(model_block "$model")
[train]
epochs = 10
batch_size = 32
lr = 0.0001
schedule = "type1"
patience = 3
seed = $seed
[data]
dataset = "$ds"
seq_len = 96
pred_len = 96
$data
TOML
      "$strata" train --config "$run.toml" --out "$run" > "$run.log" 2>&1
    done
  done
done
python3 - "$out" "$datasets" <<'PY'
import json, os, statistics, sys
out, datasets = sys.argv[1], sys.argv[2].split()
names = {"alone": "target alone (S)", "cov": "target + covariates", "ms": "every column a channel (MS)"}
for ds in datasets:
    print(f"\n{ds}: test MSE / MAE of OT (standardised), mean ± std over 3 seeds\n")
    print("| model | input | MSE | MAE | s per run |")
    print("|---|---|---|---|---|")
    for spec in ["tide:alone", "tide:cov", "timexer:alone", "timexer:cov", "itransformer:alone", "itransformer:cov", "itransformer:ms", "dlinear:alone", "dlinear:ms"]:
        model, setting = spec.split(":")
        runs = [f"{out}/{ds}_{model}_{setting}_s{s}/results.json" for s in (1, 2, 3)]
        r = [json.load(open(p)) for p in runs if os.path.exists(p)]
        if not r:
            continue
        mse = [x["test"]["mse"] for x in r]
        mae = [x["test"]["mae"] for x in r]
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
        wall = statistics.mean(x["wall_seconds"] for x in r)
        print(f"| {model} | {names[setting]} | {statistics.mean(mse):.5f} ± {sd(mse):.5f} | {statistics.mean(mae):.4f} ± {sd(mae):.4f} | {wall:.1f} ({len(r)} seeds) |")
PY
