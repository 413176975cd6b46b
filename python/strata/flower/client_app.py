"""The Flower ``ClientApp``: a site trains the shared model on data that never leaves it.

Node config (``flower-supernode --node-config``): ``partition-id``, ``num-partitions`` and
optionally ``work-dir`` (where this site keeps its run folder; default the app's ``work-dir``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ..run import Run, train as strata_train
from .sites import local_params, site_config

app = ClientApp()


def site_run(context: Context) -> Run:
    """This site's run folder, made on first use with the seeded initial model (no epoch)."""
    pid, n = int(context.node_config["partition-id"]), int(context.node_config["num-partitions"])
    work = Path(str(context.node_config.get("work-dir", context.run_config.get("work-dir", "runs/flower"))))
    return site_run_at(context.run_config, pid, n, work)


def site_run_at(c, pid: int, n: int, work: Path) -> Run:
    """Site ``pid`` of ``n``'s run folder under ``work`` for the app config ``c``."""
    folder = work / f"site-{pid}"
    if (folder / "results.json").exists():
        return Run(folder)
    cfg = site_config(c, pid, n, work)
    return strata_train({**cfg, "train": {**cfg["train"], "epochs": 0}}, out=folder, fresh=True)


def to_arrays(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in record.items()}


def to_record(weights: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})


def train_site(run: Run, weights: dict[str, np.ndarray], epochs: int, proximal_mu: float = 0.0, local: list[str] | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Set the global ``weights``, train ``epochs`` local epochs (with FedProx's proximal term
    to them when ``proximal_mu`` > 0), return the last epoch's weights and the reply's metrics
    (``num-examples``: training windows, FedAvg's weighting). Parameters whose path contains a
    piece of ``local`` stay on the site: neither set from nor sent to the server."""
    run.set_weights(weights, strict=not local)
    run.fit(epochs, proximal_mu=proximal_mu)
    history = run.results["training"]["history"][-epochs:]
    metrics = {
        "num-examples": int(run.results["data"]["windows"][0]),
        "train-loss": float(np.mean([h["train_loss"] for h in history])),
        "val-loss": float(history[-1]["val_loss"]),
        "train-seconds": float(sum(h["seconds"] for h in history)),
    }
    last = run.get_weights("last")
    return {k: v for k, v in last.items() if not any(p in k for p in local or [])}, metrics


def evaluate_site(run: Run, weights: dict[str, np.ndarray], local: list[str] | None = None) -> dict:
    """Score the global ``weights`` (with the site's own ``local`` parameters) on this site's
    validation and test splits."""
    run.set_weights(weights, strict=not local)
    val, test = run.evaluate("val"), run.evaluate("test")
    clean = lambda v: float(v) if math.isfinite(v) else float("nan")  # noqa: E731
    return {"num-examples": int(run.results["data"]["windows"][2]), "val-mse": clean(val["mse"]), "test-mse": clean(test["mse"]), "test-mae": clean(test["mae"])}


@app.train()
def train(msg: Message, context: Context) -> Message:
    run = site_run(context)
    config = msg.content["config"]
    epochs = int(config.get("local-epochs", context.run_config.get("local-epochs", 1)))
    # Flower's FedProx sends its mu as "proximal-mu"; other strategies send none.
    weights, metrics = train_site(run, to_arrays(msg.content["arrays"]), epochs, float(config.get("proximal-mu", 0.0)), local_params(context.run_config))
    return Message(RecordDict({"arrays": to_record(weights), "metrics": MetricRecord(metrics)}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    metrics = evaluate_site(site_run(context), to_arrays(msg.content["arrays"]), local_params(context.run_config))
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
