"""The chapter's decoder-only Transformer, written the nanoGPT way.

token embedding + fixed sinusoidal positions -> num_blocks x [pre-LN causal multi-head
attention, pre-LN ReLU feed-forward] (both residual) -> final LayerNorm -> linear head.
Attention is one fused qkv projection and ``scaled_dot_product_attention``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int
    d_model: int = 80
    num_blocks: int = 6
    num_heads: int = 4
    context_length: int = 128
    dropout: float = 0.1


def sinusoidal_positions(context_length: int, d_model: int) -> torch.Tensor:
    """The fixed table of "Attention Is All You Need": sin on even, cos on odd dims. (T, C)"""
    position = torch.arange(context_length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(context_length, d_model)
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)[:, : d_model // 2]
    return table


def count_params(vocab_size: int, d_model: int, num_blocks: int) -> int:
    """Parameters of a GPT of this shape, without building it (for the app's live figures)."""
    per_block = 12 * d_model * d_model + 13 * d_model  # qkv, proj, 2 ffn linears, 2 LayerNorms
    return 2 * vocab_size * d_model + vocab_size + num_blocks * per_block + 2 * d_model


def estimate_activation_memory(vocab_size: int, d_model: int, num_blocks: int, batch_tokens: int) -> int:
    """Rough bytes of float32 activations: about 30 floats per token per block and width, and 3
    logit-sized buffers."""
    return batch_tokens * (30 * num_blocks * d_model + 3 * vocab_size) * 4


def estimate_train_memory(vocab_size: int, d_model: int, num_blocks: int, batch_tokens: int) -> int:
    """Rough bytes for float32 training: weights, grads and AdamW moments (16 B per parameter)
    plus the activations."""
    params = count_params(vocab_size, d_model, num_blocks)
    return 16 * params + estimate_activation_memory(vocab_size, d_model, num_blocks, batch_tokens)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        # Dropout after the output projection, as the chapter's block lists it. No dropout on the
        # attention weights: SDPA then takes its fused kernel instead of the slow math path on CPU.
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q = q.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:  # generation: attend over every position seen so far, these included
            k, v, causal = cache.extend(k, v)
        else:
            causal = True
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.proj(y))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.ReLU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache)
        return x + self.ffn(self.ln2(x))


