#!/usr/bin/env bash
# The reproduction runs of issue 26 ("One training engine"): the same seeded runs through two
# builds of strata must print the same numbers. Run it once per binary, then compare:
#   scripts/engine_repro.sh path/to/old/strata runs/repro_old
#   scripts/engine_repro.sh target/release/strata runs/repro_new
#   diff runs/repro_old/summary.txt runs/repro_new/summary.txt
# One thread (RAYON_NUM_THREADS=1), so that no reduction order depends on scheduling.
# About 15 minutes on 2 cores; each run's results land in OUT/<name>/.
set -euo pipefail
cd "$(dirname "$0")/.."
strata=$(realpath "$1")
out=$2
data=${STRATA_DATA:-../shared/data}
mkdir -p "$out"
export RAYON_NUM_THREADS=1
budget=(--set train.epochs=2 --set train.max_steps_per_epoch=50 --set train.val_every=4 --set train.lr=1e-4 --set train.seed=2021)
run() { # name, args...
  local name=$1; shift
  echo "== $name: strata $*" >&2
  "$strata" "$@" > "$out/$name.stdout" 2> "$out/$name.stderr" || { tail -5 "$out/$name.stderr"; exit 1; }
}
run quickstart quickstart --out "$out/quickstart"
run dlinear train --config configs/etth1_dlinear_336_96.toml --out "$out/dlinear" --fresh
run vae train --config configs/etth1_vae.toml --set train.epochs=1 --out "$out/vae" --fresh
run pretrain pretrain --config configs/moirai_small_pretrain.toml --set train.steps=20 --set train.checkpoint_every=10 --set train.warmup_steps=5 --out "$out/pretrain" --fresh
run lora finetune --method lora --model "$data/ttm-r2" --dataset etth1 "${budget[@]}" --out "$out/lora" --fresh
run adalora finetune --method adalora --model "$data/ttm-r2" --dataset etth1 "${budget[@]}" --out "$out/adalora" --fresh
run msft finetune --method msft --model "$data/ttm-r2" --dataset etth1 "${budget[@]}" --out "$out/msft" --fresh
run distill_eval distill-eval --full los-loop --epochs 1 --out "$out/distill_eval.json"
# The numbers: training histories (loss per epoch), validation and test metrics, no timings.
python3 - "$out" > "$out/summary.txt" <<'PY'
import json, sys, os
out = sys.argv[1]
def hist(h): return [(e["epoch"], e["train_loss"], e["val_loss"], e["lr"], e["steps"]) for e in h]
for name in ["quickstart", "dlinear"]:
    r = json.load(open(f"{out}/{name}/results.json"))
    print(name, "history", hist(r["training"]["history"]))
    print(name, "val", r["val"]["mse"], r["val"]["mae"], "test", r["test"]["mse"], r["test"]["mae"], r["test"]["rmse"])
r = json.load(open(f"{out}/vae/results.json"))
print("vae history", hist(r["training"]["history"]), "val", r["val"], "test", r["test"], "fidelity", r["fidelity"]["mean_diff"], r["fidelity"]["std_ratio"])
r = json.load(open(f"{out}/pretrain/results.json"))
print("pretrain history", hist(r["history"]), "best", r["best_val_nll"], r["best_step"], "steps", r["steps"])
for name in ["lora", "adalora", "msft"]:
    r = json.load(open(f"{out}/{name}/results.json"))
    print(name, "history", hist(r["history"]), "val", r["val_loss"], "test", r["test_mse"], r["test_mae"], "scales", r["scale_weights"], r["notes"])
r = json.load(open(f"{out}/distill_eval.json"))
print("distill_eval", {k: v for k, v in r.items() if k not in ("train_seconds", "peak_rss_mb", "wall_seconds", "git_revision")})
PY
cat "$out/summary.txt"
