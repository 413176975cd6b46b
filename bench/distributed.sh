#!/usr/bin/env bash
# Data-parallel training throughput: 1 process x 2 threads against 2 MPI ranks x 1 thread, for
# strata (mpirun) and PyTorch DDP (torchrun, gloo), on PatchTST (ETTm1's config) and STGCN
# (los-loop's), in one run. strata's numbers are the second epoch's mean step (the first warms
# up), `train.max_steps_per_epoch` steps of the config's global batch; PyTorch's the median of
# 10 steps after 3. Needs Open MPI (see .ci/run) and bench/.venv (bench/run.sh makes it).
#   bench/distributed.sh [steps per epoch, default 12]
set -euo pipefail
cd "$(dirname "$0")"
export STRATA_DATA="${STRATA_DATA:-$(cd ../.. && pwd)/shared/data}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
steps=${1:-12}
[ -x .venv/bin/python ] || { python3 -m venv .venv && .venv/bin/pip install -q torch numpy pandas; }
PY=.venv/bin/python
(cd .. && cargo build --release -q --features mpi --bin strata)
strata=$(cd .. && pwd)/target/release/strata
out=$(mktemp -d)
lscpu | grep -E "Model name|^CPU\(s\)" | sed 's/  */ /g'
for case in patchtst stgcn; do
  cfg=../configs/ettm1_patchtst_336_96.toml; [ $case = stgcn ] && cfg=../configs/los-loop_stgcn.toml
  set_=(--set train.epochs=2 --set "train.max_steps_per_epoch=$steps" --set train.patience=5)
  RAYON_NUM_THREADS=2 "$strata" train --config "$cfg" "${set_[@]}" --out "$out/${case}_1" --fresh >/dev/null 2>&1
  mpirun -np 2 --oversubscribe -x STRATA_DATA "$strata" train --config "$cfg" "${set_[@]}" --out "$out/${case}_2" --fresh >/dev/null 2>&1
  for r in 1 2; do
    $PY - "$out/${case}_$r/results.json" "$case" "$r" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = r["training"]["history"][-1]
b = r["config"]["train"]["batch_size"]
ranks = int(sys.argv[3])
print(json.dumps({"impl": "strata" if ranks == 1 else "strata-mpi", "case": sys.argv[2], "ranks": ranks, "threads": 2 // ranks, "global_batch": b,
                  "step_ms": 1e3 * e["step_seconds"], "allreduce_ms": 1e3 * e["comm_seconds"], "windows_per_s": b / e["step_seconds"]}))
PY
  done | tee -a "$out/all.jsonl"
  $PY torch_ddp.py --case $case --threads 2 | tee -a "$out/all.jsonl"
  OMP_NUM_THREADS=1 .venv/bin/torchrun --nproc_per_node 2 --master_port 29512 torch_ddp.py --case $case --threads 1 2>/dev/null | tee -a "$out/all.jsonl"
done
$PY - "$out/all.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\n| case | implementation | ranks x threads | step ms | all-reduce ms (share) | windows/s | 2 ranks / 1 process |")
print("|---|---|---|---|---|---|---|")
for case in ["patchtst", "stgcn"]:
    base = {}
    for r in rows:
        if r["case"] != case:
            continue
        fam = r["impl"].split("-")[0]
        if r["ranks"] == 1:
            base[fam] = r["windows_per_s"]
        share = f"{r['allreduce_ms']:.1f} ({100 * r['allreduce_ms'] / r['step_ms']:.0f}%)" if r["ranks"] > 1 else "-"
        speed = f"{r['windows_per_s'] / base[fam]:.2f}" if r["ranks"] > 1 and fam in base else "-"
        print(f"| {case} (batch {r['global_batch']}) | {r['impl']} | {r['ranks']} x {r['threads']} | {r['step_ms']:.1f} | {share} | {r['windows_per_s']:.0f} | {speed} |")
PY