class LayerCache:
    """One block's keys and values of the positions generated so far, in buffers of the whole
    context (made at the first call, in the keys' dtype): a new token costs one position's
    forward instead of the context's."""

    def __init__(self, context_length: int):
        self.context_length = context_length
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Append (B, nh, T, hs) keys and values; the cached ones to attend over, and whether the
        attention is causal (a prompt of several positions from an empty cache: yes; one new
        position: it sees them all)."""
        start, end = self.length, self.length + k.size(2)
        if (start and end - start > 1) or end > self.context_length:
            raise ValueError(f"a KV cache takes several positions only from empty, and at most {self.context_length}")
        if self.k is None:
            B, nh, _, hs = k.shape
            self.k = k.new_empty(B, nh, self.context_length, hs)
            self.v = v.new_empty(B, nh, self.context_length, hs)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end], start == 0


# Temperatures below this are greedy: in float32 a smaller divisor rounds to 0 and gives NaN.
GREEDY_BELOW = 1e-6


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.d_model)
        # Computed once; not in the state_dict because it is a pure function of the config.
        self.register_buffer("positions", sinusoidal_positions(cfg.context_length, cfg.d_model), persistent=False)
        self.blocks = nn.Sequential(*[Block(cfg) for _ in range(cfg.num_blocks)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_dropout(self, p: float) -> None:
        """A live change of dropout: every dropout module's probability (no weights change)."""
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, last_only: bool = False,
                cache: list[LayerCache] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) and the mean loss against ``targets``; ``last_only`` runs the head over
        the last position alone (B, 1, V): generation needs no other, and the head is the widest layer.
        With ``cache`` (generation), ``idx`` continues the positions the cache holds."""
        B, T = idx.shape
        start = cache[0].length if cache else 0
        x = self.token_embedding(idx) + self.positions[start:start + T]  # (B, T, C)
        if cache is None:
            x = self.blocks(x)
        else:
            for block, layer in zip(self.blocks, cache):
                x = block(x, layer)
        x = self.ln_f(x)
        logits = self.head(x[:, -1:] if last_only else x)  # (B, T, V) or (B, 1, V)
        loss = None
        if targets is not None:
            loss = cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss

    def new_cache(self) -> list[LayerCache]:
        return [LayerCache(self.cfg.context_length) for _ in range(self.cfg.num_blocks)]

    @torch.inference_mode()
    def generate_steps(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                       top_k: int | None = None, top_p: float | None = None,
                       generator: torch.Generator | None = None,
                       cached: bool = True) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Sample ``max_new_tokens`` tokens after ``idx`` (B, T), yielding each one's id (B, 1) and
        the model's logits it was drawn from (B, V), before temperature and filtering.

        ``cached``: a KV cache keeps every block's keys and values, so each token costs one
        position's forward. Positions are absolute, so the cache holds until the context is full;
        then the last half context is encoded afresh (positions from 0) and generation goes on
        from there. Uncached, every token re-encodes the last full context. Within the context
        length both give the same tokens and probabilities."""
        B, T = idx.shape
        # One buffer for prompt and output, and the context a view of its last context_length
        # columns: nothing is copied per token (torch.cat would copy the whole sequence each time).
        out = idx.new_empty(B, T + max_new_tokens)
        out[:, :T] = idx
        ctx = self.cfg.context_length
        cache = None
        for end in range(T, T + max_new_tokens):
            if not cached:
                logits, _ = self(out[:, max(0, end - ctx):end], last_only=True)
            elif cache is None or cache[0].length == ctx:  # the prompt, or a full cache: encode afresh
                keep = min(end, ctx if cache is None else ctx // 2)
                cache = self.new_cache()
                logits, _ = self(out[:, end - keep:end], last_only=True, cache=cache)
            else:
                logits, _ = self(out[:, end - 1:end], last_only=True, cache=cache)
            logits = logits[:, -1, :].float()  # (B, V)
            if temperature < GREEDY_BELOW:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                # Shifted so the largest logit is 0: a small temperature sends the others towards
                # -inf, never to inf - inf = NaN.
                scaled = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
                probs = F.softmax(filter_logits(scaled, top_k, top_p), dim=-1)
                # Broken weights give NaN probabilities, which multinomial refuses (on a GPU with a
                # device-side assert that ends the process's CUDA use): such a row is drawn from
                # uniformly, with no sync, and the caller refuses the result (sampling.generate).
                probs = torch.where(torch.isfinite(probs).all(dim=-1, keepdim=True), probs, 1.0)
                next_id = torch.multinomial(probs, 1, generator=generator)
            out[:, end:end + 1] = next_id
            yield next_id, logits


class _CrossEntropy(torch.autograd.Function):
    """``F.cross_entropy`` (mean) with a one-buffer backward: grad = (softmax - onehot) / N.

    PyTorch's path zero-fills an (N, V) gradient for nll_loss and then runs log_softmax's
    backward over it; with the chapter's ~100k-row vocabulary that is a third of a CPU step.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logprobs = torch.log_softmax(logits.float(), dim=-1)  # (N, V)
        ctx.save_for_backward(logprobs, targets)
        ctx.logits_dtype = logits.dtype
        return -logprobs.gather(1, targets[:, None]).mean()

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor) -> tuple[torch.Tensor, None]:
        logprobs, targets = ctx.saved_tensors
        grad = logprobs.exp_()  # softmax, in place: logprobs is not used again
        grad[torch.arange(len(targets), device=grad.device), targets] -= 1.0
        grad.mul_(grad_loss / len(targets))
        return grad.to(ctx.logits_dtype), None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (N, V) logits against (N,) targets."""
    return _CrossEntropy.apply(logits, targets)


def filter_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Mask all but the top_k logits and outside the top_p nucleus with -inf. (B, V)"""
    if top_k:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0 < top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cumulative - F.softmax(sorted_logits, dim=-1) > top_p  # keep the token that crosses top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits
