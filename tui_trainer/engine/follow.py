"""Reading a run from its files: metrics.jsonl back into the trainer's events, and whether the
process training it still lives. This is how `gpt-tui watch`, the Runs screen and a torchrun
job followed from the app see a run that another process writes."""
from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

from .events import (CheckpointSaved, EvalResult, Event, LogMessage, RunFailed, RunFinished, RunStarted, SampleText,
                     StateChanged, StepMetrics)


def _num(value: Any) -> float:
    """metrics.jsonl writes NaN and inf as null."""
    return math.nan if value is None else float(value)


class MetricsFollower:
    """Turns the lines added to ``RUN_DIR/metrics.jsonl`` since the last :meth:`poll` into events.

    A line still being written (no newline yet) waits for the next poll; a line that does
    not parse is skipped, so a torn write never stops the reader.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.step = 0
        self.best_val_loss = math.inf
        self.ended = False  # the last record read is an "end" or "failed" line
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[Event]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        events: list[Event] = []
        for line in lines:
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError
            except ValueError:  # skipped, but never silently: following goes on
                if line.strip():
                    events.append(LogMessage("warning", f"{self.path}: a line that is not a record was skipped "
                                                        f"({line[:60].decode('utf-8', 'replace')!r})"))
                continue
            event = self._event(record)
            if event is not None:
                events.append(event)
        return events

    def _event(self, r: dict[str, Any]) -> Event | None:
        kind, step = r.get("event"), int(r.get("step", 0))
        self.step = max(self.step, step) if kind != "start" else step
        if kind == "start":
            self.ended = False
            return RunStarted(str(self.run_dir), r.get("device", "?"), r.get("dtype", "?"), r.get("num_params", 0),
                              r.get("vocab_size", 0), r.get("train_tokens", 0), r.get("val_tokens", 0),
                              r.get("tokens_per_step", 0), step, r.get("max_iters", step))
        if kind == "step":
            return StepMetrics(step, _num(r.get("loss")), _num(r.get("lr")), _num(r.get("tokens_per_sec")),
                               _num(r.get("elapsed")), _num(r.get("eta")), r.get("mfu"))
        if kind == "eval":
            self.best_val_loss = min(self.best_val_loss, _num(r.get("val_loss")))
            return EvalResult(step, _num(r.get("train_loss")), _num(r.get("val_loss")), self.best_val_loss)
        if kind == "checkpoint":
            return CheckpointSaved(step, r.get("path", ""), r.get("kind", "latest"))
        if kind == "sample":
            return SampleText(step, r.get("prompt", ""), r.get("text", ""))
        if kind == "end":
            self.ended = True
            return RunFinished(step, r.get("status", "finished"), r.get("reason", ""), self.best_val_loss,
                               str(self.run_dir))
        if kind == "failed":
            self.ended = True
            return RunFailed(step, r.get("kind", "error"), r.get("message", ""), str(self.run_dir))
        return None


def read_events(run_dir: str | Path) -> list[Event]:
    """Everything a run has logged so far."""
    return MetricsFollower(run_dir).poll()


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """run.json, or {} while it does not exist yet (or is being replaced)."""
    try:
        return json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def on_other_host(status: dict[str, Any]) -> bool:
    return status.get("host") not in (None, socket.gethostname())


def process_alive(status: dict[str, Any]) -> bool | None:
    """Whether the process of a running run still exists; None when it is on another host.

    A pid alone is not enough: once the process died, the system may give its number to a new
    one. A process younger than the run's (re)start, or a zombie, is not the run's."""
    import psutil

    pid = status.get("pid")
    if not pid or on_other_host(status):
        return None
    try:
        process = psutil.Process(int(pid))
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        began = max(status.get("started") or 0.0, status.get("resumed") or 0.0)
        return not began or process.create_time() <= began + 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # alive, owned by someone else


def effective_status(status: dict[str, Any]) -> str:
    """run.json's status, except that a "running" run whose process is gone was interrupted
    (killed, or its machine went down): its last checkpoint and metrics are what is left."""
    state = status.get("status", "unknown")
    if state in ("running", "paused") and process_alive(status) is False:
        return "interrupted"
    return state


class RunWatcher:
    """Follows a run another process trains: each :meth:`poll` returns the events logged since
    the last one, plus a StateChanged when run.json says it paused or resumed, and a RunFailed
    ("interrupted") when its process is gone without an end line. ``done`` once it ended."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.follower = MetricsFollower(run_dir)
        self.state: str | None = None
        self.done = False
        self._said_other_host = False

    def poll(self) -> list[Event]:
        events = self.follower.poll()
        status = read_status(self.run_dir)
        if on_other_host(status) and not self._said_other_host and status.get("status") in ("running", "paused"):
            self._said_other_host = True
            events.append(LogMessage("warning", f"this run trains on {status.get('host')}: from here gpt-tui cannot "
                                                "tell whether its process still lives; the dashboard follows its files"))
        current = effective_status(status)
        if current == "interrupted" and not self.follower.ended:
            events += self.follower.poll()  # its last lines may have landed as the process left
            if not self.follower.ended:
                events.append(RunFailed(self.follower.step, "interrupted", (
                    f"the process training this run (pid {status.get('pid')}) is gone; its last checkpoint and "
                    f"metrics are in {self.run_dir}: resume it from the Runs screen (F2) or with "
                    f"gpt-tui train --resume {self.run_dir}"), str(self.run_dir)))
        elif current in ("running", "paused") and current != self.state and not self.follower.ended:
            events.append(StateChanged(current, self.follower.step))
            self.state = current
        self.done = any(isinstance(e, (RunFinished, RunFailed)) for e in events)
        return events
