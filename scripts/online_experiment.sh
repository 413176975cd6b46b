#!/usr/bin/env bash
# FSNet's online table (Pham et al., ICLR 2023, Table 2: cumulative MSE/MAE of the TCN backbone
# under OGD, ER, DER++) with strata online, plus the frozen model.
# Usage: scripts/online_experiment.sh [out folder] ["etth2 ettm1 weather"] ["1 24 48"] ["ogd none er derpp"] [--set value]...
# e.g. FSNet: scripts/online_experiment.sh runs/online_fsnet "etth2 ettm1" "1 24 48" ogd 'model.name="fsnet"'
# (reveal "delayed": ... ogd 'online.reveal="delayed"'; TSLib's calendar features: ... 'data.time_features="timef"').
# Each (dataset, horizon) trains one warm-up (in the first strategy's folder) that every
# strategy starts from; every run resumes if interrupted. Summary: <out>/table.csv.
set -euo pipefail
out=${1:-runs/online}
datasets=${2:-etth2 ettm1 weather}
horizons=${3:-1 24 48}
strategies=${4:-ogd none er derpp}
extra_set=()
for e in "${@:5}"; do
  [ -n "$e" ] && extra_set+=(--set "$e")
done
bin=${STRATA_BIN:-target/release/strata}
mkdir -p "$out"
for d in $datasets; do
  for h in $horizons; do
    warm=""
    for s in $strategies; do
      dir="$out/${d}_h${h}_$s"
      from=()
      [ -n "$warm" ] && from=(--set "online.from=\"$warm\"")
      "$bin" online --config "configs/online/${d}_tcn.toml" --out "$dir" --set data.pred_len="$h" --set online.strategy="$s" "${from[@]}" "${extra_set[@]}" 2>>"$out/log.txt" | tee -a "$out/summary.txt"
      [ -z "$warm" ] && warm="$dir/warmup"
    done
  done
done
python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
rows = ["dataset,horizon,model,strategy,reveal,steps,mse,mae,warmup_test_mse,ms_per_step,drifts"]
for f in sorted(out.glob("*/online/online.json")):
    r = json.loads(f.read_text())
    c = r["config"]
    rows.append(f'{c["data"]["dataset"]},{c["data"]["pred_len"]},{c["model"]["name"]},{c["online"]["strategy"]},{c["online"]["reveal"]},{r["steps"]},{r["mse"]:.4f},{r["mae"]:.4f},{r["warmup_test_mse"] or float("nan"):.4f},{1e3 * r["seconds_per_step"]:.2f},{len(r["drift_steps"])}')
(out / "table.csv").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
