"""Telling the user when it matters, with or without a terminal: which events notify (the
``notify`` key), their one-line text, and ``notify_command``, the user's own command run
once per such event with the event's record as JSON on its standard input.

The command runs in a thread of its own with a time limit, so it never slows, stops or fails
the run; its failure or time-out becomes one log line. Its output is captured, never the
terminal's (a detached app's terminal is gone, the app's is drawn by Textual).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

from .events import (Event, HparamsChanged, LogMessage, RolledBack, RunFailed, RunFinished,
                     SpikeDetected, to_record)
from .safe_text import visible

COMMAND_TIMEOUT = 10.0  # seconds a notify_command may take; then it is killed and logged
END_EVENTS = (RunFinished, RunFailed)
ALL_EVENTS = (*END_EVENTS, SpikeDetected, RolledBack)  # a spike rolled back notifies once, as its RolledBack


def notable(event: Event, level: str) -> bool:
    """Whether ``event`` notifies at this ``notify`` level: "end", "all" or "off"."""
    if level == "all":
        return isinstance(event, ALL_EVENTS) and not (isinstance(event, SpikeDetected) and event.action == "rollback")
    return level == "end" and isinstance(event, END_EVENTS)


def notification(event: Event, run_name: str) -> tuple[str, str]:
    """(title, body) of a notification, plain text with control characters escaped."""
    if isinstance(event, RunFinished):
        reason = f": {event.reason}" if event.reason else ""
        title, body = f"{run_name} {event.status}", f"step {event.step}{reason}; best val loss {event.best_val_loss:.4f}"
    elif isinstance(event, RunFailed):
        title, body = f"{run_name} failed", f"step {event.step}: {event.message}"
    elif isinstance(event, RolledBack):
        title, body = f"{run_name} rolled back", f"loss spike at step {event.step}: back to step {event.to_step}, {event.how}"
    elif isinstance(event, SpikeDetected):
        title, body = f"{run_name} loss spike", f"step {event.step}: {event.reason}"
    else:
        title, body = run_name, type(event).__name__
    return visible(title)[:120], visible(body)[:400]


class CommandNotifier:
    """A listener: runs ``command`` (through the shell) for each notable event. ``report``
    takes its log lines (the trainer's thread-safe emit)."""

    def __init__(self, command: str, level: str, run_dir: Path, run_name: str, report: Callable[[Event], None]):
        self.command, self.level = command, level
        self.run_dir, self.run_name = Path(run_dir), run_name
        self.report = report
        self.step = 0
        self.threads: list[threading.Thread] = []

    def __call__(self, event: Event) -> None:
        self.step = getattr(event, "step", self.step)
        if isinstance(event, HparamsChanged) and "notify" in event.changes:
            self.level = event.changes["notify"][1]
        if not notable(event, self.level):
            return
        record = {**to_record(event, time.time(), self.step), "run_dir": str(self.run_dir), "run_name": self.run_name}
        # Not a daemon: a process that ends right after its run waits for the command, at most its time limit.
        thread = threading.Thread(target=self._run, args=(json.dumps(record, ensure_ascii=False),),
                                  name="notify-command")
        self.threads = [t for t in self.threads if t.is_alive()] + [thread]
        thread.start()

    def _run(self, payload: str) -> None:
        try:
            # Its own session: on a time-out the whole group goes, a shell's children too (they
            # would hold the pipes open).
            proc = subprocess.Popen(self.command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        except OSError as exc:
            self.report(LogMessage("warning", f"notify_command could not start ({exc.strerror or exc})"))
            return
        try:
            out, err = proc.communicate(payload, timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            self.report(LogMessage("warning", f"notify_command did not end within {COMMAND_TIMEOUT:g} s and was "
                                              "stopped; the run is not affected"))
            return
        if proc.returncode:
            said = (err or out).strip().splitlines()
            last = f": {visible(said[-1])[:200]}" if said else ""
            self.report(LogMessage("warning", f"notify_command exited with {proc.returncode}{last}; the run is not "
                                              "affected"))

    def wait(self, timeout: float = COMMAND_TIMEOUT) -> None:
        """Let the commands started so far end (at most ``timeout`` s): tests and callers that leave."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
