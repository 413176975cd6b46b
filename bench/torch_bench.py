"""PyTorch twin of strata-bench: same models, shapes and step (forward, MSE, backward, Adam)."""
import json, os, sys, time
import numpy as np
import torch
from torch_models import DLinear, PatchTST, Transformer
from torch_graph_models import GWNet, STGCN

torch.manual_seed(0)
warmup, iters = 3, 10
for i, a in enumerate(sys.argv):
    if a == "--warmup": warmup = int(sys.argv[i + 1])
    if a == "--iters": iters = int(sys.argv[i + 1])
only = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--case"]

L, H, C = 336, 96, 7
cases = [
    ("dlinear", lambda: DLinear(L, H, C), 32),
    ("patchtst", lambda: PatchTST(L, H, C, d_model=128, n_heads=16, d_ff=256, e_layers=3, dropout=0.2), 32),
    ("patchtst_etth1", lambda: PatchTST(L, H, C), 128),
    # TSLib's ETTh1 Transformer (d_model 512, 2 + 1 layers, FFN 2048) on 96 -> 96 windows.
    ("transformer", lambda: Transformer(96, 96, C), 32),
]
# Graph cases: METR-LA's 207-node adjacency, 12 -> 12 steps, value + time of day, batch 64, MAE.
root = os.environ.get("STRATA_DATA", os.path.join(os.path.dirname(__file__), "../../shared/data"))
ADJ = np.load(os.path.join(root, "metr-la_graph/adj_mx.derived.npy"))
graph_cases = [
    ("stgcn", lambda: STGCN(ADJ), 64),
    ("gwnet", lambda: GWNet(ADJ), 64),
]
series = torch.randn(4096, C)
for name, make, b in cases + graph_cases:
    if only and name not in only:
        continue
    graph = name in dict((c[0], 1) for c in graph_cases)
    L, H = (96, 96) if name == "transformer" else (336, 96)
    if graph:
        L, H = 12, 12
        series = torch.randn(4096, 207, 2)
    model = make()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    steps, infers = [], []
    w, n = (warmup * 20, iters * 20) if name == "dlinear" else (warmup, iters)
    for i in range(w + n):
        t0 = time.perf_counter()
        idx = torch.randint(0, 4096 - L - H, (b,))
        x = torch.stack([series[j:j + L] for j in idx])
        y = torch.stack([series[j + L:j + L + H] for j in idx])
        model.train()
        if graph:
            y = y[..., 0]
            loss = (model(x) - y).abs().mean()
        else:
            loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        t1 = time.perf_counter()
        model.eval()
        with torch.no_grad():
            model(x).numpy()
        t2 = time.perf_counter()
        if i >= w:
            steps.append(t1 - t0)
            infers.append(t2 - t1)
    steps.sort(); infers.sort()
    print(json.dumps({"impl": "torch", "case": name, "batch": b, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "train_step_ms": round(steps[len(steps) // 2] * 1e3, 3),
                      "infer_ms": round(infers[len(infers) // 2] * 1e3, 3),
                      "params": sum(p.numel() for p in model.parameters())}), flush=True)
