"""PyTorch twins of strata's STGCN and Graph WaveNet (same layers, widths and graph operators),
written here for the step-time benchmark. Inputs are [batch, seq_len, nodes, features]; outputs
[batch, pred_len, nodes]."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def scaled_laplacian(adj):
    w = np.maximum(adj, adj.T).astype(np.float64)
    d = w.sum(1)
    dinv = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
    lap = np.eye(len(w)) - dinv[:, None] * w * dinv[None, :]
    lam = np.linalg.eigvalsh(lap).max()
    return (2 * lap / lam - np.eye(len(w))).astype(np.float32)


def transition(adj):
    d = adj.sum(1, keepdims=True)
    return np.where(d > 0, adj / np.where(d > 0, d, 1), 0).astype(np.float32)


class Align(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.conv = nn.Conv2d(c_in, c_out, 1) if c_in > c_out else None

    def forward(self, x):
        if self.conv is not None:
            return self.conv(x)
        if self.c_in < self.c_out:
            b, _, t, n = x.shape
            return torch.cat([x, x.new_zeros(b, self.c_out - self.c_in, t, n)], 1)
        return x


class TemporalConv(nn.Module):
    def __init__(self, kt, c_in, c_out, glu):
        super().__init__()
        self.kt, self.c_out, self.glu = kt, c_out, glu
        self.align = Align(c_in, c_out)
        self.conv = nn.Conv2d(c_in, 2 * c_out if glu else c_out, (kt, 1))

    def forward(self, x):
        x_in = self.align(x)[:, :, self.kt - 1:, :]
        y = self.conv(x)
        if self.glu:
            return (y[:, :self.c_out] + x_in) * torch.sigmoid(y[:, self.c_out:])
        return torch.relu(y + x_in)


class ChebConv(nn.Module):
    def __init__(self, ks, c_in, c_out, gso):
        super().__init__()
        self.align = Align(c_in, c_out)
        self.register_buffer("gso", torch.from_numpy(gso))
        self.weight = nn.Parameter(torch.empty(ks, c_out, c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, x):
        x = self.align(x)
        h = x.permute(0, 2, 3, 1)  # b t n c
        terms = [h, torch.einsum("hi,btij->bthj", self.gso, h)]
        for _ in range(2, self.weight.shape[0]):
            terms.append(2 * torch.einsum("hi,btij->bthj", self.gso, terms[-1]) - terms[-2])
        y = torch.einsum("btkhi,kij->bthj", torch.stack(terms, 2), self.weight) + self.bias
        return y.permute(0, 3, 1, 2) + x


class STGCN(nn.Module):
    def __init__(self, adj, seq_len=12, pred_len=12, features=2, ks=3, kt=3, blocks=((64, 16, 64), (64, 16, 64)), output=(128, 128), dropout=0.5):
        super().__init__()
        n = adj.shape[0]
        gso = scaled_laplacian(adj)
        self.blocks = nn.ModuleList()
        c = features
        for ch in blocks:
            self.blocks.append(nn.ModuleDict(dict(
                t1=TemporalConv(kt, c, ch[0], True), g=ChebConv(ks, ch[0], ch[1], gso),
                t2=TemporalConv(kt, ch[1], ch[2], False), ln=nn.LayerNorm([n, ch[2]]), drop=nn.Dropout(dropout))))
            c = ch[2]
        ko = seq_len - 2 * (kt - 1) * len(blocks)
        self.out_t = TemporalConv(ko, c, output[0], True)
        self.out_ln = nn.LayerNorm([n, output[0]])
        self.fc1 = nn.Linear(output[0], output[1])
        self.fc2 = nn.Linear(output[1], pred_len)

    def forward(self, x):
        h = x.permute(0, 3, 1, 2)
        for b in self.blocks:
            h = b["t2"](torch.relu(b["g"](b["t1"](h))))
            h = b["drop"](b["ln"](h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
        h = self.out_ln(self.out_t(h).permute(0, 2, 3, 1))  # b 1 n c
        return self.fc2(torch.relu(self.fc1(h))).squeeze(1).permute(0, 2, 1)


class GWNet(nn.Module):
    def __init__(self, adj, pred_len=12, features=2, r=32, d=32, s=256, e=512, k=2, blocks=4, layers=2, dropout=0.3, emb=10, order=2):
        super().__init__()
        n = adj.shape[0]
        self.register_buffer("p_fwd", torch.from_numpy(transition(adj)))
        self.register_buffer("p_bwd", torch.from_numpy(transition(adj.T.copy())))
        self.nodevec1 = nn.Parameter(torch.randn(n, emb))
        self.nodevec2 = nn.Parameter(torch.randn(emb, n))
        self.order, self.dropout = order, dropout
        self.rf = 1 + blocks * sum((k - 1) << i for i in range(layers))
        self.start = nn.Conv2d(features, r, 1)
        self.filt, self.gate, self.skip, self.mlp, self.bn = (nn.ModuleList() for _ in range(5))
        for _ in range(blocks):
            for i in range(layers):
                self.filt.append(nn.Conv2d(r, d, (1, k), dilation=(1, 1 << i)))
                self.gate.append(nn.Conv2d(r, d, (1, k), dilation=(1, 1 << i)))
                self.skip.append(nn.Conv2d(d, s, 1))
                self.mlp.append(nn.Conv2d((order * 3 + 1) * d, r, 1))
                self.bn.append(nn.BatchNorm2d(r))
        self.end1 = nn.Conv2d(s, e, 1)
        self.end2 = nn.Conv2d(e, pred_len, 1)

    def forward(self, x):
        x = x.permute(0, 3, 2, 1)
        if x.shape[3] < self.rf:
            x = F.pad(x, (self.rf - x.shape[3], 0))
        x = self.start(x)
        supports = [self.p_fwd, self.p_bwd, F.softmax(F.relu(self.nodevec1 @ self.nodevec2), dim=1)]
        skip = None
        for i in range(len(self.filt)):
            res = x
            h = torch.tanh(self.filt[i](res)) * torch.sigmoid(self.gate[i](res))
            sk = self.skip[i](h)
            skip = sk if skip is None else sk + skip[..., -sk.shape[3]:]
            out = [h]
            for a in supports:
                x1 = torch.einsum("ncvl,vw->ncwl", h, a)
                out.append(x1)
                for _ in range(1, self.order):
                    x1 = torch.einsum("ncvl,vw->ncwl", x1, a)
                    out.append(x1)
            g = F.dropout(self.mlp[i](torch.cat(out, 1)), self.dropout, self.training)
            x = self.bn[i](g + res[..., -g.shape[3]:])
        y = self.end2(F.relu(self.end1(F.relu(skip))))
        return y[..., -1]
