"""One DLinear epoch on ETTh1 (336 -> 96) the way Time-Series-Library does it: pandas reads the
CSV, sklearn-style scaler fitted on train rows, a Dataset whose __getitem__ slices windows,
a DataLoader (batch 32, shuffle), Adam lr 0.005, MSE; then every validation and test window is
evaluated. Prints one JSON line with the wall time (data loading included)."""
import json, os, sys, time
t0 = time.perf_counter()
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch_models import DLinear
from tslib_data import ett_hour_split

torch.manual_seed(2021)
root = os.environ.get("STRATA_DATA", "../../shared/data")
L, H, BS = 336, 96, 32
workers = int(sys.argv[1]) if len(sys.argv) > 1 else 0


class DatasetETTHour(Dataset):
    def __init__(self, flag):
        self.x = ett_hour_split(root, flag, L)[0]

    def __getitem__(self, i):
        return self.x[i:i + L], self.x[i + L:i + L + H]

    def __len__(self):
        return len(self.x) - L - H + 1


model = DLinear(L, H, 7)
opt = torch.optim.Adam(model.parameters(), lr=0.005)
train = DataLoader(DatasetETTHour("train"), batch_size=BS, shuffle=True, num_workers=workers, drop_last=False)
model.train()
for x, y in train:
    x, y = x.float(), y.float()
    opt.zero_grad()
    loss = ((model(x) - y) ** 2).mean()
    loss.backward()
    opt.step()
model.eval()
mse = {}
with torch.no_grad():
    for flag in ["val", "test"]:
        se, n = 0.0, 0
        for x, y in DataLoader(DatasetETTHour(flag), batch_size=BS, shuffle=False, num_workers=workers):
            p = model(x.float())
            se += ((p - y.float()) ** 2).sum().item()
            n += y.numel()
        mse[flag] = se / n
print(json.dumps({"impl": "torch-tslib-loop", "workers": workers, "epoch_wall_s": round(time.perf_counter() - t0, 3),
                  "val_mse": round(mse["val"], 4), "test_mse": round(mse["test"], 4)}))
