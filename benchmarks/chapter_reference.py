"""Two reference training loops for bench_train.py, outside the engine on purpose.

``chapter``: written the way the chapter's code is: one module per attention head with its
own mask, the positional table rebuilt on every forward, vocabulary = max id + 1, and
batches stacked row by row in Python.

``nanogpt``: a clean nanoGPT-style loop over the engine's own model class (fused qkv +
scaled_dot_product_attention), with nanoGPT's get_batch and a default AdamW.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class FeedForward(nn.Module):
    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.ffn = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model),
                                 nn.Dropout(dropout))

    def forward(self, x):
        return self.ffn(x)


class Head(nn.Module):
    def __init__(self, d_model: int, head_size: int, context_length: int, dropout: float):
        super().__init__()
        self.key = nn.Linear(d_model, head_size, bias=False)
        self.query = nn.Linear(d_model, head_size, bias=False)
        self.value = nn.Linear(d_model, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(context_length, context_length)))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)
        weights = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        weights = weights.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
        weights = self.dropout(F.softmax(weights, dim=-1))
        return weights @ v


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, context_length, dropout):
        super().__init__()
        self.heads = nn.ModuleList([Head(d_model, d_model // num_heads, context_length, dropout)
                                    for _ in range(num_heads)])
        self.projection = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.projection(torch.cat([h(x) for h in self.heads], dim=-1)))


class Block(nn.Module):
    def __init__(self, d_model, num_heads, context_length, dropout):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.mha = MultiHeadAttention(d_model, num_heads, context_length, dropout)
        self.ffn = FeedForward(d_model, dropout)

    def forward(self, x):
        x = x + self.mha(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class ChapterModel(nn.Module):
    def __init__(self, vocab_size, d_model, num_blocks, num_heads, context_length, dropout):
        super().__init__()
        self.d_model, self.context_length = d_model, context_length
        self.token_embedding_lookup_table = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.Sequential(*[Block(d_model, num_heads, context_length, dropout) for _ in range(num_blocks)],
                                    nn.LayerNorm(d_model))
        self.out = nn.Linear(d_model, vocab_size)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        # the chapter rebuilds the sinusoidal table on every call
        table = torch.zeros(self.context_length, self.d_model)
        position = torch.arange(0, self.context_length, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.d_model, 2).float() * (-math.log(10000.0) / self.d_model))
        table[:, 0::2] = torch.sin(position * div_term)
        table[:, 1::2] = torch.cos(position * div_term)
        x = self.token_embedding_lookup_table(idx) + table[:T, :].to(idx.device)
        logits = self.out(self.blocks(x))
        loss = None
        if targets is not None:
            B, T, C = logits.shape
            loss = F.cross_entropy(logits.view(B * T, C), targets.view(B * T))
        return logits, loss


def chapter_get_batch(data: torch.Tensor, batch_size: int, context_length: int):
    idxs = torch.randint(low=0, high=len(data) - context_length, size=(batch_size,))
    x = torch.stack([data[idx:idx + context_length] for idx in idxs])
    y = torch.stack([data[idx + 1:idx + context_length + 1] for idx in idxs])
    return x, y


def nanogpt_get_batch(data, batch_size: int, context_length: int):
    ix = torch.randint(len(data) - context_length, (batch_size,))
    x = torch.stack([data[i:i + context_length] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + context_length] for i in ix])
    return x, y


def time_loop(model: nn.Module, get_batch, steps: int, warmup: int, lr: float) -> float:
    """Steps per second of forward/loss/backward/AdamW, after ``warmup`` steps."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        xb, yb = get_batch()
        _, loss = model(xb, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    loss.item()
    return steps / (time.perf_counter() - start)
