"""What happens between two training steps, whoever asked for it (the app, a signal, another
process's request files): saves and samples are served at once, by rank 0, which needs no
other rank for them; stop, pause and live changes must reach every rank at the same step, so
under torchrun the ranks agree on them at log intervals, where a sync happens anyway."""
from __future__ import annotations

import os
from typing import Protocol

import torch

from .clock import TrainingClock
from .control import REQUESTS_DIR, FileRequests, SampleRequest, TrainingControl
from .distributed import Distributed
from .events import Detached, EventCallback, LogMessage, StateChanged


class BoundaryWork(Protocol):
    """What the trainer does for the boundary, when asked (trainer.py)."""

    step: int

    def save_now(self) -> None: ...
    def sample_now(self, request: SampleRequest) -> None: ...
    def change(self, changes: dict, source: str, request: str) -> bool: ...


class StepBoundary:
    def __init__(self, control: TrainingControl, requests: FileRequests | None, dist: Distributed,
                 device: torch.device, emit: EventCallback, work: BoundaryWork):
        self.control = control
        self.requests = requests
        self.dist = dist
        self.device = device
        self.emit = emit
        self.work = work

    def cross(self, log_interval: int, clock: TrainingClock) -> bool:
        """Apply what arrived during the last step; wait here while paused (the clock leaves the
        pause out). Returns True when the run must stop."""
        step = self.work.step
        self.serve()
        if self.dist.active and step % log_interval:
            return False
        stop, pause = self._agree()
        if pause and not stop:
            self.emit(StateChanged("paused", step))
            with clock.paused():
                while pause and not stop:
                    self.control.wait_while_paused()
                    self.serve()
                    stop, pause = self._agree()
            self.emit(StateChanged("running", step))
        return stop

    def serve(self) -> None:
        """Request files, then save and sample requests (paused or not)."""
        if self.requests:
            for refusal in self.requests.poll(self.control):
                self.emit(LogMessage("warning", f"request {refusal.name!r} in {REQUESTS_DIR}/ refused: "
                                                f"{refusal.reason}; the run goes on"))
        if self.control.take_detach():
            self.emit(Detached(self.work.step, os.getpid()))
        if self.control.take_save():
            self.work.save_now()
        request = self.control.take_sample()
        if request:
            self.work.sample_now(request)

    def serve_after_run(self) -> None:
        """After the run the model stays in memory: serve saves and samples until the control
        is closed (a new run, or the app leaving)."""
        while self.control.wait_for_request():
            self.serve()

    def _agree(self) -> tuple[bool, bool]:
        """(stop, pause), the same on every rank, once the live changes that rank 0 received are
        applied on every rank at this same step."""
        stop, pause, changes = self.dist.agree(self.control.stop_reason is not None, self.control.paused,
                                               self.control.take_changes(), self.device)
        for change in changes:
            self.work.change(*change)
        if stop and self.control.stop_reason is None:
            self.control.stop("stopped on another rank")
        return stop, pause
