"""strata from Python, notebook-sized: train DLinear on ETTh1, score it, forecast from a
DataFrame, and plot the forecast (if matplotlib is installed).

    STRATA_DATA=../shared/data python python/examples/quickstart.py [--epochs 10] [--out runs/py_quickstart]
"""

import argparse
import os
from pathlib import Path

import pandas as pd

import strata

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--max-steps", type=int, default=None, help="steps per epoch (default: all)")
parser.add_argument("--out", default="runs/py_quickstart")
args = parser.parse_args()

data = Path(os.environ.get("STRATA_DATA", "../shared/data"))
config = {
    "name": "py_quickstart",
    "data": {"dataset": "etth1", "seq_len": 96, "pred_len": 96},
    "model": {"name": "dlinear"},
    "train": {"epochs": args.epochs, "batch_size": 32, "lr": 0.005, "patience": 3, "max_steps_per_epoch": args.max_steps},
}
run = strata.train(config, out=args.out)
print("test:", {k: round(v, 4) for k, v in run.evaluate("test").items() if k in ("mse", "mae")})

history = pd.read_csv(data / "ETTh1" / "ETTh1.csv", parse_dates=["date"]).iloc[-400:-96]
forecast = run.predict(history)
print(forecast[["ds", "OT"]].head())

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.plot(history["date"].iloc[-192:], history["OT"].iloc[-192:], label="history")
    ax.plot(forecast["ds"], forecast["OT"], label="DLinear forecast")
    ax.set_ylabel("OT")
    ax.legend()
    fig.tight_layout()
    fig.savefig(Path(args.out) / "forecast.png")
    print("plot:", Path(args.out) / "forecast.png")
