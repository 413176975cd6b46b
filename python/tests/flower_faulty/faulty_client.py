"""Site 1 sends bad weights: NaNs in round 1, a tensor of the wrong shape in round 2."""

import numpy as np
from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from strata.flower.client_app import evaluate as strata_evaluate
from strata.flower.client_app import site_run, to_arrays, to_record, train_site

app = ClientApp()


@app.train()
def train(msg: Message, context: Context) -> Message:
    weights, metrics = train_site(site_run(context), to_arrays(msg.content["arrays"]), 1)
    if int(context.node_config["partition-id"]) == 1:
        name = sorted(weights)[0]
        if int(msg.content["config"]["server-round"]) == 1:
            weights[name] = np.full_like(weights[name], np.nan)
        else:
            weights[name] = np.zeros((2, 2), np.float32)
    return Message(RecordDict({"arrays": to_record(weights), "metrics": MetricRecord(metrics)}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return strata_evaluate(msg, context)
