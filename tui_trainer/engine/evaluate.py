"""The train/valid loss estimate the chapter makes every eval_interval steps."""
from __future__ import annotations

import torch

from .data import Batcher
from .device import autocast
from .distributed import Distributed


@torch.no_grad()
def estimate_loss(model: torch.nn.Module, batcher: Batcher, batches: torch.Generator, iters: int,
                  dtype: torch.dtype, dist: Distributed) -> dict[str, float]:
    """Mean loss over ``iters`` batches of each split, in eval mode (no dropout); under torchrun
    each rank draws its own batches and the means are averaged over ranks."""
    model.eval()
    result = {}
    for split in ("train", "val"):
        losses = torch.zeros(iters, device=batcher.device)
        for i in range(iters):
            x, y = batcher.get(split, batches)
            with autocast(batcher.device, dtype):
                _, loss = model(x, y)
            losses[i] = loss.float()
        result[split] = dist.all_reduce(losses.mean(), "avg").item()
    model.train()
    return result
