"""The learning-rate range test (Smith, "Cyclical Learning Rates", 2015; fastai's lr_find).

A fresh model, built from the config and its seed as a run would build it (or a run's
checkpoint, to choose the learning rate of a continuation), trains for a few steps while the
learning rate grows exponentially from ``low`` to ``high``. The loss, smoothed, falls, then
turns and diverges; the test stops once it is DIVERGED times its lowest. The suggestion is
the learning rate where the smoothed loss falls fastest against log(lr), before its lowest
point (fastai's "steep" rule).

Nothing it touches is kept: no run directory is written, and the random streams of the
process are as they were (a run started afterwards is bit for bit the run it would have been).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .config import TrainConfig
from .data import Batcher, Progress
from .probe import Probe, probing
from .run_plan import RunPlan

LOW, HIGH, STEPS = 1e-7, 10.0, 100
SMOOTHING = 0.98  # the loss's moving average (bias-corrected), as fastai's
DIVERGED = 4.0  # the test stops once the smoothed loss is this many times its lowest
RULE = "steepest descent of the smoothed loss against log(lr), before its lowest point"


@dataclass(frozen=True)
class LrFinding:
    points: list[tuple[float, float]]  # (learning rate, smoothed loss), in the order tried
    suggestion: float | None  # None when too few points fell to tell
    stopped: str  # why the test ended

    def to_json(self) -> dict:
        return {"suggestion": self.suggestion, "rule": RULE, "stopped": self.stopped,
                "points": [[lr, loss] for lr, loss in self.points]}


def learning_rates(steps: int, low: float = LOW, high: float = HIGH) -> list[float]:
    """``steps`` learning rates from ``low`` to ``high``, evenly spaced in log(lr)."""
    if steps == 1:
        return [low]
    return [low * (high / low) ** (i / (steps - 1)) for i in range(steps)]


def suggest(points: list[tuple[float, float]]) -> float | None:
    """The learning rate at the steepest fall of the smoothed loss against log(lr), among the
    points before its lowest one; None with fewer than 5 of those."""
    lowest = min(range(len(points)), key=lambda i: points[i][1]) if points else 0
    falling = points[:lowest + 1]
    if len(falling) < 5:
        return None
    slopes = [(falling[i + 1][1] - falling[i][1]) / (math.log(falling[i + 1][0]) - math.log(falling[i][0]))
              for i in range(len(falling) - 1)]
    steepest = min(range(len(slopes)), key=slopes.__getitem__)
    return falling[steepest][0]


def find_lr(plan: RunPlan | TrainConfig, steps: int = STEPS, low: float = LOW, high: float = HIGH,
            on_point: Callable[[float, float], None] | None = None, progress: Progress | None = None,
            cancelled: Callable[[], bool] = lambda: False) -> LrFinding:
    """Run the range test for ``plan`` (a config: a fresh model; a fork plan: that run's
    checkpoint). ``on_point(lr, smoothed_loss)`` hears each step; ``cancelled`` ends it early."""
    plan = RunPlan.new(plan) if isinstance(plan, TrainConfig) else plan
    read = plan.resumption  # a fork's checkpoint as it is: the test trains no steps of the run
    config, ckpt = (read.config, read.checkpoint) if read else (plan.config, None)
    with probing(config, ckpt, progress) as probe:
        batches = torch.Generator().manual_seed(config.TORCH_SEED)
        return _range_test(probe, probe.batcher(config.batch_size), batches, learning_rates(steps, low, high),
                           on_point, cancelled)


def _range_test(probe: Probe, batcher: Batcher, batches: torch.Generator, rates: list[float], on_point,
                cancelled) -> LrFinding:
    points: list[tuple[float, float]] = []
    average, lowest, stopped = 0.0, math.inf, f"reached lr {rates[-1]:g}"
    for i, lr in enumerate(rates):
        if cancelled():
            stopped = f"cancelled at lr {lr:.3g}"
            break
        probe.updater.set_lr(lr)
        value = probe.step(*batcher.get("train", batches)).item()
        if not math.isfinite(value):
            stopped = f"the loss was not finite at lr {lr:.3g}"
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (i + 1))
        points.append((lr, smoothed))
        if on_point:
            on_point(lr, smoothed)
        lowest = min(lowest, smoothed)
        if smoothed > DIVERGED * lowest:
            stopped = f"the loss diverged at lr {lr:.3g} ({DIVERGED:g} x its lowest)"
            break
    return LrFinding(points, suggest(points), stopped)
