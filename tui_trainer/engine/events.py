"""Typed events: the only channel from the trainer to whoever watches it (CLI, app, tests, the
run directory), and their one codec to and from ``metrics.jsonl`` lines.

A record is the event's dataclass fields plus an ``event`` tag (see TAGS) and the ``time`` it
was written. ``run_dir`` is never written (the file's own folder says it), and JSON has no
NaN or inf, so those floats are written as null. Reading is lenient, so old and torn files
replay: a missing field takes the reader's context (e.g. the best val loss so far), else its
dataclass default, else an empty value of its type (NaN for a float).
"""
from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Union


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
    step: int             # the step it starts from: 0, or the checkpoint's step on a resume
    max_iters: int
    processes: int = 1    # torchrun processes training it together
    parent: str = ""      # the run directory it was forked from, if it was
    labels: dict = field(default_factory=dict)  # what run.json records of who started it: a sweep trial's sweep


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
    grad_norm: float | None = None  # mean global gradient norm before clipping; None with health off
    clipped: int = 0  # steps of the interval whose gradients grad_clip scaled down
    health: dict = field(default_factory=dict)  # see engine/health.py: per group grad norm and update ratio


@dataclass(frozen=True)
class TargetReached:
    """An eval reached the run's target (``metric``: val_loss or val_bpb): the run ends there, saved."""
    step: int
    metric: str
    target: float
    value: float
    elapsed: float  # seconds of training to get there


@dataclass(frozen=True)
class SpikeDetected:
    """The train loss at ``step`` jumped above spike_factor x its moving average (``ema``), or a
    loss or gradient was not finite; ``action`` is what the run does about it."""
    step: int
    loss: float
    ema: float
    grad_norm: float | None
    reason: str
    action: str


@dataclass(frozen=True)
class RolledBack:
    """After a spike at ``step``: weights, optimizer and dropout RNG back to ``to_step``, the
    batches in between skipped, the learning rate ``lr_before`` -> ``lr_after``."""
    step: int
    to_step: int
    lr_before: float
    lr_after: float
    how: str


@dataclass(frozen=True)
class EvalResult:
    step: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    val_bpb: float | None = None  # the val loss in bits per UTF-8 byte of the val split (tokenizer-free)


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str
    kind: str  # "latest" or "best"


@dataclass(frozen=True)
class SampleText:
    """Generated text at ``step`` with its tokens (see sampling.Generation); ``source`` is the
    checkpoint file it came from ("" for the running model), ``compare`` the id shared by the
    samples of one comparison (same prompt and ``seed``)."""
    step: int
    prompt: str
    text: str
    tokens: list = field(default_factory=list)
    source: str = ""
    seed: int | None = None
    compare: str = ""


@dataclass(frozen=True)
class HparamsChanged:
    """Live hyperparameters changed from ``step`` on: {key: [old, new]}, asked for by "app",
    "watch" or "cli"; ``request`` is the id a `gpt-tui set` waits for."""
    step: int
    changes: dict
    source: str
    request: str = ""


@dataclass(frozen=True)
class ChangeRefused:
    """A live change from ``source`` refused at ``step``, the run untouched: ``reason`` says why;
    ``request`` is the id of the change it answers ("" for the app's own)."""
    step: int
    request: str
    reason: str
    source: str = ""


@dataclass(frozen=True)
class Detached:
    """The app that trains this run left its terminal (its Detach, or a hang-up with on_hangup =
    "detach"): process ``pid`` trains on without a UI, steered through the run directory."""
    step: int
    pid: int


@dataclass(frozen=True)
class LogMessage:
    level: str  # "info", "warning" or "error"
    text: str


@dataclass(frozen=True)
class RunFinished:
    step: int
    status: str  # "finished", "stopped", or "pruned" (a sweep trial cut short)
    reason: str
    best_val_loss: float
    run_dir: str


@dataclass(frozen=True)
class RunFailed:
    step: int
    kind: str  # "nonfinite", "oom", "input", "error" (a bug: ``details`` holds its traceback), ...
    message: str
    run_dir: str
    details: str = ""


Event = Union[RunStarted, StateChanged, StepMetrics, EvalResult, CheckpointSaved, SampleText, HparamsChanged,
              ChangeRefused, Detached, LogMessage, TargetReached, SpikeDetected, RolledBack, RunFinished, RunFailed]
EventCallback = Callable[[Event], None]

# The ``event`` tag of each type in metrics.jsonl (the names the file has always used).
TAGS: dict[type, str] = {RunStarted: "start", StateChanged: "state", StepMetrics: "step", EvalResult: "eval",
                         CheckpointSaved: "checkpoint", SampleText: "sample", HparamsChanged: "hparams",
                         ChangeRefused: "refused", Detached: "detached", LogMessage: "log", TargetReached: "target",
                         SpikeDetected: "spike", RolledBack: "rollback",
                         RunFinished: "end", RunFailed: "failed"}
TYPES: dict[str, type] = {tag: cls for cls, tag in TAGS.items()}
NOT_WRITTEN = ("run_dir",)


class RecordError(ValueError):
    """A metrics line that is a JSON object but not an event (a field of the wrong type)."""


def json_value(value: Any) -> Any:
    """JSON has no NaN or inf: they are written as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def to_record(event: Event, time: float, step: int = 0) -> dict[str, Any]:
    """The metrics.jsonl record of ``event``; ``step`` stamps events that carry none (log lines),
    so every line has one."""
    record: dict[str, Any] = {"event": TAGS[type(event)], "step": step, "time": round(time, 3)}
    record.update((f.name, json_value(getattr(event, f.name))) for f in fields(event) if f.name not in NOT_WRITTEN)
    return record


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, hint: Any) -> Any:
    """A JSON value as the field's type: null is NaN for a float, None where None is allowed."""
    optional = isinstance(hint, types.UnionType) and type(None) in hint.__args__
    base = next(a for a in hint.__args__ if a is not type(None)) if optional else hint
    if value is None:
        if optional:
            return None
        if base is float:
            return math.nan
        raise RecordError("null")
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is str and isinstance(value, str):
        return value
    if base is dict and isinstance(value, dict):
        return value
    if base is list and isinstance(value, list):
        return value
    raise RecordError(f"{value!r} is not a {base.__name__}")


def _empty(hint: Any) -> Any:
    if isinstance(hint, types.UnionType):
        return None
    return {float: math.nan, int: 0, str: "", dict: {}, list: []}[hint]


def from_record(record: dict[str, Any], context: dict[str, Any] | None = None) -> Event | None:
    """The event a metrics.jsonl record holds; None for a tag this version does not know.
    Raises RecordError for a record whose fields do not fit its event."""
    cls = TYPES.get(record.get("event"))  # type: ignore[arg-type]
    if cls is None:
        return None
    context = context or {}
    values = {}
    for f in fields(cls):
        hint = _hints(cls)[f.name]
        if f.name in record and f.name not in NOT_WRITTEN:
            values[f.name] = _coerce(record[f.name], hint)
        elif f.name in context:
            values[f.name] = context[f.name]
        elif f.default is not MISSING:
            values[f.name] = f.default
        elif f.default_factory is not MISSING:
            values[f.name] = f.default_factory()
        else:
            values[f.name] = _empty(hint)
    return cls(**values)
