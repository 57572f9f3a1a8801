"""Loss spikes: found in the per-step losses of each log interval, and undone by returning to
an in-memory snapshot of the interval's start (BigScience did this by hand: restart from an
earlier checkpoint, skip the data, lower the learning rate)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .rng import RankRandom

EMA_DECAY = 0.98  # the moving average a spike is measured against (a time constant of ~50 steps)
WARMUP_STEPS = 50  # steps the average needs before it judges
ROLLBACK_LIMIT, ROLLBACK_WINDOW = 3, 200  # this many rollbacks within this many steps stop the run
LR_CHANGE_WINDOW = 50  # a spike this soon after a live learning-rate change undoes the change


@dataclass(frozen=True)
class Spike:
    step: int
    loss: float
    ema: float
    grad_norm: float | None
    reason: str


class SpikeGuard:
    """The train loss's moving average, and the test against it."""

    def __init__(self) -> None:
        self.ema = math.nan
        self.seen = 0

    def check(self, first_step: int, losses: list[float], norms: list[float], factor: float,
              gradients: bool = True) -> Spike | None:
        """The first spike among an interval's steps (``first_step`` + 1 onwards), if any; the
        average learns every other step. ``gradients`` False: a non-finite gradient is no spike
        (float16's loss scaler skips such steps and lowers its scale, by design)."""
        spike = None
        for i, loss in enumerate(losses):
            norm = norms[i] if i < len(norms) else None
            reason = None
            if not math.isfinite(loss):
                reason = "the loss is not finite"
            elif gradients and norm is not None and not math.isfinite(norm):
                reason = "the gradient is not finite"
            elif self.seen >= WARMUP_STEPS and loss > factor * self.ema:
                reason = f"loss {loss:.4f} is above {factor:g} x its average {self.ema:.4f}"
            if reason:
                spike = spike or Spike(first_step + i + 1, loss, self.ema, norm, reason)
                continue
            self.ema = loss if self.seen == 0 else EMA_DECAY * self.ema + (1 - EMA_DECAY) * loss
            self.seen += 1
        return spike

    def restart(self) -> None:
        """After a spike that training goes on from (warn): the new level is the new normal."""
        self.ema, self.seen = math.nan, 0

    def state(self) -> tuple[float, int]:
        return self.ema, self.seen

    def restore(self, state: tuple[float, int]) -> None:
        self.ema, self.seen = state


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


class Snapshot:
    """Weights, optimizer state and the dropout RNG at the start of a log interval, copied on
    the device (no file I/O). The batch generator is not kept: after a rollback the run draws
    new batches instead of the ones that caused the spike."""

    def __init__(self) -> None:
        self.step = -1
        self._weights: list[torch.Tensor] = []
        self._optimizer: dict[str, Any] = {}
        self._rng: dict[str, torch.Tensor] = {}
        self.extra: dict[str, Any] = {}

    def take(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, random: RankRandom,
             **extra: Any) -> None:
        params = [p.detach() for p in model.parameters()]
        if len(self._weights) == len(params):
            torch._foreach_copy_(self._weights, params)  # the buffers of the last snapshot, reused
        else:
            self._weights = [p.clone() for p in params]
        self._optimizer = _clone(optimizer.state_dict())
        self._rng = random.dropout_state()
        self.step, self.extra = step, extra

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, random: RankRandom) -> None:
        with torch.no_grad():
            torch._foreach_copy_([p for p in model.parameters()], self._weights)
        optimizer.load_state_dict(_clone(self._optimizer))  # a copy: training must not write into the snapshot
        random.restore_dropout(self._rng)


class Rewind:
    """The snapshots of the last two interval starts. An update shows in the loss of the step
    after it, so a spike on the first step after the newest snapshot may come from the update
    just before it, which that snapshot holds: then the older one is the state to return to."""

    def __init__(self) -> None:
        self._older, self._newest = Snapshot(), Snapshot()

    def take(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, random: RankRandom,
             **extra: Any) -> None:
        self._older.take(step, model, optimizer, random, **extra)  # the oldest one's buffers, reused
        self._older, self._newest = self._newest, self._older

    def before(self, spike_step: int) -> Snapshot | None:
        """The snapshot to return to after a spike at ``spike_step`` (None before the first one)."""
        if self._newest.step < 0:
            return None
        if spike_step <= self._newest.step + 1 and self._older.step >= 0:
            return self._older
        return self._newest

    def clear(self) -> None:
        """After a rollback both are ahead of, or equal to, where the run is: start afresh."""
        self._older.step = self._newest.step = -1
