"""Engine events cross from the training thread to the app in batches.

A tiny model reports hundreds of times a second; one message each would keep the app's
thread busy competing with the trainer for the GIL, until key presses wait behind a backlog
that never drains. Frequent events (step metrics, evals) are gathered for at most
``interval`` seconds, a timer posting them when no later event does (through a whole eval,
say); anything else (state, checkpoint, sample, end) goes at once, with whatever was
gathered before it, so the order never changes.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from ..engine.events import EvalResult, Event, StepMetrics

FREQUENT = (StepMetrics, EvalResult)


class EventBatches:
    """The trainer's event callback on the app side (called on the training thread, and on
    the trainer's notify thread; the timer posts from its own)."""

    def __init__(self, post: Callable[[list[Event]], None], interval: float = 0.1) -> None:
        self.post = post
        self.interval = interval
        self._pending: list[Event] = []
        self._last = 0.0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self._pending.append(event)
            now = time.monotonic()
            if not isinstance(event, FREQUENT) or now - self._last >= self.interval:
                self._flush(now)
            elif self._timer is None:
                self._timer = threading.Timer(self.interval - (now - self._last), self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Post what is held now (the timer's, and the caller's once the run has returned)."""
        with self._lock:
            self._flush(time.monotonic())

    def _flush(self, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            events, self._pending = self._pending, []
            self._last = now
            self.post(events)
