"""Messages shared by several widgets. Engine events cross from the training thread as
``EngineEvents`` batches through ``post_message``, which is thread-safe and never blocks the
trainer (see event_batches.py)."""
from __future__ import annotations

from textual.message import Message

from ..engine.events import Event


class EngineEvents(Message):
    """Events from the trainer, in order (step metrics, eval, checkpoint, sample, finished...)."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class TrainerReady(Message):
    """The worker built a Trainer: the app keeps it for save, sample and stop after the run."""

    def __init__(self, trainer) -> None:
        super().__init__()
        self.trainer = trainer


class CorpusInfo(Message):
    """Token count and vocabulary of the corpus the form names (or why it cannot be read)."""

    def __init__(self, key: tuple, tokens: int | None, vocab_size: int | None, error: str | None = None) -> None:
        super().__init__()
        self.key = key
        self.tokens = tokens
        self.vocab_size = vocab_size
        self.error = error


class FollowedEvents(Message):
    """Events read from the metrics.jsonl of a run another process trains (watch, torchrun).

    ``replay`` marks the history already on disk when following began: it fills the plot
    and the log, but raises no notifications."""

    def __init__(self, events: list[Event], replay: bool) -> None:
        super().__init__()
        self.events = events
        self.replay = replay


class TokenizeProgress(Message):
    """First-time tokenization of a corpus: ``done`` of ``total`` bytes (from any worker)."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__()
        self.done = done
        self.total = total
