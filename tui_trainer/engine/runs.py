"""The runs under an output folder: what the Runs screen lists, and the labels of a comparison."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import FIELDS, read_toml, stored, value_problem
from .errors import ConfigError, RunDirError, not_a_folder
from .events import EvalResult
from .follow import effective_status, on_other_host, read_events, read_status
from .rundir import holds_run

# Keys that name or place a run rather than shape its training: never a comparison label.
NOT_HPARAMS = ("run_name", "out_dir", "log_interval", "checkpoint_interval", "sample_interval", "sample_prompt",
               "sample_tokens", "wandb", "wandb_project", "num_threads", "on_hangup")


@dataclass
class RunSummary:
    path: Path
    status: str           # running, paused, finished, stopped, failed or interrupted
    started: float | None
    last_step: int
    max_iters: int | None
    best_val_loss: float
    num_params: int | None
    device: str
    config: dict[str, Any] = field(default_factory=dict)
    parent: str = ""      # "NAME@STEP" of the run it was forked from, if it was
    sweep: bool = False   # a sweep folder (its trials are runs inside it), not a run
    best_val_bpb: float | None = None  # the best eval's val loss in bits per byte
    target: dict[str, Any] | None = None  # the target it reached: metric, target, step, elapsed

    @property
    def name(self) -> str:
        return self.path.name


def check_run_dir(path: str | Path) -> Path:
    """``path`` as a run directory, or a RunDirError that says what to pass instead."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise RunDirError(f"run directory {str(path)!r}: {not_a_folder(path)}; pass a folder under runs/ "
                          "(gpt-tui runs lists them)")
    if not holds_run(path):
        raise RunDirError(f"{str(path)!r} is not a run directory (it has no run.json or metrics.jsonl): "
                          "pass the folder a run writes, such as runs/gpt-20260101-120000")
    return path


def read_run_config(path: Path) -> dict[str, Any]:
    """The keys of a run's config.toml whose values have their key's type, or {} when it is
    missing or unreadable: a listing or a comparison shows what it can rather than failing on
    one odd run (a hand edit, another version)."""
    try:
        raw = stored(read_toml(path / "config.toml"))
    except (ConfigError, OSError):
        return {}
    return {key: value for key, value in raw.items() if key in FIELDS and value_problem(key, value) is None}


def summarize(path: Path) -> RunSummary:
    status = read_status(path)
    best = status.get("best_val_loss")
    state = effective_status(status)
    if state in ("running", "paused") and on_other_host(status):
        state = f"{state} on {status.get('host')}?"  # nobody here can tell whether it still does
    elif state in ("running", "paused") and status.get("detached"):
        state = f"{state}, detached"

    return RunSummary(path=path, status=state, started=status.get("started"),
                      last_step=status.get("last_step", 0), max_iters=status.get("max_iters"),
                      best_val_loss=math.inf if best is None else float(best), num_params=status.get("num_params"),
                      device=status.get("device", "?"), config=read_run_config(path), parent=_parent(status),
                      best_val_bpb=status.get("best_val_bpb"), target=status.get("target"))


def _parent(status: dict[str, Any]) -> str:
    parent = status.get("parent")
    return f"{Path(parent['run_dir']).name}@{parent['step']}" if parent else ""


def list_runs(out_dir: str | Path) -> list[RunSummary]:
    """Every run directory and sweep folder directly under ``out_dir``, newest first."""
    from .sweep_study import holds_sweep

    root = Path(out_dir).expanduser()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir()]
    runs = [summarize(p) for p in folders if holds_run(p)] + [summarize_sweep(p) for p in folders if holds_sweep(p)]
    return sorted(runs, key=lambda r: (r.started or 0.0, r.name), reverse=True)


def summarize_sweep(path: Path) -> RunSummary:
    """A sweep folder as a row of the runs table: its trials counted, its best val loss."""
    from .sweep_study import read_record

    record = read_record(path)
    budget = record.get("trials_budget") if isinstance(record.get("trials_budget"), int) else None
    counted = record.get("counted") if isinstance(record.get("counted"), int) else 0
    best = record.get("best") if isinstance(record.get("best"), dict) else {}
    loss = best.get("best_val_loss")
    created = record.get("created")
    return RunSummary(path=path, status=f"sweep {counted}/{budget}" if budget else f"sweep {counted}",
                      started=created if isinstance(created, (int, float)) else None, last_step=0, max_iters=None,
                      best_val_loss=float(loss) if isinstance(loss, (int, float)) and not isinstance(loss, bool)
                      else math.inf, num_params=None, device="-",
                      sweep=True)


def val_curve(path: Path) -> tuple[list[int], list[float]]:
    """(steps, val losses) of every eval a run logged; a fork's curve starts at the fork, from
    its parent's last eval there, so an overlay of parent and children branches at that point."""
    evals = [e for e in read_events(path) if isinstance(e, EvalResult) and math.isfinite(e.val_loss)]
    parent = read_status(path).get("parent")
    if parent and Path(parent["run_dir"]).is_dir():
        before = [e for e in read_events(Path(parent["run_dir"])) if isinstance(e, EvalResult)
                  and math.isfinite(e.val_loss) and e.step <= parent["step"]]
        evals = before[-1:] + evals
    return [e.step for e in evals], [e.val_loss for e in evals]


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Hyperparameters whose values are not the same in all ``configs``."""
    keys = sorted({k for c in configs for k in c} - set(NOT_HPARAMS))
    return [k for k in keys if len({repr(c.get(k)) for c in configs}) > 1]


def compare_label(run: RunSummary, keys: list[str]) -> str:
    """The run's name and its values of the hyperparameters that differ across the comparison."""
    def text(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:g}"
        return Path(value).name if isinstance(value, str) and "/" in value else str(value)

    values = " ".join(f"{k}={text(run.config.get(k))}" for k in keys)
    return f"{run.name} {values}".strip()
