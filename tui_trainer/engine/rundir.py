"""A run directory: config.toml, metrics.jsonl, samples.txt, run.json and the checkpoints.

This is the file layer only; what goes into the files comes from the run's events through
:class:`~tui_trainer.engine.recorder.RunRecorder`.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from .atomic import write_text_atomic
from .config import TrainConfig, save_config
from .errors import RunDirError, file_in_the_way, not_a_folder
from .events import json_value
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


def checkpoint_history(run_dir: Path) -> list[Path]:
    """A run directory's kept ckpt-STEP.ckpt files, oldest first."""
    return sorted(Path(run_dir).glob("ckpt-*.ckpt"))


def compared_checkpoints(run_dir: Path) -> list[Path]:
    """What a comparison samples besides the weights in hand: best.ckpt, then the kept
    ckpt-STEP.ckpt files newest first, those that exist."""
    run_dir = Path(run_dir)
    return [path for path in [run_dir / "best.ckpt", *reversed(checkpoint_history(run_dir))] if path.is_file()]


def unwritable(path: Path, exc: OSError) -> RunDirError:
    """The error for a run directory that cannot be made or written, with the way out."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and file_in_the_way(path) is not None:
        return RunDirError(f"run directory {str(path)!r} cannot be created: {not_a_folder(path)}; choose another "
                           "--out or out_dir")
    return RunDirError(f"run directory {str(path)!r} cannot be created or written ({exc.strerror or exc}): "
                       "choose another --out or out_dir")


def make_folder(path: Path) -> None:
    """``path`` and the folders above it, or the RunDirError that says why they cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(path, exc) from None


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
        self._metrics = None
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

    def history(self) -> list[Path]:
        """The kept ckpt-STEP.ckpt files, oldest first."""
        return checkpoint_history(self.path)

    def keep(self, step: int, keep: int) -> None:
        """Keep the model.ckpt just written as ckpt-STEP.ckpt, and only the newest ``keep`` of those.
        A hard link costs no space or time: the next save replaces model.ckpt by a new file, so
        the link keeps the old one. Where links are refused (some network file systems) it copies."""
        kept = self.path / f"ckpt-{step:08d}.ckpt"
        kept.unlink(missing_ok=True)
        try:
            os.link(self.latest, kept)
        except OSError:
            shutil.copyfile(self.latest, kept)
        for old in self.history()[:-keep]:
            old.unlink(missing_ok=True)

    def write_config(self, config: TrainConfig) -> None:
        save_config(config, self.path / "config.toml")

    def append(self, record: dict[str, Any]) -> None:
        """Append one metrics line and flush it at once, so a crash loses nothing written.
        The file opens on the first line and again after :meth:`close`."""
        if self._metrics is None:
            self._metrics = open(self.metrics_path, "a", encoding="utf-8")
            if self._metrics.tell() and not self._ends_in_newline():  # a crash cut the last line short
                self._metrics.write("\n")
        self._metrics.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._metrics.flush()

    def _ends_in_newline(self) -> bool:
        with open(self.metrics_path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def append_sample(self, step: int, text: str) -> None:
        with open(self.path / "samples.txt", "a", encoding="utf-8") as handle:
            handle.write(f"--- step {step} ---\n{text}\n")

    @property
    def status(self) -> dict[str, Any]:
        return dict(self._status)

    def update_status(self, **fields: Any) -> None:
        """Rewrite run.json atomically with ``fields`` merged in."""
        self._status.update({k: json_value(v) for k, v in fields.items()})
        self._status.setdefault("host", socket.gethostname())
        write_text_atomic(self.path / "run.json", json.dumps(self._status, indent=2, ensure_ascii=False))

    def close(self) -> None:
        """Sync metrics.jsonl to disk and close it (the run ended, or its process leaves)."""
        if self._metrics is not None:
            self._metrics.flush()
            os.fsync(self._metrics.fileno())
            self._metrics.close()
            self._metrics = None
