"""Network health, measured while training without slowing it.

Every step the loss and the global gradient norm (before clipping) stay on the device; the
trainer reads them once per log interval, where it reads the loss anyway, so a GPU pays no
extra sync. At the last step of each interval it also measures, per block (and for the token
embedding and the head), the gradient norm and the size of the update relative to the
weights, |Δw| / |w|: sampled once per interval, which keeps the cost within a few percent.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from .model import GPT


def _group_norms(tensors: list[torch.Tensor], bounds: list[tuple[int, int]]) -> torch.Tensor:
    """The 2-norm of each group of ``tensors`` (groups given as index ranges), as one (G,) tensor."""
    norms = torch.stack(torch._foreach_norm(tensors)).float().square()  # one kernel for all tensors
    return torch.stack([norms[a:b].sum() for a, b in bounds]).sqrt()


class HealthMeter:
    def __init__(self, model: GPT):
        groups = [[model.token_embedding.weight], *[list(block.parameters()) for block in model.blocks],
                  [*model.ln_f.parameters(), *model.head.parameters()]]
        self.names = ["embedding", *[f"block {i}" for i in range(len(model.blocks))], "head"]
        self.params = [p for group in groups for p in group]
        self.bounds, start = [], 0
        for group in groups:
            self.bounds.append((start, start + len(group)))
            start += len(group)
        self.embedding, self.head = model.token_embedding.weight, model.head.weight
        self.losses: list[torch.Tensor] = []
        self.grad_norms: list[torch.Tensor] = []
        self._grads: torch.Tensor | None = None
        self._before: list[torch.Tensor] = []
        self._ratios: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None

    def record(self, loss: torch.Tensor, grad_norm: torch.Tensor | None) -> None:
        """One step's loss and global grad norm, device scalars (no sync)."""
        self.losses.append(loss)
        if grad_norm is not None:
            self.grad_norms.append(grad_norm.float())

    def before_update(self) -> None:
        """At the interval's last step, gradients in hand: per-group grad norms, and the weights
        as they are before the update (one copy per interval)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        self._grads = _group_norms(grads, self.bounds)
        self._before = [p.detach().clone() for p in self.params]

    def after_update(self) -> None:
        if not self._before:
            return
        weights = [p.detach() for p in self.params]
        deltas = torch._foreach_sub(weights, self._before)
        self._ratios = _group_norms(deltas, self.bounds) / _group_norms(self._before, self.bounds).clamp_min(1e-12)
        self._weights = torch.stack([torch.linalg.vector_norm(w.detach().float()) for w in (self.embedding, self.head)])
        self._before = []

    def read(self) -> tuple[list[float], list[float], dict[str, Any]]:
        """The interval's per-step losses and grad norms and its health figures, as host values
        (the one sync of the interval); the buffers start afresh."""
        measured = self._grads is not None and self._ratios is not None and self._weights is not None
        parts = [torch.stack(self.losses + self.grad_norms).float()]
        if measured:
            parts += [self._grads, self._ratios, self._weights]
        values = torch.cat(parts).tolist()  # the one device-to-host copy
        n, groups = len(self.losses), len(self.names)
        losses, norms = values[:n], values[n:n + len(self.grad_norms)]
        health: dict[str, Any] = {}
        if measured:
            rest = values[n + len(self.grad_norms):]
            grads, ratios, (embedding, head) = rest[:groups], rest[groups:2 * groups], rest[2 * groups:]
            health = {"groups": [{"name": name, "grad_norm": _finite(g), "update_ratio": _finite(r)}
                                 for name, g, r in zip(self.names, grads, ratios)],
                      "embedding_norm": _finite(embedding), "head_norm": _finite(head)}
        self.discard()
        return losses, norms, health

    def discard(self) -> None:
        """Start the next interval afresh (each read does, once it has the interval's figures)."""
        self.losses, self.grad_norms, self._before = [], [], []
        self._grads = self._ratios = self._weights = None


def _finite(value: float) -> float | None:
    """A figure for the record: 6 significant digits, None (null) when not finite."""
    return float(f"{value:.6g}") if math.isfinite(value) else None
