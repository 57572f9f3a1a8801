"""Typed events: the only channel from the trainer to whoever watches it (CLI, app, tests)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union


@dataclass(frozen=True)
class RunStarted:
    run_dir: str
    device: str
    dtype: str
    num_params: int
    vocab_size: int
    train_tokens: int
    val_tokens: int
    tokens_per_step: int
    start_step: int
    max_iters: int


@dataclass(frozen=True)
class StateChanged:
    """The loop's state: "compiling", "running" or "paused"."""
    state: str
    step: int


@dataclass(frozen=True)
class StepMetrics:
    step: int
    loss: float           # mean train loss over the steps since the last report
    lr: float
    tokens_per_sec: float
    elapsed: float        # seconds of training, pauses excluded
    eta: float            # seconds to max_iters at the current speed
    mfu: float | None = None  # model FLOPs utilization per device, 0..1; None when the peak is unknown


@dataclass(frozen=True)
class EvalResult:
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str
    kind: str  # "latest" or "best"


@dataclass(frozen=True)
class SampleText:
    step: int
    prompt: str
    text: str


@dataclass(frozen=True)
class LogMessage:
    level: str  # "info", "warning" or "error"
    text: str


@dataclass(frozen=True)
class RunFinished:
    step: int
    status: str  # "finished" or "stopped"
    reason: str
    best_val_loss: float
    run_dir: str


@dataclass(frozen=True)
class RunFailed:
    step: int
    kind: str  # "nonfinite", "oom", "input" or "error"
    message: str
    run_dir: str


Event = Union[RunStarted, StateChanged, StepMetrics, EvalResult, CheckpointSaved, SampleText, LogMessage,
              RunFinished, RunFailed]
EventCallback = Callable[[Event], None]
