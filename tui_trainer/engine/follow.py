"""Reading a run from its files: metrics.jsonl back into the trainer's events, and whether the
process training it still lives. This is how `gpt-tui watch`, the Runs screen and a torchrun
job followed from the app see a run that another process writes."""
from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

from .events import (EvalResult, Event, LogMessage, RecordError, RunFailed, RunFinished, RunStarted, StateChanged,
                     from_record)

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

    def skip_to(self, offset: int) -> None:
        """Read from byte ``offset`` on (what was written before it belongs to an earlier run)."""
        self._offset = offset

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
                    raise RecordError
                event = from_record(record, {"run_dir": str(self.run_dir), "best_val_loss": self.best_val_loss})
            except ValueError:  # skipped, but never silently: following goes on
                if line.strip():
                    events.append(LogMessage("warning", f"{self.path}: a line that is not a record was skipped "
                                                        f"({line[:60].decode('utf-8', 'replace')!r})"))
                continue
            if event is not None:
                self._note(event)
                events.append(event)
        return events

    def _note(self, event: Event) -> None:
        """Keep what later records may leave out: the step reached, the best val loss, the end."""
        step = getattr(event, "step", self.step)
        self.step = step if isinstance(event, RunStarted) else max(self.step, step)
        if isinstance(event, RunStarted):
            self.ended = False
        elif isinstance(event, EvalResult):
            self.best_val_loss = min(self.best_val_loss, event.val_loss)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.ended = True


def read_events(run_dir: str | Path) -> list[Event]:
    """Everything a run has logged so far."""
    return MetricsFollower(run_dir).poll()


# run.json's fields as the recorder writes them (recorder.py, rundir.py), and the types each
# may have. A field of another type (a hand edit, a torn write, another version) is left out,
# so every reader may trust what it gets.
NUMBER, TEXT, COUNT = (int, float), (str,), (int,)
STATUS_FIELDS: dict[str, tuple[type, ...]] = {
    "status": TEXT, "pid": COUNT, "host": TEXT, "device": TEXT, "num_params": COUNT, "started": NUMBER,
    "resumed": NUMBER, "ended": NUMBER, "run_name": TEXT, "max_iters": COUNT, "processes": COUNT,
    "detached": (bool,), "last_step": COUNT, "best_val_loss": NUMBER, "reason": TEXT, "error": TEXT,
    "wandb_id": TEXT, "parent": (dict,), "sweep": (dict,), "best_val_bpb": NUMBER,
    "target": (dict,),
}
# run.json's nested objects: kept only when whole. A fork's parent; a sweep trial's sweep and
# number; the target a run reached, where and after how long.
NESTED_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "parent": {"run_dir": TEXT, "step": COUNT},
    "sweep": {"dir": TEXT, "study": TEXT, "trial": COUNT},
    "target": {"metric": TEXT, "target": NUMBER, "step": COUNT, "elapsed": NUMBER},
}


def read_status(run_dir: str | Path) -> dict[str, Any]:
    """run.json's fields that have their types, or {} while it does not exist yet (or is
    being replaced, or is not a JSON object at all)."""
    try:
        raw = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    status = _typed(raw, STATUS_FIELDS)
    for key, types in NESTED_FIELDS.items():
        if key in status:
            nested = _typed(status[key], types)
            if set(nested) >= set(types):
                status[key] = nested
            else:
                del status[key]
    return status


def _typed(raw: Any, types: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    """The entries of ``raw`` (if it is a JSON object) whose values have their field's types
    (a bool is no count); unknown keys stay, as a later version may have written them."""
    if not isinstance(raw, dict):
        return {}
    return {key: value for key, value in raw.items() if key not in types or (
        isinstance(value, types[key]) and not (isinstance(value, bool) and bool not in types[key]))}


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

    def __init__(self, run_dir: str | Path, from_offset: int | None = None):
        """``from_offset``: follow metrics.jsonl from that byte on (its size as a job this app
        launched onto a run's folder began): what is before it, and run.json's word until the
        job has started, are of an earlier run."""
        self.run_dir = Path(run_dir)
        self.follower = MetricsFollower(run_dir)
        self.follower.skip_to(from_offset or 0)
        self.started = from_offset is None  # run.json speaks of the run followed (a job's: once it has started)
        self.confirm = from_offset is not None  # an end only run.json tells may be the last run's for a moment
        self.state: str | None = None
        self.done = False
        self._said_other_host = False
        self._told = False  # the last poll found an end that only run.json tells

    def poll(self) -> list[Event]:
        events = self.follower.poll()
        self.started = self.started or any(isinstance(e, RunStarted) for e in events)
        if not self.started:
            return events
        status = read_status(self.run_dir)
        if on_other_host(status) and not self._said_other_host and status.get("status") in ("running", "paused"):
            self._said_other_host = True
            events.append(LogMessage("warning", f"this run trains on {status.get('host')}: from here gpt-tui cannot "
                                                "tell whether its process still lives; the dashboard follows its files"))
        current = effective_status(status)
        told = []  # an end that run.json tells and metrics.jsonl does not
        if current == "interrupted" and not self.follower.ended:
            events += self.follower.poll()  # its last lines may have landed as the process left
            if not self.follower.ended:
                told.append(RunFailed(self.follower.step, "interrupted", (
                    f"the process training this run (pid {status.get('pid')}) is gone; its last checkpoint and "
                    f"metrics are in {self.run_dir}: resume it with gpt-tui train --resume {self.run_dir}"),
                    str(self.run_dir)))
        elif current in ("running", "paused") and current != self.state and not self.follower.ended:
            events.append(StateChanged(current, self.follower.step))
            self.state = current
        elif current in ("finished", "stopped", "pruned", "failed") and not self.follower.ended:
            events += self.follower.poll()  # the end line is written before run.json says so
            if not self.follower.ended:
                told += self._ended_by_status(status, current)
        if self.confirm:  # run.json is rewritten just after a start line: two polls must agree
            told, self._told = (told if self._told else []), bool(told)
        # Ended when its last record is an end, not at an old end in the history (a run stopped
        # and resumed has one), or when run.json tells an end its metrics lack.
        self.done = self.follower.ended or bool(told)
        return events + told

    def _ended_by_status(self, status: dict[str, Any], current: str) -> list[Event]:
        """run.json says the run ended, but metrics.jsonl has no end line (cut short, or edited):
        its end as run.json tells it."""
        step = status.get("last_step", self.follower.step)
        note = LogMessage("warning", f"{self.follower.path} ends before the run's end line; run.json says {current} "
                                     f"at step {step}")
        if current == "failed":
            return [note, RunFailed(step, "recorded", status.get("error", "the run failed"), str(self.run_dir))]
        return [note, RunFinished(step, current, status.get("reason", ""),
                                  status.get("best_val_loss", self.follower.best_val_loss), str(self.run_dir))]
