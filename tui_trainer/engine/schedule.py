"""The learning rate at each step."""
from __future__ import annotations

import math

from .config import TrainConfig


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """Constant (the chapter), or linear warmup then cosine decay to min_lr at max_iters."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    span = max(1, config.max_iters - config.warmup_iters)
    progress = min(1.0, (step - config.warmup_iters) / span)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.learning_rate - config.min_lr)
