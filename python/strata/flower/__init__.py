"""Federated training on Flower: sites keep their data, one shared strata model.

``client_app.app`` is a Flower ``ClientApp`` (Message API): it sets the received weights into
the site's strata run, trains its local epochs and replies with the weights, the number of
training windows and its losses; evaluation likewise on the site's test split.
``server_app.app`` is a ``ServerApp`` running one of Flower's strategies (FedAvg, FedAvgM,
FedAdam, FedYogi, FedAdagrad), optionally wrapped in Flower's central differential privacy,
behind a check that drops replies of the wrong names, shapes or non-finite values. The app
config (``[tool.flwr.app.config]``, see ``python/examples/flower/pyproject.toml``) names the
partition, the model, the rounds and the local epochs; docs/federated.md has the rest.
"""
