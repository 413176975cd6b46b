"""A reference for strata's Transformer result on ETTh1 96 -> 96: TSLib's vanilla Transformer
trained the way Time-Series-Library's `Transformer_ETTh1.sh` does it, in PyTorch, independent of
strata's code. Data: the ETTh1 CSV, TSLib's borders, a scaler fitted on the train rows, timeF
calendar features for freq 'h' (hour, weekday, day of month, day of year, each in [-0.5, 0.5]).
Model: `torch_models.Transformer`'s layers plus TSLib's DataEmbedding (circular conv token
embedding + sinusoidal positions + a bias-free Linear of the time features), the decoder fed the
last 48 input steps then zeros. Training: Adam lr 1e-4, MSE, batch 32 shuffled, type1 halving
after each epoch, early stopping on validation MSE with patience 3, at most `epochs` epochs.
Prints one JSON line per epoch (val and test MSE/MAE of that epoch's model, every window) and a
last line with the best epoch's numbers.

    python3 bench/tslib_transformer_etth1.py SEED [EPOCHS [INIT]]    # threads: OMP_NUM_THREADS

INIT `tslib` (the default) re-initialises the token embedding's conv as TSLib's TokenEmbedding
(kaiming_normal, fan_in, leaky_relu), as strata does by default; `default` keeps PyTorch's Conv1d
init, which is burn's default (strata's `model.token_init = "default"`).
"""
import json, os, sys, time

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch_models import Transformer
from tslib_data import ett_hour_split

seed = int(sys.argv[1]) if len(sys.argv) > 1 else 2021
max_epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
init = sys.argv[3] if len(sys.argv) > 3 else "tslib"
assert init in ("tslib", "default"), init
torch.manual_seed(seed)
np.random.seed(seed)
root = os.environ.get("STRATA_DATA", os.path.join(os.path.dirname(__file__), "../../shared/data"))
L, LL, H, BS = 96, 48, 96, 32


def time_features(dates):
    d = pd.DatetimeIndex(dates)
    return np.stack([d.hour / 23.0 - 0.5, d.day_of_week / 6.0 - 0.5, (d.day - 1) / 30.0 - 0.5,
                     (d.day_of_year - 1) / 365.0 - 0.5], 1).astype(np.float32)


class ETTh1(Dataset):
    def __init__(self, flag):
        x, dates = ett_hour_split(root, flag, L)
        self.x, self.mark = x.astype(np.float32), time_features(dates)

    def __getitem__(self, i):
        return self.x[i:i + L], self.x[i + L - LL:i + L + H], self.mark[i:i + L], self.mark[i + L - LL:i + L + H]

    def __len__(self):
        return len(self.x) - L - H + 1


class TSLibTransformer(Transformer):
    """`torch_models.Transformer` plus TSLib's timeF temporal embedding in both embeddings."""

    def __init__(self, c, d_model=512, marks=4):
        super().__init__(L, H, c, d_model=d_model, label_len=LL)
        self.enc_time, self.dec_time = nn.Linear(marks, d_model, bias=False), nn.Linear(marks, d_model, bias=False)
        for conv in (self.enc_embed.conv, self.dec_embed.conv) if init == "tslib" else ():  # TSLib's TokenEmbedding
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="leaky_relu")

    @staticmethod
    def embed(e, time, x, mark):
        return e.drop(e.conv(x.transpose(1, 2)).transpose(1, 2) + e.pe[: x.shape[1]] + time(mark))

    def forward(self, x, x_mark, y_mark):
        h = self.embed(self.enc_embed, self.enc_time, x, x_mark)
        for layer in self.encoder:
            h = layer(h)
        memory = self.enc_norm(h)
        dec_in = torch.cat([x[:, -LL:], torch.zeros(x.shape[0], H, x.shape[2])], 1)
        h = self.embed(self.dec_embed, self.dec_time, dec_in, y_mark)
        for layer in self.decoder:
            h = layer(h, memory)
        return self.projection(self.dec_norm(h)[:, LL:])


def evaluate(model, flag):
    model.eval()
    se = ae = n = 0.0
    with torch.no_grad():
        for x, y, xm, ym in DataLoader(ETTh1(flag), batch_size=256, shuffle=False):
            p, t = model(x, xm, ym), y[:, LL:]
            se += ((p - t) ** 2).sum().item()
            ae += (p - t).abs().sum().item()
            n += t.numel()
    return se / n, ae / n


model = TSLibTransformer(7)
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
train = DataLoader(ETTh1("train"), batch_size=BS, shuffle=True)
best, bad = None, 0
for epoch in range(1, max_epochs + 1):
    t0 = time.perf_counter()
    model.train()
    total = 0.0
    for x, y, xm, ym in train:
        opt.zero_grad()
        loss = ((model(x, xm, ym) - y[:, LL:]) ** 2).mean()
        loss.backward()
        opt.step()
        total += loss.item()
    (vm, va), (tm, ta) = evaluate(model, "val"), evaluate(model, "test")
    row = {"seed": seed, "init": init, "epoch": epoch, "train_mse": round(total / len(train), 5), "val_mse": round(vm, 5),
           "test_mse": round(tm, 5), "test_mae": round(ta, 5), "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(row), flush=True)
    if best is None or vm < best["val_mse"]:
        best, bad = row, 0
    else:
        bad += 1
        if bad >= 3:
            break
    for g in opt.param_groups:  # type1 as TSLib's adjust_learning_rate: epochs 1 and 2 at 1e-4, then halving
        g["lr"] = 1e-4 * 0.5 ** (epoch - 1)
print(json.dumps({"best": best}), flush=True)
