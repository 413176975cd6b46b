"""granite-tsfm's TinyTimeMixer R2 zero-shot on every ETTh1 test window (512 -> 96): the same
work as `strata zero-shot --model $STRATA_DATA/ttm-r2 --dataset etth1`, end to end (load the
weights and the CSV, scale, forecast every window in batches of 256, MSE). Prints one JSON line."""
import json, os, sys, time

t0 = time.time()
import numpy as np
import pandas as pd
import torch
from tsfm_public.models.tinytimemixer import TinyTimeMixerForPrediction

torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
root = os.environ.get("STRATA_DATA", "../../shared/data")
t_import = time.time()
model = TinyTimeMixerForPrediction.from_pretrained(os.path.join(root, "ttm-r2")).eval()
values = pd.read_csv(os.path.join(root, "ETTh1", "ETTh1.csv")).drop(columns=["date"]).to_numpy(np.float64)
mean, std = values[:8640].mean(0), values[:8640].std(0)
rows = ((values - mean) / std).astype(np.float32)[11520 - 512:14400]
n = len(rows) - 512 - 96 + 1
t_fwd = time.time()
sq = 0.0
with torch.inference_mode():
    for s in range(0, n, 256):
        idx = range(s, min(n, s + 256))
        x = torch.from_numpy(np.stack([rows[i:i + 512] for i in idx]))
        y = np.stack([rows[i + 512:i + 608] for i in idx])
        sq += float(((model(past_values=x).prediction_outputs.numpy() - y) ** 2).sum())
t_end = time.time()
print(json.dumps({"impl": "torch-granite-tsfm", "windows": n, "mse": sq / (n * 96 * 7), "forecast_s": round(t_end - t_fwd, 3), "total_s_without_imports": round(t_end - t_import, 3)}))
