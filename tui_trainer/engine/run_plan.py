"""How a run starts, decided once: a new run from a config, the resume of a run in its own
folder, or a fork of a run into a new one. The CLI and the app each build one :class:`RunPlan`;
torchrun's arguments and the :class:`~.trainer.Trainer` both take it as it is.

"Overrides" mean one thing everywhere: config keys set on the source run's config (``--set``
on the CLI; in the app, every key of the form, as it shows). Keys that shape the weights
cannot differ from the checkpoint's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .checkpoint import Resumption, config_of, read_resumption
from .config import TrainConfig
from .errors import ConfigError
from .settings import with_user_settings


@dataclass(frozen=True)
class RunPlan:
    kind: str  # "new", "resume" or "fork"
    new_config: TrainConfig | None = None  # a new run's config (resume and fork read theirs from the checkpoint)
    source: Path | None = None  # resume, fork: a run directory or a checkpoint in it
    overrides: dict[str, Any] = field(default_factory=dict)  # resume, fork: keys changed from the source's
    out: Path | None = None  # the folder named for a new run or a fork; None: a fresh one under out_dir
    labels: dict[str, Any] = field(default_factory=dict)  # for run.json: who started it (a sweep's trial)

    @classmethod
    def new(cls, config: TrainConfig, run_dir: str | Path | None = None,
            labels: dict[str, Any] | None = None) -> RunPlan:
        return cls("new", new_config=config, out=Path(run_dir) if run_dir else None, labels=dict(labels or {}))

    @classmethod
    def resume(cls, source: str | Path, overrides: dict[str, Any] | None = None) -> RunPlan:
        return cls("resume", source=Path(source).expanduser(), overrides=dict(overrides or {}))

    @classmethod
    def fork(cls, source: str | Path, overrides: dict[str, Any] | None = None,
             run_dir: str | Path | None = None, labels: dict[str, Any] | None = None) -> RunPlan:
        return cls("fork", source=Path(source).expanduser(), overrides=dict(overrides or {}),
                   out=Path(run_dir) if run_dir else None, labels=dict(labels or {}))

    @classmethod
    def edited(cls, config: TrainConfig, source: Path, kind: str, run_dir: str | Path | None = None) -> RunPlan:
        """A resume or fork of ``source`` with a whole config as edited (the app's form): every
        key is set, so the run trains with what the form shows. (A diff against config.toml
        would not do: a live change rewrites it, and the checkpoint may predate the change.)"""
        values = config.to_dict()
        return cls.resume(source, values) if kind == "resume" else cls.fork(source, values, run_dir)

    @cached_property
    def resumption(self) -> Resumption | None:
        """The source's checkpoint with the overrides applied, read once (None for a new run)."""
        if self.source is None:
            return None
        return read_resumption(self.source, self.overrides, self.doing)

    @property
    def doing(self) -> str:
        return "resuming" if self.kind == "resume" else "forking"

    @cached_property
    def config(self) -> TrainConfig:
        """The run's config. A checkpoint never names a command: the user's settings file may.
        A resume or fork must have steps to train, or it would "finish" at once, training nothing."""
        read = self.resumption
        if read is None:
            return self.new_config
        step = int(read.checkpoint["step"])
        if read.config.max_iters <= step:
            raise ConfigError([f"max_iters = {read.config.max_iters}: the checkpoint is at step {step} already; "
                               f"{self.doing} trains on to a larger max_iters, e.g. --set max_iters={2 * step}"])
        return with_user_settings(read.config)

    @property
    def source_dir(self) -> Path | None:
        """The source's run directory (known without reading the checkpoint)."""
        if self.source is None:
            return None
        return self.source if self.source.is_dir() else self.source.parent

    @property
    def run_dir(self) -> Path | None:
        """Where the run writes: a resume in its own folder; else the folder named, if any."""
        return self.source_dir if self.kind == "resume" else self.out

    @property
    def parent(self) -> Path | None:
        """The run a fork starts from."""
        return self.source_dir if self.kind == "fork" else None

    @property
    def title(self) -> str:
        """How the dashboard names it before it starts."""
        if self.source is None:
            return ""
        return f"resume {self.source.name}" if self.kind == "resume" else f"fork of {self.source.name}"

    def torchrun_args(self, run_dir: Path) -> list[str]:
        """The ``gpt-tui train`` arguments that run this plan under torchrun in ``run_dir``
        (named here, so that every rank writes the same one); refused at once while another
        process writes it, rather than by rank 0 later."""
        from .launch import fork_args, prepare_run_dir, resume_args

        if self.kind == "new":
            return prepare_run_dir(self.config, run_dir)
        self.config  # noqa: B018 - its checks (nothing left to train) refuse the job before any rank starts
        # Only the keys that change the checkpoint's config travel as --set arguments.
        read = self.resumption
        before = config_of(read.checkpoint, read.path).to_dict()
        changed = {key: value for key, value in self.overrides.items() if before.get(key) != value}
        if self.kind == "resume":
            return resume_args(self.source, self.source_dir, changed)
        return fork_args(self.source, changed, run_dir)

    def job_dir(self, config: TrainConfig) -> Path:
        """The run directory of this plan's torchrun job, chosen before any rank starts: a new
        folder is named after ``config`` (the one the job will train)."""
        from .rundir import new_run_dir

        return self.run_dir or new_run_dir(config)
