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


class MHA(nn.Module):
    """Multi-head attention as strata's `transformer::Attention` (TSLib's AttentionLayer +
    FullAttention): q/k/v/o projections, scaled scores, optional causal mask, dropout on the
    attention weights."""

    def __init__(self, d, h, dropout):
        super().__init__()
        self.h = h
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.drop = nn.Dropout(dropout)

    def forward(self, q_in, kv_in, causal=False):
        b, tq, d = q_in.shape
        tk, dh = kv_in.shape[1], d // self.h
        q = self.q(q_in).view(b, tq, self.h, dh).transpose(1, 2)
        k = self.k(kv_in).view(b, tk, self.h, dh).transpose(1, 2)
        v = self.v(kv_in).view(b, tk, self.h, dh).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) * dh ** -0.5
        if causal:
            mask = torch.triu(torch.ones(tq, tk, dtype=torch.bool), 1)
            scores = scores.masked_fill(mask, float("-inf"))
        w = self.drop(torch.softmax(scores, -1))
        return self.o((w @ v).transpose(1, 2).reshape(b, tq, d))


class Embedding(nn.Module):
    """Circular conv (kernel 3, no bias) token embedding + sinusoidal positions + dropout."""

    def __init__(self, c, d, max_len, dropout):
        super().__init__()
        self.conv = nn.Conv1d(c, d, 3, padding=1, padding_mode="circular", bias=False)
        pos = torch.arange(max_len).unsqueeze(1).float()
        div = torch.exp(torch.arange(0, d, 2).float() * -(torch.log(torch.tensor(10000.0)) / d))
        pe = torch.zeros(max_len, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):  # [b, t, c]
        return self.drop(self.conv(x.transpose(1, 2)).transpose(1, 2) + self.pe[: x.shape[1]])


class EncLayer(nn.Module):
    def __init__(self, d, h, ff, dropout):
        super().__init__()
        self.attn = MHA(d, h, dropout)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.norm1(x + self.drop(self.attn(x, x)))
        return self.norm2(x + self.drop(self.ff2(self.drop(nn.functional.gelu(self.ff1(x))))))


class DecLayer(nn.Module):
    def __init__(self, d, h, ff, dropout):
        super().__init__()
        self.self_attn, self.cross_attn = MHA(d, h, dropout), MHA(d, h, dropout)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, memory):
        x = self.norm1(x + self.drop(self.self_attn(x, x, causal=True)))
        x = self.norm2(x + self.drop(self.cross_attn(x, memory)))
        return self.norm3(x + self.drop(self.ff2(self.drop(nn.functional.gelu(self.ff1(x))))))


class Transformer(nn.Module):
    """TSLib's vanilla Transformer as strata's `transformer.rs` (point head, no calendar marks):
    the decoder reads the last `label_len` input steps then zeros for the horizon."""

    def __init__(self, seq_len, pred_len, c, d_model=512, n_heads=8, e_layers=2, d_layers=1,
                 d_ff=2048, dropout=0.1, label_len=48):
        super().__init__()
        self.label_len, self.pred_len = label_len, pred_len
        max_len = max(seq_len, label_len + pred_len)
        self.enc_embed, self.dec_embed = Embedding(c, d_model, max_len, dropout), Embedding(c, d_model, max_len, dropout)
        self.encoder = nn.ModuleList([EncLayer(d_model, n_heads, d_ff, dropout) for _ in range(e_layers)])
        self.decoder = nn.ModuleList([DecLayer(d_model, n_heads, d_ff, dropout) for _ in range(d_layers)])
        self.enc_norm, self.dec_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.projection = nn.Linear(d_model, c)

    def forward(self, x):  # [b, l, c]
        h = self.enc_embed(x)
        for layer in self.encoder:
            h = layer(h)
        memory = self.enc_norm(h)
        b, _, c = x.shape
        dec_in = torch.cat([x[:, -self.label_len:], torch.zeros(b, self.pred_len, c)], 1)
        h = self.dec_embed(dec_in)
        for layer in self.decoder:
            h = layer(h, memory)
        return self.projection(self.dec_norm(h)[:, self.label_len:])
