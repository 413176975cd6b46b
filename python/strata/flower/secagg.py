"""Secure aggregation (SecAgg+, Bonawitz et al. / Bell et al.) for strata sites, with Flower's own
protocol: ``SecAggPlusWorkflow`` on the server and ``secaggplus_mod`` on the clients. Flower 1.42
runs SecAgg+ in its workflow API (``LegacyContext`` + ``DefaultWorkflow``, weights as an ordered
list of arrays), not in the Message-API strategies of :mod:`server_app`; these two apps are that
path. The server sees only the sum of the sites' (quantised, masked) weights.

Weights travel as a list in the sorted order of the model's parameter paths. Flower's SecAgg+
needs at least 3 sites (`num_shares` > 2): with two, each could subtract its own update.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from flwr.app import Context
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

from .client_app import evaluate_site, site_run, train_site
from .server_app import initial_weights


class SiteClient(NumPyClient):
    """One site, as Flower's NumPyClient: weights in and out as a list (sorted names)."""

    def __init__(self, context: Context):
        self.context = context
        self.run = site_run(context)
        self.names = sorted(self.run.get_weights())

    def fit(self, parameters, config):
        weights, metrics = train_site(self.run, dict(zip(self.names, parameters)), int(config.get("local-epochs", 1)))
        return [weights[n] for n in self.names], int(metrics.pop("num-examples")), metrics

    def evaluate(self, parameters, config):
        m = evaluate_site(self.run, dict(zip(self.names, parameters)))
        return float(m["val-mse"]), int(m.pop("num-examples")), m


def weighted_mean(results: list[tuple[int, dict]]) -> dict:
    """The sites' evaluation metrics weighted by their test windows (as the Message-API app)."""
    total = sum(n for n, _ in results)
    return {k: sum(n * m[k] for n, m in results) / total for k in results[0][1]} if total else {}


client_app = ClientApp(client_fn=lambda context: SiteClient(context).to_client(), mods=[secaggplus_mod])
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    c = context.run_config
    work = Path(str(c.get("work-dir", "runs/flower-secagg")))
    n = int(c.get("min-nodes", 2))
    start = time.time()
    init = initial_weights(c, work)
    names = sorted(init)
    epochs = int(c.get("local-epochs", 1))
    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=1.0,
        min_fit_clients=n,
        min_evaluate_clients=n,
        min_available_clients=n,
        initial_parameters=ndarrays_to_parameters([init[k] for k in names]),
        on_fit_config_fn=lambda r: {"local-epochs": epochs},
        evaluate_metrics_aggregation_fn=weighted_mean,
    )
    rounds = int(c.get("num-server-rounds", 3))
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=rounds), strategy=strategy)
    fit = SecAggPlusWorkflow(num_shares=int(c.get("secagg-shares", n)), reconstruction_threshold=int(c.get("secagg-threshold", n)), clipping_range=float(c.get("secagg-clipping-range", 8.0)), quantization_range=int(c.get("secagg-quantization-range", 4194304)))
    DefaultWorkflow(fit_workflow=fit)(grid, legacy)
    out = work / "server"
    out.mkdir(parents=True, exist_ok=True)
    # Where Flower's workflow keeps the global parameters (flwr.server.workflow.constant).
    final = legacy.state.array_records["parameters"].to_numpy_ndarrays()
    tmp = out / "global.tmp.npz"
    np.savez(tmp, **dict(zip(names, final)))
    os.replace(tmp, out / "global.npz")
    losses = {str(r): v for r, v in legacy.history.losses_distributed}
    by_round: dict[str, dict] = {}
    for k, vals in legacy.history.metrics_distributed.items():
        for r, v in vals:
            by_round.setdefault(str(r), {})[k] = v
    record = {"config": dict(c), "rounds": rounds, "secagg": True, "val_loss_by_round": losses, "evaluate_metrics": by_round, "model_bytes": int(sum(a.nbytes for a in final)), "wall_seconds": time.time() - start}
    (out / "history.tmp.json").write_text(json.dumps(record, indent=2, default=str))
    os.replace(out / "history.tmp.json", out / "history.json")
