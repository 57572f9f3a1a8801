"""One worker of a sweep: it asks the study for a trial, trains it as an ordinary run in its own
folder, reports each eval to the pruner, tells the study how it ended, and asks again until
the budget is spent, the time is up, or it is asked to stop.

Several workers may share a study, in one machine's journal or across machines through an RDB.
"""
from __future__ import annotations

import contextlib
import gc
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import optuna
from optuna.trial import TrialState

from .config import config_from_dict
from .control import RunDirControl, TrainingControl
from .errors import GptTuiError
from .events import EvalResult, Event, RunFailed, RunFinished
from .run_plan import RunPlan
from .rundir import free_path
from .settings import with_user_settings
from .sweep_spec import SweepSpec, params_text
from .sweep_study import (HEARTBEAT_SECONDS, budget, counts, mark, queue_again, rerun_interrupted, stop_asked,
                          within_budget, write_record)

BUILD_FAILURES_IN_A_ROW = 3  # trials that could not start before the sweep takes its base for broken

Say = Callable[[str], None]


@dataclass
class TrialEnd:
    number: int
    state: str  # complete, pruned, failed or interrupted
    line: str


class SweepWorker:
    def __init__(self, study: optuna.Study, spec: SweepSpec, sweep_dir: Path, storage: str | dict[str, str],
                 say: Say = print, threads: int = 0, on_event: Callable[[Event], None] | None = None):
        self.study, self.spec, self.sweep_dir, self.storage = study, spec, Path(sweep_dir), storage
        self.say, self.threads, self.on_event = say, threads, on_event
        self.started = time.monotonic()
        self.stop_reason: str | None = None
        self.failed_input: str | None = None  # the base config cannot train at all: every trial would fail
        self._control: TrainingControl | None = None  # the running trial's
        self.build_failures = 0  # trials in a row that could not be built
        self.best: dict[int, float] = {}  # each trial's best objective figure, from its evals
        self._lock = threading.Lock()

    def stop(self, reason: str, running_too: bool = True) -> None:
        """Start no new trial; ``running_too``: stop the running one too, saving (a signal's)."""
        with self._lock:
            self.stop_reason = self.stop_reason or reason
            if running_too and self._control is not None:
                self._control.stop(reason)

    # ---- the loop ----------------------------------------------------------------------------------
    def run(self) -> list[TrialEnd]:
        ended = []
        while (why := self._why_not_ask()) is None:
            trial = self.study.ask()
            trials = budget(self.study, self.spec)
            if trials is not None and not within_budget(self.study, trial.number, trials):
                mark(self.study, self.study.get_trials(deepcopy=False)[trial.number], "surplus",
                     "asked for after another worker took the budget's last trial")  # never listed
                continue
            ended.append(self._run_trial(trial))
        self.say(f"worker done: {why}")
        return ended

    def _why_not_ask(self) -> str | None:
        """Why no new trial starts, or None."""
        if self.stop_reason:
            return self.stop_reason
        if self.failed_input:
            return f"the sweep's config cannot train: {self.failed_input}"
        asked = stop_asked(self.sweep_dir)
        if asked is not None:
            return "stop asked for in the sweep folder"
        if self.spec.minutes is not None and time.monotonic() - self.started >= self.spec.minutes * 60:
            return f"the budget of {self.spec.minutes:g} minutes is spent"
        for number in rerun_interrupted(self.study):
            self.say(f"trial {number} was interrupted (its worker is gone): it runs again as a new trial")
        trials = budget(self.study, self.spec)
        if trials is not None:
            done, running = counts(self.study)
            waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if done >= trials:
                return f"the budget of {trials} trials is spent"
            if done + running >= trials and not waiting:
                return f"the budget's last {running} trial{'s' * (running > 1)} run{'s' * (running == 1)} in other workers"
        return None

    # ---- one trial ---------------------------------------------------------------------------------
    def _run_trial(self, trial: optuna.Trial) -> TrialEnd:
        from .trainer import Trainer  # torch: only once a trial runs

        run_dir = free_path(self.sweep_dir / f"trial-{trial.number:03d}")
        for key, value in (("run_dir", str(run_dir.resolve())), ("host", socket.gethostname()),
                           ("pid", os.getpid()), ("started", time.time()), ("heartbeat", time.time())):
            trial.set_user_attr(key, value)
        params = {name: param.suggest(trial) for name, param in self.spec.search.items()}
        shown = params_text(params)
        write_record(self.study, self.spec, self.sweep_dir, self.storage)  # running from now: a stop reaches it
        with Heartbeat(trial):
            try:
                plan = self._plan(trial.number, params, run_dir)
                trainer = Trainer(plan, self._listener(trial), self._new_control())
            except GptTuiError as exc:  # these values make no run (min_lr > learning_rate; a context too long)
                return self._build_failed(trial, exc)
            self.build_failures = 0
            if (stop_asked(self.sweep_dir) or {}).get("running"):  # "stop and save" came while it was built
                self._control.stop("the sweep was stopped")
            self.say(f"trial {trial.number} started: {shown} ({run_dir})")
            result = trainer.run()
            del trainer
            gc.collect()
        return self._ended(trial, result)

    def _build_failed(self, trial: optuna.Trial, exc: GptTuiError) -> TrialEnd:
        """A trial that could not be built fails and counts; so many in a row that the base itself
        must be at fault (the data, the device) stop the sweep instead of spending its budget."""
        self.build_failures += 1
        if self.build_failures >= BUILD_FAILURES_IN_A_ROW:
            self.failed_input = f"{BUILD_FAILURES_IN_A_ROW} trials in a row could not start; the last: {exc}"
            return self._end(trial, "interrupted", TrialState.FAIL, str(exc))
        return self._end(trial, "failed", TrialState.FAIL, f"its values make no run: {exc}")

    def _plan(self, number: int, params: dict, run_dir: Path) -> RunPlan:
        labels = {"sweep": {"dir": str(self.sweep_dir.resolve()), "study": self.study.study_name, "trial": number}}
        values = self.spec.trial_values(params)
        threads = {"num_threads": self.threads} if self.threads and not values.get("num_threads") else {}
        # (workers side by side on a CPU split its cores)
        if self.spec.fork:
            return RunPlan.fork(self.spec.fork, {**self.spec.fixed, **params, **threads}, run_dir, labels)
        return RunPlan.new(with_user_settings(config_from_dict({**values, **threads})), run_dir, labels)

    def _new_control(self) -> TrainingControl:
        with self._lock:
            self._control = TrainingControl()
            if self.stop_reason:
                self._control.stop(self.stop_reason)
            return self._control

    def _listener(self, trial: optuna.Trial) -> Callable[[Event], None]:
        """Each eval after step 0 and before the last goes to the pruner (the objective's figure)."""
        pruner, objective = self.spec.pruner, self.spec.objective

        def listen(event: Event) -> None:
            value = (event.val_bpb if objective == "val_bpb" else event.val_loss) if isinstance(event, EvalResult) \
                else None
            if value is not None and 0 < event.step < self.spec.max_iters and math.isfinite(value):
                with taken_over_ok():
                    trial.report(value, event.step)
                    if trial.should_prune():
                        trial.set_user_attr("pruned_at", event.step)
                        self._control.stop(f"pruned by {pruner} at step {event.step}: {objective} {value:.4f}",
                                           outcome="pruned")
            if value is not None and value < self.best.get(trial.number, math.inf):
                self.best[trial.number] = value
            if self.on_event is not None:
                self.on_event(event)
        return listen

    def _ended(self, trial: optuna.Trial, result: RunFinished | RunFailed) -> TrialEnd:
        with taken_over_ok():
            trial.set_user_attr("steps", result.step)
        if isinstance(result, RunFailed):
            if result.kind == "input":
                return self._build_failed(trial, GptTuiError(result.message))
            return self._end(trial, "failed", TrialState.FAIL, result.message)
        if result.status == "stopped" and (self.stop_reason or (stop_asked(self.sweep_dir) or {}).get("running")):
            self.stop(result.reason, running_too=False)  # a signal, or the sweep's stop: run again on --resume
            return self._end(trial, "interrupted", TrialState.FAIL, result.reason)
        if result.status in ("stopped", "pruned"):  # pruned, or cut short (a stop by hand, the rollback limit)
            with taken_over_ok():
                trial.set_user_attr("pruned_at", trial.user_attrs.get("pruned_at", result.step))
            return self._end(trial, "pruned", TrialState.PRUNED, result.reason)
        best = self.best.get(trial.number, math.inf)
        if not math.isfinite(best):
            return self._end(trial, "failed", TrialState.FAIL, f"no eval gave a finite {self.spec.objective}")
        return self._end(trial, "complete", TrialState.COMPLETE, f"best {self.spec.objective} {best:.4f}", best)

    def _end(self, trial: optuna.Trial, state: str, told: TrialState, why: str, value: float | None = None) -> TrialEnd:
        with self._lock:
            self._control = None
        line = f"trial {trial.number} {state}: {why}"
        try:
            if state in ("failed", "interrupted"):
                trial.set_user_attr("error" if state == "failed" else "interrupted", why)
            self.study.tell(trial, value, state=told)
        except (RuntimeError, ValueError):  # another worker took it for interrupted meanwhile (a long pause)
            line = f"trial {trial.number} was ended by another worker meanwhile (taken as interrupted)"
        else:
            if state == "interrupted" and not self.failed_input:
                queue_again(self.study, self.study.get_trials(deepcopy=False)[trial.number])
        write_record(self.study, self.spec, self.sweep_dir, self.storage)
        self.say(line)
        return TrialEnd(trial.number, state, line)


@contextlib.contextmanager
def taken_over_ok() -> Iterator[None]:
    """A trial another worker ended meanwhile takes no report or attribute: its own run goes on."""
    try:
        yield
    except (RuntimeError, ValueError):  # Optuna's UpdateFinishedTrialError (a RuntimeError)
        pass


class Heartbeat:
    """A trial's "alive" mark every HEARTBEAT_SECONDS from a thread of its own, while it builds,
    trains, pauses or serves: workers on other machines tell a live trial from an interrupted one."""

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="sweep-heartbeat")

    def _beat(self) -> None:
        while not self._done.wait(HEARTBEAT_SECONDS):
            with taken_over_ok():
                self.trial.set_user_attr("heartbeat", time.time())

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def stop_running_trials(sweep_dir: Path) -> None:
    """The Sweep screen's "stop and save": each running trial of this machine gets a stop request."""
    from .sweep_study import read_record

    for trial in read_record(sweep_dir).get("trials", []):
        if isinstance(trial, dict) and trial.get("state") == "running" and trial.get("host") == socket.gethostname():
            run_dir = Path(str(trial.get("run_dir", "")))
            if run_dir.is_dir():
                RunDirControl(run_dir).stop("the sweep was stopped")
