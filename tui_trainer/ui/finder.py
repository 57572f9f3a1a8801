"""What the dashboard's finders share (F3 finds a learning rate, F4 a batch size): each runs
between runs, one at a time, in a worker of its own, and what it finds goes into the form only
when the user applies it. Nothing else changes: no run, no file, not the random streams."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from textual.message import Message
from textual.worker import get_current_worker

from ..engine.config import TrainConfig
from .screens import ChoiceScreen

if TYPE_CHECKING:
    from .dashboard import DashboardScreen


@dataclass
class FinderEnded(Message):
    """A finder's worker has returned (``token``: which of its starts)."""

    group: str
    token: int


class FormFinder:
    group = ""  # its workers' group
    what = ""  # what it finds, for the messages

    def __init__(self, dashboard: DashboardScreen) -> None:
        self.dashboard = dashboard
        self.running = False  # from start until the worker's last message: a stopped thread still runs a while
        self.stopped = False  # the user stopped it (its key again)
        self.token = 0  # which start a message is from: one from a stopped test is never shown
        # Set to stop the test. Never Textual's cancel: a worker cancelled before its thread ran
        # never runs at all, and then nothing would ever say it ended.
        self._stop = threading.Event()

    def start(self, config: TrainConfig) -> None:
        self.running, self.stopped = True, False
        self.token += 1
        token, stop = self.token, threading.Event()
        self._stop = stop
        self.begin()
        self.dashboard.run_worker(lambda: self._work(config, token, stop.is_set), thread=True, group=self.group,
                                  exit_on_error=False)
        self.dashboard.refresh_keys()

    def _work(self, config: TrainConfig, token: int, stopped: Callable[[], bool]) -> None:
        worker = get_current_worker()  # Textual cancels it as the app closes
        try:
            self.work(config, token, lambda: stopped() or worker.is_cancelled)
        finally:  # after whatever it posted: messages from one thread arrive in order
            self.dashboard.post_message(FinderEnded(self.group, token))

    def finished(self, message: FinderEnded) -> None:
        if self.is_current(message.token):
            self.ended()

    def is_current(self, token: int) -> bool:
        """Whether a message is from the latest start (one from a test stopped and then
        started again is not)."""
        return token == self.token

    def begin(self) -> None:
        """On the app's thread, as the worker starts."""

    def work(self, config: TrainConfig, token: int, stopped: Callable[[], bool]) -> None:
        """On the worker's thread: find (until ``stopped()``), posting what the dashboard shows
        with ``token``."""
        raise NotImplementedError

    def stop(self) -> None:
        self.stopped = True  # what it found so far is shown, but not offered
        self._stop.set()

    def ended(self) -> None:
        """Its worker has returned: its answer shown, or it failed or was stopped."""
        self.running = False
        self.dashboard.refresh_keys()

    def offer(self, question: str, apply: Callable[[], None]) -> None:
        """Ask whether to put what was found into the form."""
        self.dashboard.app.push_screen(ChoiceScreen(question, [("apply", "a", "Apply")]),
                                       lambda answer: apply() if answer == "apply" else None)
