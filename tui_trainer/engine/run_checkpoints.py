"""A run's checkpoints as its trainer writes them: model.ckpt ("latest") and best.ckpt, each
atomic, never of broken weights, and what model.ckpt holds, for the messages of failures and
refused saves to say. Only rank 0 writes: the weights are the same on every rank."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import write_checkpoint
from .events import CheckpointSaved, EventCallback, LogMessage
from .rundir import RunDir


def finite_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> bool:
    """Whether every weight and optimizer moment is finite (one device sync: saves are rare)."""
    tensors = [p.detach() for p in model.parameters()]
    tensors += [t for state in optimizer.state.values() for t in state.values()
                if isinstance(t, torch.Tensor) and t.is_floating_point()]
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


class RunCheckpoints:
    def __init__(self, rundir: RunDir | None, emit: EventCallback, saved_step: int) -> None:
        self.rundir = rundir  # None on ranks other than 0
        self.emit = emit
        self.saved_step = saved_step  # the step model.ckpt holds; -1: none of this run yet
        self.refusal = ""  # why the weights in memory must never be saved (a run failed non-finite)

    def save(self, kind: str, step: int, state: Callable[[], dict[str, Any]], finite: bool,
             keep: int) -> Path | None:
        """Write ``state()`` as model.ckpt (``kind`` "latest", keeping the newest ``keep``) or
        best.ckpt; a failed write keeps the old file, and training goes on."""
        if self.rundir is None:
            self.saved_step = step
            return None
        path = self.rundir.latest if kind == "latest" else self.rundir.best
        refusal = self.refusal or ("" if finite else "some weights are NaN or inf")
        if refusal:
            self.emit(LogMessage("error", f"{path.name} not saved at step {step}: {refusal}; {self.note()}"))
            return None
        try:
            write_checkpoint(path, state())
            if kind == "latest" and keep:
                self.rundir.keep(step, keep)
        except OSError as exc:
            self.emit(LogMessage("error", f"could not save {path} ({exc.strerror or exc}); the previous "
                                          "checkpoint is intact and training goes on"))
            return None
        if kind == "latest":
            self.saved_step = step
        self.emit(CheckpointSaved(step, str(path), kind))
        return path

    def note(self) -> str:
        """What model.ckpt holds now."""
        if self.rundir is None or self.saved_step < 0 or not self.rundir.latest.is_file():
            return "no model.ckpt of this run was saved yet"
        return f"model.ckpt keeps step {self.saved_step}, the last good save"
