"""The run's record on disk, kept by a listener like any other (the app, the CLI, W&B).

Each event the trainer reports becomes its metrics.jsonl line; run.json follows the run's
state, samples.txt its samples and error.log a failure's traceback. A watcher, a resume
and the live app therefore see the very same events.
"""
from __future__ import annotations

import os
import time

from .config import TrainConfig, with_overrides
from .events import (Detached, EvalResult, Event, HparamsChanged, RunFailed, RunFinished, RunStarted, SampleText,
                     StateChanged, TargetReached, to_record)
from .rundir import RunDir


class RunRecorder:
    def __init__(self, rundir: RunDir, config: TrainConfig):
        self.rundir = rundir
        self.config = config  # the values in force: config.toml follows each live change
        rundir.write_config(config)
        self.step = 0  # the last step an event named: log lines carry it
        self.ended = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, StateChanged):  # a state is where the run is, not its history: run.json only
            self._state(event.state)
            return
        self.step = getattr(event, "step", self.step)
        now = time.time()
        if isinstance(event, RunFailed) and event.details:
            (self.rundir.path / "error.log").write_text(event.details, encoding="utf-8")
        self.rundir.append(to_record(event, now, self.step))
        if isinstance(event, RunStarted):
            self.ended = False
            # A resumed run keeps the date it first started (the Runs screen sorts by it).
            self.rundir.update_status(status="running", pid=os.getpid(), device=event.device,
                                      num_params=event.num_params, started=self.rundir.status.get("started", now),
                                      resumed=now if event.step else None, ended=None,
                                      run_name=self.config.run_name, max_iters=event.max_iters,
                                      processes=event.processes, detached=None)
            if event.parent:
                self.rundir.update_status(parent={"run_dir": event.parent, "step": event.step})
            if event.labels:
                self.rundir.update_status(**event.labels)
        elif isinstance(event, EvalResult):
            best = {"best_val_bpb": event.val_bpb} if event.val_bpb is not None and \
                event.val_loss <= event.best_val_loss else {}  # the best eval's
            self.rundir.update_status(last_step=event.step, best_val_loss=event.best_val_loss, **best)
        elif isinstance(event, HparamsChanged):
            self.config = with_overrides(self.config, {key: new for key, (_, new) in event.changes.items()})
            self.rundir.write_config(self.config)
            if "max_iters" in event.changes:
                self.rundir.update_status(max_iters=self.config.max_iters)
        elif isinstance(event, TargetReached):
            self.rundir.update_status(target={"metric": event.metric, "target": event.target, "step": event.step,
                                              "elapsed": round(event.elapsed, 3)})
        elif isinstance(event, Detached):
            self.rundir.update_status(detached=True)
        elif isinstance(event, SampleText):
            self.rundir.append_sample(event.step, event.text)
        elif isinstance(event, RunFinished):
            self.rundir.update_status(status=event.status, ended=now, last_step=event.step, reason=event.reason or None)
            self.ended = True
        elif isinstance(event, RunFailed):
            self.rundir.update_status(status="failed", ended=now, last_step=event.step, error=event.message)
            self.ended = True
        if self.ended:  # synced and closed; a save or sample after the run reopens it for its line
            self.rundir.close()

    def _state(self, state: str) -> None:
        current = self.rundir.status.get("status")
        if state == "paused" or (state == "running" and current == "paused"):
            self.rundir.update_status(status=state)
