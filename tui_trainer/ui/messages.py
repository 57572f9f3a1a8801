"""Messages shared by several widgets (toolong's style: dataclass Messages in one module).

Engine events cross from the training thread as ``EngineEvents`` batches through
``post_message``, which is thread-safe and never blocks the trainer (see event_batches.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from ..engine.events import Event


@dataclass
class EngineEvents(Message):
    """Events from the trainer, in order (step metrics, eval, checkpoint, sample, finished...)."""

    events: list[Event]


@dataclass
class CorpusInfo(Message):
    """Token count and vocabulary of the corpus the form names (or why it cannot be read)."""

    key: tuple
    tokens: int | None
    vocab_size: int | None
    error: str | None = None
    ask: bool = False  # ``error`` is a question (read a large corpus?), not a fault


@dataclass
class FollowedEvents(Message):
    """Events read from the metrics.jsonl of a run another process trains (watch, torchrun).

    ``replay`` marks the history already on disk when following began: it fills the plot
    and the log, but raises no notifications."""

    events: list[Event]
    replay: bool


@dataclass
class TokenizeProgress(Message):
    """First-time tokenization of a corpus: ``done`` of ``total`` bytes (from any worker)."""

    done: int
    total: int
