#!/usr/bin/env bash
# Benchmarks strata against PyTorch on the same shapes in one run; prints ratios.
# Installs torch, numpy and pandas into bench/.venv. Needs ../shared/data (or STRATA_DATA).
set -euo pipefail
cd "$(dirname "$0")"
export STRATA_DATA="${STRATA_DATA:-$(cd ../.. && pwd)/shared/data}"
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q torch numpy pandas; }
PY=.venv/bin/python
(cd .. && cargo build --release -q --bin strata --bin strata-bench)
out=$(mktemp -d)
echo "== step times (median of 10 after 3 warm-up steps)"
../target/release/strata-bench --warmup 3 --iters 10 | tee "$out/strata.jsonl"
$PY torch_bench.py --warmup 3 --iters 10 | tee "$out/torch.jsonl"
echo "== one DLinear epoch on ETTh1 336->96 (data loading, 1 training epoch, every val/test window)"
cfg=$out/epoch.toml
sed 's/^epochs = 10/epochs = 1/' ../configs/etth1_dlinear_336_96.toml > "$cfg"
/usr/bin/time -f '{"impl":"strata","max_rss_kb":%M,"wall_s":%e}' ../target/release/strata train --config "$cfg" --out "$out/run" --fresh 2>&1 >/dev/null | tail -1 | tee "$out/strata_epoch.json"
/usr/bin/time -f '{"impl":"torch-tslib-loop","max_rss_kb":%M,"wall_s":%e}' $PY tslib_dlinear_epoch.py 0 2>&1 | tail -2 | tee "$out/torch_epoch.json"
echo "== TinyTimeMixer R2 zero-shot, every ETTh1 test window (512 -> 96), end to end"
$PY -c "import tsfm_public" 2>/dev/null || .venv/bin/pip install -q granite-tsfm==0.3.11
../target/release/strata zero-shot --model "$STRATA_DATA/ttm-r2" --dataset etth1 --out "$out/ttm.json" >/dev/null
$PY -c "import json; r = json.load(open('$out/ttm.json')); print(json.dumps({'impl': 'strata', 'windows': r['test_windows'], 'mse': r['mse'], 'forecast_s': round(r['forecast_seconds'], 3), 'total_s': round(r['wall_seconds'], 3)}))"
$PY torch_ttm_zero_shot.py
$PY - "$out" <<'PYEOF'
import json, sys, os
d = sys.argv[1]
s = {j["case"]: j for j in map(json.loads, open(os.path.join(d, "strata.jsonl")))}
t = {j["case"]: j for j in map(json.loads, open(os.path.join(d, "torch.jsonl")))}
print("\n| case | strata train step ms | torch train step ms | ratio | strata infer ms | torch infer ms | ratio | batching share of step |")
print("|---|---|---|---|---|---|---|---|")
for c in s:
    a, b = s[c], t[c]
    print(f"| {c} (batch {a['batch']}) | {a['train_step_ms']:.2f} | {b['train_step_ms']:.2f} | {a['train_step_ms']/b['train_step_ms']:.2f} | "
          f"{a['infer_ms']:.2f} | {b['infer_ms']:.2f} | {a['infer_ms']/b['infer_ms']:.2f} | {100*a['batching_ms']/a['train_step_ms']:.3f}% |")
PYEOF
