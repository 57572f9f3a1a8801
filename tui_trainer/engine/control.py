"""Commands for a running trainer, safe to call from any thread; applied at step boundaries."""
from __future__ import annotations

import json
import os
import re
import stat
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
        self._outcome = "stopped"  # the status a stopped run ends with: "stopped", or "pruned" (a sweep's)
        self._save_on_stop = True
        self._paused = False
        self._save = False
        self._changes: list[tuple[dict, str, str]] = []
        self._sample: SampleRequest | None = None
        self._closed = False
        self._detached = False

    # -- called by the UI, the CLI's signal handlers, or the watch control file --
    def stop(self, reason: str = "stopped by user", save: bool = True, outcome: str = "stopped") -> None:
        """Stop at the next step boundary; ``save`` writes model.ckpt first (the default).
        ``outcome`` is the status the run ends with: "pruned" for a sweep trial cut short."""
        with self._cond:
            if self._stop_reason is None:
                self._stop_reason, self._outcome = reason, outcome
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
    def outcome(self) -> str:
        with self._cond:
            return self._outcome

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
MAX_REQUEST_BYTES = 64 * 1024  # a change's JSON is a few hundred bytes; anything larger is not ours
SOURCES = ("cli", "watch", "app")  # who may be named as a change's source; anything else reads "file"
REQUEST_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
NO_SAVE = b'{"save": false}'  # a stop request's body that asks it not to save (any other body saves)


@dataclass(frozen=True)
class Refusal:
    """A request file that was not obeyed, and why (a change it carried is answered by the
    trainer instead, with a ChangeRefused naming its id)."""
    name: str
    reason: str


def parse_change(body: bytes) -> tuple[dict, str, str]:
    """A ``set`` request's (changes, source, request id), or ValueError saying what is wrong.
    The values are checked by the trainer, as every front end's are (live.check_live_change)."""
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError("its body is not JSON text") from None
    if not isinstance(request, dict) or not isinstance(request.get("changes"), dict):
        raise ValueError('its body is not {"changes": {KEY: VALUE, ...}}')
    source = request.get("source")
    request_id = request.get("request")
    return (request["changes"], source if source in SOURCES else "file",
            request_id if isinstance(request_id, str) and REQUEST_ID.match(request_id) else "")


# A request file is ``<any>.<command>``; its content is the command's body (a change's JSON).
FILE_COMMANDS = {
    "save": lambda control, body: control.save_now(),
    "stop": lambda control, body: control.stop(f"stop requested through {REQUESTS_DIR}/", save=body != NO_SAVE),
    "pause": lambda control, body: control.pause(),
    "resume": lambda control, body: control.resume(),
    "set": lambda control, body: control.change(*parse_change(body)),
    # a sweep trial pruned by hand (the Sweep screen): it stops and saves, and its worker tells Optuna
    "prune": lambda control, body: control.stop(f"pruned through {REQUESTS_DIR}/", outcome="pruned"),
}


def take_request(path: Path) -> bytes:
    """Read and remove one request file, or raise ValueError saying why it is refused (it is
    removed then too, where it can be). Never blocks: a FIFO, a device, a socket, a symlink
    or a folder is refused unread, and so is a file over MAX_REQUEST_BYTES."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        _remove(path)
        raise ValueError(f"it cannot be opened as a plain file ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a plain file")
        if info.st_size > MAX_REQUEST_BYTES:
            raise ValueError(f"it holds {info.st_size:,} bytes, more than a request's {MAX_REQUEST_BYTES:,}")
        body = os.read(fd, MAX_REQUEST_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"it cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
        _remove(path)
    if len(body) > MAX_REQUEST_BYTES:  # it grew after the size was read
        raise ValueError(f"it holds more than a request's {MAX_REQUEST_BYTES:,} bytes")
    return body


def _remove(path: Path) -> None:
    try:
        os.unlink(path)  # a symlink goes, never what it points to
    except OSError:
        pass  # taken already, or a folder: it is refused once and then left alone


class FileRequests:
    """Commands another process leaves in ``RUN_DIR/requests/`` (a file named ``<any>.<command>``),
    for a run under nohup, tmux or torchrun. Polled at step boundaries, at most every ``interval`` s,
    so the hot loop pays one clock read. Whatever is found there is data from outside: each
    request is obeyed or refused (see :meth:`poll`), and the run goes on either way."""

    def __init__(self, run_dir: Path, interval: float = 0.5):
        self.folder = Path(run_dir) / REQUESTS_DIR
        self.interval = interval
        self._next = 0.0
        self._refused: set[str] = set()  # names refused already that could not be removed
        self._clear_leftovers()

    def _clear_leftovers(self) -> None:
        """Requests left by an earlier process of this run (a stop sent after it died, a pause
        never resumed) were meant for that process: a new start or a resume never obeys them."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        for name in names:
            _remove(self.folder / name)

    def poll(self, control: TrainingControl) -> list[Refusal]:
        """Obey the requests that arrived; returns those refused, for the trainer to report."""
        now = time.monotonic()
        if now < self._next:
            return []
        self._next = now + self.interval
        try:
            names = sorted(os.listdir(self.folder))
        except OSError:
            return []
        refused = []
        for name in names:
            if name.startswith(".") or name in self._refused:
                continue  # a request still being written by send_request, or one refused before
            apply = FILE_COMMANDS.get(name.rsplit(".", 1)[-1]) if "." in name else None
            try:
                body = take_request(self.folder / name)
                if apply is None:
                    raise ValueError(f"it names no command: a request is <any>.<{'|'.join(FILE_COMMANDS)}>")
                apply(control, body)
            except ValueError as exc:
                refused.append(Refusal(name, str(exc)))
                if os.path.lexists(self.folder / name):
                    self._refused.add(name)
        return refused


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
        send_request(self.run_dir, "stop", "" if save else NO_SAVE.decode())

    def pause(self) -> None:
        send_request(self.run_dir, "pause")

    def resume(self) -> None:
        send_request(self.run_dir, "resume")

    def save_now(self) -> None:
        send_request(self.run_dir, "save")

    def change(self, changes: dict, source: str = "watch", request: str = "") -> None:
        send_change(self.run_dir, changes, source)
