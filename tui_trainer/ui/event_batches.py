"""Engine events cross from the training thread to the app in batches.

A tiny model reports hundreds of times a second; one message each would keep the app's
thread busy competing with the trainer for the GIL, until key presses wait behind a backlog
that never drains. Frequent events (step metrics, evals) are gathered for at most
``interval`` seconds; anything else (state, checkpoint, sample, end) goes at once, with
whatever was gathered before it, so the order never changes.
"""
from __future__ import annotations

import time
from typing import Callable

from ..engine.events import EvalResult, Event, StepMetrics

FREQUENT = (StepMetrics, EvalResult)


class EventBatches:
    """The trainer's event callback on the app side (called on the training thread only)."""

    def __init__(self, post: Callable[[list[Event]], None], interval: float = 0.1) -> None:
        self.post = post
        self.interval = interval
        self._pending: list[Event] = []
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        self._pending.append(event)
        now = time.monotonic()
        if not isinstance(event, FREQUENT) or now - self._last >= self.interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if self._pending:
            events, self._pending = self._pending, []
            self._last = time.monotonic() if now is None else now
            self.post(events)
