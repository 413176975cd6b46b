"""Federated training on Flower: a real SuperLink and SuperNodes on 127.0.0.1, FedAvg's
exactness against one centralised step, and bad replies dropped by name."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, REPO

flwr = pytest.importorskip("flwr")

from strata import Run, train  # noqa: E402
from strata.flower.client_app import site_run_at, to_record, train_site  # noqa: E402
from strata.flower.local import run_local  # noqa: E402
from strata.flower.server_app import initial_weights  # noqa: E402

SMALL = "seq-len=48 pred-len=12 max-steps=10"


def no_flower_processes_left():
    """Flower processes still running (exited ones that PID 1 has not reaped yet do not count)."""
    out = subprocess.run(["ps", "-eo", "stat=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "flower-super" in line and not line.lstrip().startswith("Z")]


def test_two_sites_two_rounds_on_a_real_superlink(tmp_path):
    work = tmp_path / "work"
    r = run_local(REPO / "python" / "examples" / "flower", sites=2, run_config=f"num-server-rounds=2 {SMALL} work-dir='{work}'", timeout=300, logs=tmp_path / "logs")
    assert "[ROUND 2/2]" in r.stdout
    history = json.loads((work / "server" / "history.json").read_text())
    assert sorted(history["train_metrics"]) == ["1", "2"] and sorted(history["evaluate_metrics"]) == ["1", "2"]
    assert history["rejected"] == []
    # The global model has the sites' tensors, and each site trained it for a round each time.
    final = np.load(work / "server" / "global.npz")
    site = json.loads((work / "site-0" / "results.json").read_text())
    assert site["training"]["history"][-1]["epoch"] == 2 and site["data"]["dataset"] == "etth1"
    assert json.loads((work / "site-1" / "results.json").read_text())["data"]["dataset"] == "etth2"
    assert set(final.files) == set(Run(work / "site-0").get_weights())
    assert not no_flower_processes_left()


def test_a_faulty_site_is_dropped_by_name_and_the_rounds_go_on(tmp_path):
    work = tmp_path / "work"
    run_local(REPO / "python" / "tests" / "flower_faulty", sites=2, run_config=f"work-dir='{work}'", timeout=300, logs=tmp_path / "logs")
    history = json.loads((work / "server" / "history.json").read_text())
    why = [(r["round"], r["why"]) for r in history["rejected"]]
    assert len(why) == 2, why
    assert why[0][0] == 1 and "NaN or infinite" in why[0][1] and "tensor '" in why[0][1]
    assert why[1][0] == 2 and "shape (2, 2)" in why[1][1]
    final = np.load(work / "server" / "global.npz")
    assert all(np.isfinite(final[k]).all() for k in final.files)
    assert not no_flower_processes_left()


def test_fedavg_of_one_sgd_step_equals_one_centralised_step(tmp_path):
    """Two sites own 3 columns each of one table (same rows, so the same windows and the same
    seeded batch); DLinear shares its weights across columns, so the pooled step's gradient is
    the mean of the sites' and Flower's FedAvg of the two local steps is that step."""
    from flwr.app import MetricRecord, RecordDict
    from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

    six = tmp_path / "six.csv"
    lines = (DATA / "ETTh1" / "ETTh1.csv").read_text().splitlines()[:3000]
    six.write_text("\n".join(",".join(line.split(",")[:7]) for line in lines) + "\n")
    c = {"partition": "columns", "dataset": str(six), "model": "dlinear", "seq-len": 48, "pred-len": 12, "optimizer": "sgd", "lr": 0.5, "batch-size": 64, "max-steps": 1, "seed": 11, "channels": 6}
    init = initial_weights(c, tmp_path)
    replies = []
    for pid in range(2):
        w, m = train_site(site_run_at(c, pid, 2, tmp_path / "sites"), init, 1)
        replies.append(RecordDict({"arrays": to_record(w), "metrics": MetricRecord(m)}))
    assert replies[0]["metrics"]["num-examples"] == replies[1]["metrics"]["num-examples"]
    federated = {k: v.numpy() for k, v in aggregate_arrayrecords(replies, "num-examples").items()}

    pooled = train({"data": {"dataset": "custom", "path": str(six), "target": "LULL", "seq_len": 48, "pred_len": 12}, "model": {"name": "dlinear"}, "train": {"epochs": 0, "optimizer": "sgd", "lr": 0.5, "batch_size": 64, "max_steps_per_epoch": 1, "seed": 11, "schedule": "constant"}}, out=tmp_path / "pooled", fresh=True)
    pooled.set_weights(init)
    pooled.fit(1)
    central = pooled.get_weights("last")
    assert set(central) == set(federated)
    moved = max(float(np.abs(central[k] - init[k]).max()) for k in central)
    assert moved > 1e-3, "the step moved the weights"
    for k in central:
        assert np.abs(central[k] - federated[k]).max() <= 1e-6, k


def test_secure_aggregation_runs_two_rounds_with_flowers_secaggplus(tmp_path):
    """SecAgg+ (Flower's SecAggPlusWorkflow + secaggplus_mod), three sites holding ETTh1's
    columns (SecAgg+ needs 3 or more): the server only unmasks the sum;
    the global model is finite, moved from the initial one, and the sites scored each round."""
    work = tmp_path / "work"
    r = run_local(REPO / "python" / "examples" / "flower-secagg", sites=3, run_config=f"num-server-rounds=2 {SMALL} work-dir='{work}'", timeout=300, logs=tmp_path / "logs")
    assert "SecAgg" in r.stdout or "secagg" in r.stdout.lower()
    history = json.loads((work / "server" / "history.json").read_text())
    assert history["secagg"] and sorted(history["val_loss_by_round"]) == ["1", "2"]
    assert history["evaluate_metrics"]["2"]["test-mse"] > 0
    final = np.load(work / "server" / "global.npz")
    init = Run(work / "server" / "initial").get_weights()
    assert set(final.files) == set(init)
    assert all(np.isfinite(final[k]).all() for k in final.files)
    assert max(float(np.abs(final[k] - init[k]).max()) for k in init) > 1e-3
    assert not no_flower_processes_left()


def test_regions_of_a_sensor_graph_share_all_but_their_node_embeddings(tmp_path):
    """los-loop's 207 sensors in 2 spectral regions, STID: the node embeddings stay on the sites
    (their shapes differ: one row per sensor), every other tensor is averaged by Flower."""
    from strata.flower.sites import regions

    adj = np.loadtxt(DATA / "los-loop" / "los_adj.csv", delimiter=",")
    parts = regions(adj, 2)
    assert sorted(np.concatenate(parts).tolist()) == list(range(207)) and [len(p) for p in parts] == [104, 103]
    # Spectral cuts keep neighbours together: far fewer edges cross than a random split's.
    a = (adj + adj.T) > 0
    side = np.zeros(207, bool)
    side[parts[1]] = True
    crossing = (a & (side[:, None] != side[None, :])).sum()
    rng = np.random.default_rng(0).permutation(207)
    rside = np.zeros(207, bool)
    rside[rng[:103]] = True
    assert crossing < 0.5 * (a & (rside[:, None] != rside[None, :])).sum()

    work = tmp_path / "work"
    cfg = f"partition='regions' dataset='los-loop' model='stid' local-params='node_emb' seq-len=12 pred-len=12 max-steps=10 channels=5 num-server-rounds=2 work-dir='{work}'"
    run_local(REPO / "python" / "examples" / "flower", sites=2, run_config=cfg, timeout=300, logs=tmp_path / "logs")
    final = np.load(work / "server" / "global.npz")
    assert final.files and not any("node_emb" in k for k in final.files)
    sites = [Run(work / f"site-{i}").get_weights() for i in range(2)]
    emb = [next(v for k, v in w.items() if "node_emb" in k) for w in sites]
    assert [e.shape[0] for e in emb] == [104, 103]
    # After the last evaluation both sites hold the global shared tensors.
    for k in final.files:
        assert np.array_equal(sites[0][k], final[k]) and np.array_equal(sites[1][k], final[k]), k
    assert not no_flower_processes_left()
