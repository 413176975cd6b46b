"""PyTorch DLinear and PatchTST written to match strata's (and the papers') architectures:
the twin implementation used by bench/ and by the fixture generator."""
import torch
import torch.nn as nn


class DLinear(nn.Module):
    def __init__(self, seq_len, pred_len, channels, moving_avg=25, individual=False):
        super().__init__()
        self.k = moving_avg
        self.seasonal = nn.Linear(seq_len, pred_len)
        self.trend = nn.Linear(seq_len, pred_len)
        self.seasonal.weight = nn.Parameter(torch.full([pred_len, seq_len], 1.0 / seq_len))
        self.trend.weight = nn.Parameter(torch.full([pred_len, seq_len], 1.0 / seq_len))
        self.pool = nn.AvgPool1d(moving_avg, stride=1)

    def forward(self, x):  # [b, l, c]
        p = (self.k - 1) // 2
        front = x[:, :1, :].repeat(1, p, 1)
        end = x[:, -1:, :].repeat(1, p, 1)
        trend = self.pool(torch.cat([front, x, end], 1).permute(0, 2, 1))  # [b, c, l]
        seasonal = x.permute(0, 2, 1) - trend
        return (self.seasonal(seasonal) + self.trend(trend)).permute(0, 2, 1)


class RevIN(nn.Module):
    def __init__(self, c, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))

    def norm(self, x):
        self.mean = x.mean(1, keepdim=True).detach()
        self.std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + self.eps).detach()
        return (x - self.mean) / self.std * self.weight + self.bias

    def denorm(self, y):
        y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * self.std + self.mean


class Attention(nn.Module):
    def __init__(self, d, h, dropout):
        super().__init__()
        self.h, self.dk = h, d // h
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.output = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, prev):
        b, t, d = x.shape
        q = self.query(x).view(b, t, self.h, self.dk).transpose(1, 2)
        k = self.key(x).view(b, t, self.h, self.dk).transpose(1, 2)
        v = self.value(x).view(b, t, self.h, self.dk).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) * self.dk ** -0.5
        if prev is not None:
            scores = scores + prev
        w = torch.softmax(scores, -1)
        ctx = (w @ v).transpose(1, 2).reshape(b, t, d)
        return self.drop(self.output(ctx)), scores


class Layer(nn.Module):
    def __init__(self, d, h, ff, dropout):
        super().__init__()
        self.attention = Attention(d, h, dropout)
        self.dropout_attn = nn.Dropout(dropout)
        self.norm_attn = nn.BatchNorm1d(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, d))
        self.dropout_ffn = nn.Dropout(dropout)
        self.norm_ffn = nn.BatchNorm1d(d)

    def forward(self, x, prev):
        a, scores = self.attention(x, prev)
        x = self.norm_attn((x + self.dropout_attn(a)).transpose(1, 2)).transpose(1, 2)
        x = self.norm_ffn((x + self.dropout_ffn(self.ff(x))).transpose(1, 2)).transpose(1, 2)
        return x, scores


class PatchTST(nn.Module):
    def __init__(self, seq_len, pred_len, channels, patch_len=16, stride=8, d_model=16, n_heads=4,
                 d_ff=128, e_layers=3, dropout=0.3):
        super().__init__()
        self.p, self.s = patch_len, stride
        n = (seq_len - patch_len) // stride + 2
        self.revin = RevIN(channels)
        self.patch_embed = nn.Linear(patch_len, d_model)
        self.position = nn.Parameter(torch.empty(n, d_model).uniform_(-0.02, 0.02))
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList([Layer(d_model, n_heads, d_ff, dropout) for _ in range(e_layers)])
        self.head = nn.Linear(d_model * n, pred_len)

    def forward(self, x):  # [b, l, c]
        b, l, c = x.shape
        x = self.revin.norm(x).permute(0, 2, 1)
        x = torch.cat([x, x[:, :, -1:].repeat(1, 1, self.s)], -1)
        patches = x.unfold(-1, self.p, self.s)  # [b, c, n, p]
        n = patches.shape[2]
        z = self.drop(self.patch_embed(patches).reshape(b * c, n, -1) + self.position)
        prev = None
        for layer in self.layers:
            z, prev = layer(z, prev)
        z = z.reshape(b, c, n, -1).transpose(2, 3).reshape(b, c, -1)
        return self.revin.denorm(self.head(z).transpose(1, 2))
