#!/usr/bin/env bash
# Issue 6's experiment: TinyTimeMixer R2 fine-tuned on ETTh1, ETTm1 and Weather (horizon 96)
# with every method TinyTimeMixer takes plus zero-shot, 3 seeds each; the MOIRAI pretrained by
# configs/moirai_small_pretrain.toml on ETTm1 with every method; the MSFT ablations on ETTm1.
# Results land in $OUT/ft_*/results.json (test MSE/MAE, trainable parameters, s/step);
# `python3 scripts/finetune_table.py $OUT` tabulates them (mean ± std over seeds).
# Finished runs (results.json present) are skipped, so an interrupted experiment resumes.
# Hours per run on 2 CPU cores at the full budget: build with --features cuda and run on a GPU.
# Knobs (environment): DATASETS, METHODS, SEEDS, BUDGET (extra --set key=value pairs applied to
# every fine-tuning run, e.g. a step budget), PARTS (ttm moirai ablation), OUT.
#   scripts/finetune_experiment.sh [path/to/strata]
set -euo pipefail
cd "$(dirname "$0")/.."
strata="${1:-target/release/strata}"
DATASETS=${DATASETS:-"etth1 ettm1 weather"}
METHODS=${METHODS:-"full linear-probe prompt lora adalora msft"}
read -r -a seeds <<< "${SEEDS:-2021 2022 2023}"
BUDGET=${BUDGET:-}
PARTS=${PARTS:-"ttm moirai ablation"}
OUT=${OUT:-runs}
ttm="${STRATA_DATA:-../shared/data}/ttm-r2"
mkdir -p "$OUT"
budget=(); for b in $BUDGET; do budget+=(--set "$b"); done
has() { [[ " $PARTS " == *" $1 "* ]]; }
finetune() { # out-dir, args...
  local dir=$1; shift
  [ -f "$dir/results.json" ] && return 0
  "$strata" finetune "$@" "${budget[@]}" --out "$dir"
}
if has ttm; then
  for ds in $DATASETS; do
    f="$OUT/ft_${ds}_ttm_zero-shot.json"
    [ -f "$f" ] || "$strata" zero-shot --model "$ttm" --dataset "$ds" --horizon 96 --out "$f"
    for m in $METHODS; do
      lr=1e-4; [ "$m" = linear-probe ] && lr=1e-3
      for s in "${seeds[@]}"; do
        finetune "$OUT/ft_${ds}_ttm_${m}_s$s" --method "$m" --model "$ttm" --dataset "$ds" --set train.lr=$lr --set train.seed=$s
      done
    done
  done
fi
if has moirai; then
  for m in $METHODS; do
    for s in "${seeds[@]}"; do
      finetune "$OUT/ft_ettm1_moirai_${m}_s$s" --config configs/ettm1_moirai_small_msft_finetune.toml --set method=\"$m\" --set train.seed=$s
    done
  done
fi
# MSFT ablations on ETTm1 (TinyTimeMixer), on the same settings as the grid's msft rows:
# no aggregator, no per-scale LoRA, no weighted mixing (equal fixed weights), a single scale.
if has ablation; then
  for a in no-aggregator:msft.aggregator=false no-lora:msft.lora=false unweighted:msft.weighted=false 1scale:msft.scales=0; do
    for s in "${seeds[@]}"; do
      finetune "$OUT/ft_ettm1_ttm_msft-${a%%:*}_s$s" --method msft --model "$ttm" --dataset ettm1 --set train.lr=1e-4 --set "${a#*:}" --set train.seed=$s
    done
  done
fi
