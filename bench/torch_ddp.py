"""PyTorch DDP twin of strata's data-parallel benchmark (bench/distributed.sh): the same models
and shapes, a global batch split across the ranks (gloo), Adam.

    python torch_ddp.py --case patchtst --threads 2                 # one process
    torchrun --nproc_per_node 2 torch_ddp.py --case patchtst --threads 1

Prints one JSON line from rank 0: step time with DDP's all-reduce, the same steps under
`no_sync()` (no communication), their difference (the all-reduce DDP leaves exposed after
overlapping it with backward), and training windows per second.
"""
import argparse, json, os, time
import numpy as np
import torch
import torch.distributed as dist
from torch_models import PatchTST
from torch_graph_models import STGCN

p = argparse.ArgumentParser()
p.add_argument("--case", required=True, choices=["patchtst", "stgcn"])
p.add_argument("--threads", type=int, default=1)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--steps", type=int, default=10)
a = p.parse_args()
torch.set_num_threads(a.threads)
world = int(os.environ.get("WORLD_SIZE", "1"))
rank = int(os.environ.get("RANK", "0"))
if world > 1:
    dist.init_process_group("gloo")
torch.manual_seed(0)
root = os.environ.get("STRATA_DATA", os.path.join(os.path.dirname(__file__), "../../shared/data"))
if a.case == "patchtst":
    # configs/ettm1_patchtst_336_96.toml: ETTm1's 7 channels, 336 -> 96, batch 128, MSE.
    L, H, C, B = 336, 96, 7, 128
    model = PatchTST(L, H, C, d_model=128, n_heads=16, d_ff=256, e_layers=3, dropout=0.2)
    series = torch.randn(8192, C)
    loss_fn = lambda out, y: ((out - y) ** 2).mean()
else:
    # configs/los-loop_stgcn.toml: 207 sensors, value + time of day + day of week, 12 -> 12,
    # batch 64, MAE.
    adj = np.loadtxt(os.path.join(root, "los-loop/los_adj.csv"), delimiter=",")
    L, H, B = 12, 12, 64
    model = STGCN(adj, features=3)
    series = torch.randn(4096, adj.shape[0], 3)
    loss_fn = lambda out, y: (out - y[..., 0]).abs().mean()
net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
b = B // world


def step(sync):
    idx = torch.randint(0, series.shape[0] - L - H, (b,))
    x = torch.stack([series[j:j + L] for j in idx])
    y = torch.stack([series[j + L:j + L + H] for j in idx])
    t0 = time.perf_counter()
    opt.zero_grad()
    if world > 1 and not sync:
        with net.no_sync():
            loss_fn(net(x), y).backward()
    else:
        loss_fn(net(x), y).backward()
    opt.step()
    return time.perf_counter() - t0


def timed(sync):
    for _ in range(a.warmup):
        step(sync)
    return float(np.median([step(sync) for _ in range(a.steps)]))


with_comm = timed(True)
without = timed(False) if world > 1 else with_comm
if rank == 0:
    print(json.dumps({"impl": "torch-ddp" if world > 1 else "torch", "case": a.case, "ranks": world, "threads": a.threads, "global_batch": B,
                      "step_ms": 1e3 * with_comm, "compute_ms": 1e3 * without, "allreduce_ms": 1e3 * (with_comm - without),
                      "windows_per_s": B / with_comm, "params": sum(p.numel() for p in model.parameters())}))
if world > 1:
    dist.destroy_process_group()
