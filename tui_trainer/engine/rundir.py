"""A run directory: config.toml, metrics.jsonl, samples.txt, run.json and the checkpoints."""
from __future__ import annotations

import json
import math
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import TrainConfig, save_config
from .errors import RunDirError
from .follow import read_status


def new_run_dir(config: TrainConfig) -> Path:
    """``out_dir/run_name-YYYYmmdd-HHMMSS`` (with a suffix if that exists already)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return free_path(Path(config.out_dir).expanduser() / f"{config.run_name}-{stamp}")


def free_path(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``... whichever does not exist yet."""
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def holds_run(path: Path) -> bool:
    """Whether ``path`` is a run directory already (its record would be trained over)."""
    return (path / "run.json").is_file() or (path / "metrics.jsonl").is_file()


def refuse_existing_run(path: Path) -> None:
    """A new run never writes into another run's folder: the user resumes it or names another."""
    if holds_run(path):
        raise RunDirError(f"run directory {str(path)!r} already holds a run: continue it with "
                          f"gpt-tui train --resume {path}, or choose another --out")


def _clean(value: Any) -> Any:
    """JSON has no NaN or inf: write them as null."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def unwritable(path: Path, exc: OSError) -> RunDirError:
    """The error for a run directory that cannot be made or written, with the way out."""
    return RunDirError(f"run directory {str(path)!r} cannot be created or written ({exc.strerror or exc}): "
                       "choose another --out or out_dir")


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise unwritable(self.path, exc) from None
        self._metrics = open(self.metrics_path, "a", encoding="utf-8")
        self._status: dict[str, Any] = read_status(self.path)

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def latest(self) -> Path:
        return self.path / "model.ckpt"

    @property
    def best(self) -> Path:
        return self.path / "best.ckpt"

    def write_config(self, config: TrainConfig) -> None:
        save_config(config, self.path / "config.toml")

    def log(self, event: str, step: int, **fields: Any) -> None:
        """Append one metrics line and flush it at once, so a crash loses nothing written."""
        record = {"event": event, "step": step, "time": round(time.time(), 3)}
        record.update({k: _clean(v) for k, v in fields.items()})
        self._metrics.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._metrics.flush()

    def sync(self) -> None:
        self._metrics.flush()
        os.fsync(self._metrics.fileno())

    def append_sample(self, step: int, text: str) -> None:
        with open(self.path / "samples.txt", "a", encoding="utf-8") as handle:
            handle.write(f"--- step {step} ---\n{text}\n")

    @property
    def status(self) -> dict[str, Any]:
        return dict(self._status)

    def update_status(self, **fields: Any) -> None:
        """Rewrite run.json atomically with ``fields`` merged in."""
        self._status.update({k: _clean(v) for k, v in fields.items()})
        self._status.setdefault("host", socket.gethostname())
        tmp = self.path / ".run.json.tmp"
        tmp.write_text(json.dumps(self._status, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path / "run.json")

    def close(self) -> None:
        if not self._metrics.closed:
            self.sync()
            self._metrics.close()


class SilentRunDir(RunDir):
    """What ranks other than 0 hold under torchrun: the run directory's interface, writing nothing
    (rank 0 writes config.toml, metrics.jsonl, run.json, samples and checkpoints for the job)."""

    def __init__(self, path: Path):  # no folder made, no file opened
        self.path = Path(path)
        self._status = {}

    def write_config(self, config: TrainConfig) -> None:
        pass

    def log(self, event: str, step: int, **fields: Any) -> None:
        pass

    def sync(self) -> None:
        pass

    def append_sample(self, step: int, text: str) -> None:
        pass

    def update_status(self, **fields: Any) -> None:
        pass

    def close(self) -> None:
        pass
