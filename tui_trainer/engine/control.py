"""Commands for a running trainer, safe to call from any thread; applied at step boundaries."""
from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .atomic import write_text_atomic

@dataclass(frozen=True)
class SampleRequest:
    prompt: str
    max_new_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None = None
    seed: int | None = None  # None: the global generator (a compare picks one for all its samples)
    compare: bool = False  # also sample best.ckpt and the kept checkpoints, with the same seed


class TrainingControl:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._stop_reason: str | None = None
        self._save_on_stop = True
        self._paused = False
        self._save = False
        self._changes: list[tuple[dict, str, str]] = []
        self._sample: SampleRequest | None = None
        self._closed = False
        self._detached = False

    # -- called by the UI, the CLI's signal handlers, or the watch control file --
    def stop(self, reason: str = "stopped by user", save: bool = True) -> None:
        """Stop at the next step boundary; ``save`` writes model.ckpt first (the default)."""
        with self._cond:
            self._stop_reason = self._stop_reason or reason
            self._save_on_stop = self._save_on_stop and save
            self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def save_now(self) -> None:
        with self._cond:
            self._save = True
            self._cond.notify_all()

    def change(self, changes: dict, source: str = "app", request: str = "") -> None:
        """Change live hyperparameters at the next step boundary (the trainer checks them)."""
        with self._cond:
            self._changes.append((dict(changes), source, request))

    def request_sample(self, request: SampleRequest) -> None:
        with self._cond:
            self._sample = request
            self._cond.notify_all()

    def detach(self) -> None:
        """The app left: the trainer records it at the next step boundary and trains on."""
        with self._cond:
            self._detached = True

    def take_detach(self) -> bool:
        with self._cond:
            detached, self._detached = self._detached, False
            return detached

    def close(self) -> None:
        """No more requests: a trainer serving them after its run returns (see wait_for_request)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- called by the trainer at a step boundary --
    @property
    def stop_reason(self) -> str | None:
        with self._cond:
            return self._stop_reason

    @property
    def save_on_stop(self) -> bool:
        with self._cond:
            return self._save_on_stop

    @property
    def paused(self) -> bool:
        with self._cond:
            return self._paused

    def wait_while_paused(self, timeout: float = 0.5) -> None:
        """Block until resumed or stopped (wakes every ``timeout`` s so callers can poll files)."""
        with self._cond:
            if self._paused and self._stop_reason is None:
                self._cond.wait(timeout)

    def wait_for_request(self) -> bool:
        """After a run: block until a save or sample is asked for (True) or the control is closed (False)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._save or self._sample is not None)
            return not self._closed

    def take_save(self) -> bool:
        with self._cond:
            save, self._save = self._save, False
            return save

    def take_changes(self) -> list[tuple[dict, str, str]]:
        with self._cond:
            changes, self._changes = self._changes, []
            return changes

    def take_sample(self) -> SampleRequest | None:
        with self._cond:
            request, self._sample = self._sample, None
            return request


REQUESTS_DIR = "requests"


def _change(control: TrainingControl, body: str) -> None:
    try:
        request = json.loads(body)
        control.change(dict(request["changes"]), str(request.get("source", "cli")), str(request.get("request", "")))
    except (ValueError, KeyError, TypeError):
        pass  # not a request send_change wrote: nothing to apply


# A request file is ``<any>.<command>``; its content is the command's body (a change's JSON).
FILE_COMMANDS = {
    "save": lambda control, body: control.save_now(),
    "stop": lambda control, body: control.stop(f"stop requested through {REQUESTS_DIR}/"),
    "pause": lambda control, body: control.pause(),
    "resume": lambda control, body: control.resume(),
    "set": _change,
}


class FileRequests:
    """Commands another process leaves in ``RUN_DIR/requests/`` (a file named ``<any>.<command>``),
    for a run under nohup, tmux or torchrun. Polled at step boundaries, at most every ``interval`` s,
    so the hot loop pays one clock read."""

    def __init__(self, run_dir: Path, interval: float = 0.5):
        self.folder = Path(run_dir) / REQUESTS_DIR
        self.interval = interval
        self._next = 0.0
        self._clear_leftovers()

    def _clear_leftovers(self) -> None:
        """Requests left by an earlier process of this run (a stop sent after it died, a pause
        never resumed) were meant for that process: a new start or a resume never obeys them."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            try:
                os.unlink(self.folder / name)
            except OSError:
                pass

    def poll(self, control: TrainingControl) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return
        for name in names:
            if name.startswith("."):
                continue  # a request still being written by send_request
            apply = FILE_COMMANDS.get(name.rsplit(".", 1)[-1])
            try:
                body = (self.folder / name).read_text(encoding="utf-8")
                os.unlink(self.folder / name)
            except (OSError, ValueError):
                continue  # taken by someone else, or not text
            if apply:
                apply(control, body)


def send_request(run_dir: Path, command: str, body: str = "") -> Path:
    """Ask the process training in ``run_dir`` to save, stop, pause, resume or change
    hyperparameters (``set``) at its next step boundary."""
    if command not in FILE_COMMANDS:
        raise ValueError(f"command {command!r}: must be one of {', '.join(FILE_COMMANDS)}")
    folder = Path(run_dir) / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{time.time_ns()}.{command}"
    write_text_atomic(path, body)  # a reader never sees a half-made request
    return path


def send_change(run_dir: Path, changes: dict, source: str) -> str:
    """Ask for live hyperparameter changes; returns the request's id, which the run's
    ``hparams`` record carries once applied."""
    request = uuid.uuid4().hex[:12]
    send_request(run_dir, "set", json.dumps({"changes": changes, "source": source, "request": request}))
    return request


class RunDirControl:
    """The commands of :class:`TrainingControl` that a run in another process accepts
    (``gpt-tui watch``, or a torchrun job the app launched), sent as request files."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def stop(self, reason: str = "", save: bool = True) -> None:
        send_request(self.run_dir, "stop")  # that process always saves on a stop request

    def pause(self) -> None:
        send_request(self.run_dir, "pause")

    def resume(self) -> None:
        send_request(self.run_dir, "resume")

    def save_now(self) -> None:
        send_request(self.run_dir, "save")

    def change(self, changes: dict, source: str = "watch", request: str = "") -> None:
        send_change(self.run_dir, changes, source)
