"""A strategy wrapper that drops bad replies before Flower's own aggregation runs: weights whose
names or shapes differ from the global model's, or that hold NaN or infinity. Each rejection is
logged with the node and the tensor; ``on_bad_reply="fail"`` ends the run instead."""

from __future__ import annotations

from logging import WARNING
from typing import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy


def problem(expected: dict[str, tuple], reply: ArrayRecord) -> str | None:
    """Why a reply's weights cannot be averaged into the model (``None`` if they can)."""
    got = {k: v.numpy() for k, v in reply.items()}
    missing = [k for k in expected if k not in got]
    if missing:
        return f"tensor '{missing[0]}' is missing"
    for k, v in got.items():
        if k not in expected:
            return f"tensor '{k}' is not in the model"
        if tuple(v.shape) != expected[k]:
            return f"tensor '{k}' has shape {tuple(v.shape)}; the model's is {expected[k]}"
        if not np.isfinite(v).all():
            return f"tensor '{k}' holds {int((~np.isfinite(v)).sum())} NaN or infinite values"
    return None


class CheckedStrategy(Strategy):
    """Wraps a Flower strategy: replies that fail :func:`problem` are dropped (or end the run)."""

    def __init__(self, strategy: Strategy, on_bad_reply: str = "skip"):
        if on_bad_reply not in ("skip", "fail"):
            raise ValueError(f"on-bad-reply '{on_bad_reply}': expected 'skip' or 'fail'")
        self.strategy, self.on_bad_reply = strategy, on_bad_reply
        self.expected: dict[str, tuple] = {}
        self.rejected: list[tuple[int, int, str]] = []  # (round, node, why)

    def summary(self) -> None:
        self.strategy.summary()

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self.expected = {k: tuple(v.numpy().shape) for k, v in arrays.items()}
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        kept = []
        for msg in replies:
            if not msg.has_error():
                records = list(msg.content.array_records.values())
                why = "no weights in the reply" if not records else problem(self.expected, records[0])
                if why is not None:
                    node = msg.metadata.src_node_id
                    self.rejected.append((server_round, node, why))
                    if self.on_bad_reply == "fail":
                        raise ValueError(f"round {server_round}: node {node} replied with bad weights: {why} (on-bad-reply = \"fail\")")
                    log(WARNING, "round %s: dropped the reply of node %s: %s", server_round, node, why)
                    continue
            kept.append(msg)
        return self.strategy.aggregate_train(server_round, kept)

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, replies)
