"""A run that another process trains (``gpt-tui watch``, the Runs screen's Watch), followed
through its files: a thread worker reads metrics.jsonl as it grows and posts ``FollowedEvents``;
the user's commands become request files in the run directory."""
from __future__ import annotations

import time
from pathlib import Path

from textual.worker import get_current_worker

from ...engine.control import RunDirControl
from ...engine.events import RunFailed
from ...engine.follow import RunWatcher, read_status
from ..messages import FollowedEvents
from .session import RunSession

FOLLOW_INTERVAL = 0.5  # seconds between reads of a followed run's files


class WatchedRun(RunSession):
    start_offset: int | None = None  # where its metrics.jsonl starts being this run's (None: from the top)
    def __init__(self, host, run_dir: Path) -> None:
        super().__init__(host, RunDirControl(run_dir), run_dir)
        self.run_dir: Path
        self.recorded_status = read_status(run_dir)  # run.json as following began: who trains it, where

    @property
    def title(self) -> str:
        if self.result is not None:
            return f"{self.run_dir.name} · ended (was watched)"
        return f"watching {self.run_dir.name} · {self.recorded_status.get('device', '?')} on {self.recorded_status.get('host', '?')}"

    @property
    def greeting(self) -> str:
        return f"watching {self.run_dir} (pid {self.recorded_status.get('pid', '?')}): ctrl+s asks it to save, F7 to stop"

    def start(self) -> None:
        self.host.run_worker(self._follow, thread=True, exclusive=True, group="training", exit_on_error=False)

    def _follow(self) -> None:
        """Read the run's new metrics lines every FOLLOW_INTERVAL until it ends or vanishes; the
        first batch is the history already on disk (replayed: it raises no notifications)."""
        worker, watcher, replay = get_current_worker(), RunWatcher(self.run_dir, self.start_offset), True
        while not worker.is_cancelled and not watcher.done:
            exited = self.exited()  # asked before reading: an end line written just before the exit is read
            events = watcher.poll()
            if exited and not watcher.done:
                events.append(self.exit_failure(watcher.follower.step))
                watcher.done = True
            if events:
                self.host.post_message(FollowedEvents(events, replay))
            replay = False
            time.sleep(FOLLOW_INTERVAL)

    def exited(self) -> bool:
        """Whether the process this app launched for the run has exited (none here: the watcher
        finds a dead trainer through run.json)."""
        return False

    def exit_failure(self, step: int) -> RunFailed:
        raise NotImplementedError  # exited() is never True here
