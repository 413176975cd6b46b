#!/usr/bin/env bash
# Issue 6's experiment: TinyTimeMixer R2 fine-tuned on ETTh1, ETTm1 and Weather (horizon 96)
# with every method TinyTimeMixer takes plus zero-shot, 3 seeds each; the MOIRAI pretrained by
# configs/moirai_small_pretrain.toml on ETTm1 with every method; the MSFT ablations on ETTm1.
# Results land in runs/ft_*/results.json (test MSE/MAE, trainable parameters, s/step).
# Hours per run on 2 CPU cores: build with --features cuda and run on a GPU.
#   scripts/finetune_experiment.sh [path/to/strata]
set -euo pipefail
strata="${1:-target/release/strata}"
seeds=(2021 2022 2023)
for ds in etth1 ettm1 weather; do
  "$strata" zero-shot --model ttm-r2 --dataset "$ds" --horizon 96 --out "runs/ft_${ds}_ttm_zero-shot.json"
  for m in full linear-probe prompt lora adalora msft; do
    lr=1e-4; [ "$m" = linear-probe ] && lr=1e-3
    for s in "${seeds[@]}"; do
      "$strata" finetune --method "$m" --model ttm-r2 --dataset "$ds" --set train.lr=$lr --set train.seed=$s --out "runs/ft_${ds}_ttm_${m}_s$s"
    done
  done
done
for m in full linear-probe prompt lora adalora msft; do
  for s in "${seeds[@]}"; do
    "$strata" finetune --config configs/ettm1_moirai_small_msft_finetune.toml --set method=\"$m\" --set train.seed=$s --out "runs/ft_ettm1_moirai_${m}_s$s"
  done
done
# MSFT ablations on ETTm1 (TinyTimeMixer): no aggregator, no per-scale LoRA, no weighted mixing, single scale.
for a in msft.aggregator=false msft.lora=false msft.weighted=false msft.scales=0; do
  for s in "${seeds[@]}"; do
    "$strata" finetune --config configs/ettm1_ttm_msft_finetune.toml --set "$a" --set train.seed=$s --out "runs/ft_ettm1_ttm_msft_${a//[.=]/_}_s$s"
  done
done
