"""One writer per run directory: an advisory lock on RUN_DIR/run.lock, held while a process
trains the run (and serves saves after it).

The lock is ``flock``'s: the kernel drops it when its holder dies, however it dies (``kill -9``
included), so a stale lock never outlives a crash. A pid in a file alone could not tell a dead
holder from a live one. The file also names its holder (pid, host, command) so that a second
writer can say who holds the run; that text is only information, the lock is what counts.

Readers (runs, watch, sample, set) never take it.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .errors import RunDirError
from .rundir import unwritable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "run.lock"
# A holder in this very process is a run whose thread is still closing (the app started the
# next one on the same folder): it lets go within a step, so wait for it this long.
SAME_PROCESS_WAIT = 10.0


def lock_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / LOCK_NAME


def read_holder(run_dir: str | Path) -> dict[str, Any]:
    """What the lock file says of its holder ({} when unreadable); information only."""
    try:
        holder = json.loads(lock_path(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def held_error(run_dir: Path) -> RunDirError:
    holder = read_holder(run_dir)
    pid, host = holder.get("pid", "?"), holder.get("host", "?")
    command = str(holder.get("command", ""))[:120]
    doing = f" ({command})" if command else ""
    return RunDirError(f"run {str(run_dir)!r} is being written by process {pid} on {host}{doing}: one process "
                       f"writes a run at a time; follow it with gpt-tui watch {run_dir}, or wait until it ends")


class RunLock:
    """The held lock of one run directory; :meth:`release` (or the holder's death) frees it."""

    def __init__(self, run_dir: Path, fd: int | None):
        self.run_dir = run_dir
        self._fd = fd

    @classmethod
    def acquire(cls, run_dir: str | Path) -> "RunLock":
        """Take the run's lock, or raise RunDirError naming its holder. Creates the folder."""
        run_dir = Path(run_dir)
        if fcntl is None:  # pragma: no cover
            return cls(run_dir, None)
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path(run_dir), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise unwritable(run_dir, exc) from None
        deadline = time.monotonic() + SAME_PROCESS_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if read_holder(run_dir).get("pid") != os.getpid() or time.monotonic() > deadline:
                    os.close(fd)
                    raise held_error(run_dir) from None
                time.sleep(0.05)
        # The holder's name, written only once the lock is ours: a refused writer changes nothing.
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "command": " ".join(["gpt-tui", *sys.argv[1:]])[:500]}).encode())
        return cls(run_dir, fd)

    @classmethod
    def refuse_if_held(cls, run_dir: str | Path) -> None:
        """Raise RunDirError if another process holds ``run_dir`` (a check before launching one
        that will take it, e.g. torchrun's rank 0); changes nothing in the folder."""
        path = lock_path(run_dir)
        if fcntl is None or not path.is_file():
            return
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise held_error(Path(run_dir)) from None
        finally:
            os.close(fd)  # closing drops the shared lock taken to test it

    def __del__(self) -> None:  # a Trainer built and never run lets go when it goes
        try:
            self.release()
        except Exception:  # noqa: BLE001 - at interpreter exit the kernel drops the lock anyway
            pass

    def release(self) -> None:
        """Let go (the file stays: removing it would race a writer that just opened it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)  # closing the descriptor releases the flock
