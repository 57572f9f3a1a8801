"""The clock a run's speed is measured on: tokens/s, elapsed training time and the ETA."""
from __future__ import annotations

import contextlib
import time
from typing import Iterator


class TrainingClock:
    """Measures training alone. Time spent beside the training steps (evals, saves, samples,
    requests, pauses) is left out of tokens/s; pauses are also left out of the elapsed time,
    which a resumed run continues from ``elapsed_before``."""

    def __init__(self, elapsed_before: float = 0.0):
        self.elapsed_before = elapsed_before
        self._start = self._lap = time.perf_counter()
        self._paused = 0.0

    def aside(self) -> contextlib.AbstractContextManager:
        """Work that is not a training step: the current lap's tokens/s leaves it out."""
        return self._left_out("_lap")

    def paused(self) -> contextlib.AbstractContextManager:
        """A pause (inside an ``aside``): the elapsed training time leaves it out too."""
        return self._left_out("_paused")

    @contextlib.contextmanager
    def _left_out(self, mark: str) -> Iterator[None]:
        """Move ``mark`` (a start time, or a total to subtract) on by the block's duration."""
        began = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, mark, getattr(self, mark) + time.perf_counter() - began)

    def elapsed(self) -> float:
        """Seconds of training over the whole run, resumes included, pauses excluded."""
        return self.elapsed_before + time.perf_counter() - self._start - self._paused

    def lap(self, tokens: int, steps_done: int, steps_left: int) -> tuple[float, float]:
        """(tokens/s since the last lap, seconds to go at this session's pace); starts a new lap.
        ``steps_done`` counts this session's steps, as the pace does."""
        now = time.perf_counter()
        rate = tokens / max(now - self._lap, 1e-9)
        eta = (now - self._start - self._paused) / max(steps_done, 1) * steps_left
        self._lap = now
        return rate, eta
