"""The signals that end a run, for the CLI and the app alike: SIGINT (Ctrl+C), SIGTERM (kill,
a job scheduler) and SIGHUP (the terminal went away: a closed SSH session)."""
from __future__ import annotations

import signal
from typing import Callable

# How a process stopped by a signal exits (128 + the signal number).
SIGNAL_EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class SignalHandlers:
    """``handler`` for each of the three signals until :meth:`restore` (or the ``with`` block's
    end) puts the previous handlers back. ``received`` is the first signal that arrived."""

    def __init__(self, handler: Callable[[int], None]):
        self.handler = handler
        self.received: int | None = None
        self._previous: dict = {}

    def _handle(self, signum: int, frame) -> None:
        self.received = self.received or signum
        self.handler(signum)

    def install(self) -> "SignalHandlers":
        for sig in SIGNAL_EXIT_CODES:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    @property
    def exit_code(self) -> int | None:
        return SIGNAL_EXIT_CODES[self.received] if self.received else None

    def __enter__(self) -> "SignalHandlers":
        return self.install()

    def __exit__(self, *exc) -> None:
        self.restore()
