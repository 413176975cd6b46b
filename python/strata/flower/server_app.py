"""The Flower ``ServerApp``: Flower's strategies over strata sites, set by the app config."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp import strategy as fl

from ..run import train as strata_train
from .checks import CheckedStrategy
from .client_app import to_record
from .sites import initial_config, is_local

app = ServerApp()

STRATEGIES = {"fedavg": fl.FedAvg, "fedprox": fl.FedProx, "fedavgm": fl.FedAvgM, "fedadam": fl.FedAdam, "fedyogi": fl.FedYogi, "fedadagrad": fl.FedAdagrad}


def make_strategy(c) -> CheckedStrategy:
    """The strategy the app config names, with its fractions, in Flower's DP wrapper if asked."""
    name = str(c.get("strategy", "fedavg")).lower()
    if name not in STRATEGIES:
        raise ValueError(f"strategy '{name}': expected one of {sorted(STRATEGIES)}")
    kw = {"fraction_train": float(c.get("fraction-train", 1.0)), "fraction_evaluate": float(c.get("fraction-evaluate", 1.0)), "min_available_nodes": int(c.get("min-nodes", 2)), "min_train_nodes": int(c.get("min-nodes", 2)), "min_evaluate_nodes": int(c.get("min-nodes", 2))}
    if name in ("fedadam", "fedyogi", "fedadagrad"):
        kw["eta"] = float(c.get("server-lr", 0.01))
    if name == "fedprox":
        kw["proximal_mu"] = float(c.get("proximal-mu", 0.01))
    if name == "fedavgm":
        kw["server_momentum"] = float(c.get("server-momentum", 0.9))
    s = STRATEGIES[name](**kw)
    dp = str(c.get("dp", "none"))
    if dp == "server-fixed":
        s = fl.DifferentialPrivacyServerSideFixedClipping(s, noise_multiplier=float(c.get("noise-multiplier", 0.0)), clipping_norm=float(c.get("clipping-norm", 1.0)), num_sampled_clients=int(c.get("min-nodes", 2)))
    elif dp != "none":
        raise ValueError(f"dp '{dp}': expected 'none' or 'server-fixed'")
    return CheckedStrategy(s, str(c.get("on-bad-reply", "skip")))


def initial_weights(c, work: Path) -> dict[str, np.ndarray]:
    """The seeded initial model of the sites' architecture, built without any site's data; the
    parameters that stay on the sites (``local-params``) are left out."""
    weights = strata_train(initial_config(c, work / "server"), out=work / "server" / "initial", fresh=True).get_weights()
    return {k: v for k, v in weights.items() if not is_local(k, c)}


@app.main()
def main(grid: Grid, context: Context) -> None:
    c = context.run_config
    work = Path(str(c.get("work-dir", "runs/flower")))
    start = time.time()
    strategy = make_strategy(c)
    result = strategy.start(
        grid=grid,
        initial_arrays=to_record(initial_weights(c, work)),
        num_rounds=int(c.get("num-server-rounds", 3)),
        train_config=ConfigRecord({"local-epochs": int(c.get("local-epochs", 1))}),
    )
    out = work / "server"
    out.mkdir(parents=True, exist_ok=True)
    final = {k: v.numpy() for k, v in result.arrays.items()}
    tmp = out / "global.tmp.npz"
    np.savez(tmp, **final)
    os.replace(tmp, out / "global.npz")
    record = {
        "config": dict(c),
        "rounds": int(c.get("num-server-rounds", 3)),
        "train_metrics": {str(r): dict(m) for r, m in result.train_metrics_clientapp.items()},
        "evaluate_metrics": {str(r): dict(m) for r, m in result.evaluate_metrics_clientapp.items()},
        "rejected": [{"round": r, "node": n, "why": w} for r, n, w in strategy.rejected],
        "model_bytes": int(sum(v.nbytes for v in final.values())),
        "wall_seconds": time.time() - start,
    }
    (out / "history.tmp.json").write_text(json.dumps(record, indent=2, default=str))
    os.replace(out / "history.tmp.json", out / "history.json")
