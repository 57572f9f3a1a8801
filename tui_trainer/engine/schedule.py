"""The learning rate at each step."""
from __future__ import annotations

import math

from .config import TrainConfig


def decay_start(config: TrainConfig) -> int | None:
    """The step a wsd schedule's decay begins: the last decay_fraction of max_iters (never
    inside the warmup). It moves with max_iters, so a run extended before it (a larger
    max_iters, live or in a fork) decays at its new end without a second warmup."""
    if config.lr_schedule != "wsd":
        return None
    return max(config.warmup_iters, round(config.max_iters * (1 - config.decay_fraction)))


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """Constant (the chapter); or linear warmup, then cosine decay to min_lr at max_iters; or
    warmup, a stable phase at learning_rate, then a linear decay to min_lr (wsd)."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    if config.lr_schedule == "wsd":
        start = decay_start(config)
        progress = min(1.0, max(0, step - start) / max(1, config.max_iters - start))
        return config.learning_rate + (config.min_lr - config.learning_rate) * progress
    span = max(1, config.max_iters - config.warmup_iters)
    progress = min(1.0, (step - config.warmup_iters) / span)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.learning_rate - config.min_lr)
