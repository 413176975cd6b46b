#!/usr/bin/env bash
# Issue 7's scale check: STemDist on a SYNTHETIC graph of 10,000 locations (one week of
# 5-minute steps, `strata synth`) on this machine, and whether the time-only baselines can run
# at that size within a time limit. Peak memory is each process's VmHWM (distilled.json,
# eval_s*.json). Never report these numbers as real data.
set -euo pipefail
cd "$(dirname "$0")/.."
STRATA=${STRATA:-target/release/strata}
OUT=${OUT:-runs/scale}
NODES=${NODES:-10000}
LIMIT=${LIMIT:-600}                  # seconds a baseline may take before it counts as failed
mkdir -p "$OUT"
[ -f "$OUT/synth/signal.npy" ] || "$STRATA" synth --nodes "$NODES" --out "$OUT/synth"
data=(--set 'data.dataset="spatial"' --set "data.path=\"$OUT/synth/signal.npy\"" --set "data.graph=\"$OUT/synth/graph.csv\""
      --set 'data.graph_weights="raw"' --set data.graph_symmetric=true --set data.steps_per_day=288)
budget=(--set distill.outer=${OUTER:-1} --set distill.inner=${INNER:-2} --set distill.eval_every=1
        --set distill.eval_epochs=${EVAL_EPOCHS:-5} --set distill.kmeans_iters=${KMEANS_ITERS:-20} --set distill.eval_chunk=500)
# A finished step is not redone (EVAL=0 skips the test-split evaluation of STemDist's set).
[ -f "$OUT/stemdist/distilled.json" ] || "$STRATA" distill --method stemdist "${data[@]}" "${budget[@]}" --out "$OUT/stemdist"
if [ "${EVAL:-1}" = 1 ] && ! ls "$OUT"/stemdist/eval_s*.json > /dev/null 2>&1; then
  "$STRATA" distill-eval "$OUT/stemdist" --epochs "${EPOCHS:-5}"
fi
for method in ${BASELINES:-dc}; do
  status=0
  /usr/bin/time -o "$OUT/$method.time" -f "%e s wall, peak RSS %M KB" timeout "$LIMIT" "$STRATA" distill --method "$method" "${data[@]}" "${budget[@]}" --out "$OUT/$method" || status=$?
  echo "$method: exit $status (124 = stopped after $LIMIT s; 137 = killed, out of memory): $(tail -1 "$OUT/$method.time")" | tee -a "$OUT/baselines.txt"
done
