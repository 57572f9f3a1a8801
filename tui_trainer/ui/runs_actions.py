"""The app's actions on run directories: the Runs screen (F2), resuming a run with its whole
history in the plot, comparing val curves, and following a run that another process trains
(``gpt-tui watch``, or the torchrun job this app launches when ``processes`` > 1).

A mixin of GptTuiApp: it uses the app's widgets (form, plot, progress, device panel), its
state and its ``action_start``.
"""
from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.worker import get_current_worker

from ..engine.config import TrainConfig, load_config
from ..engine.control import RunDirControl
from ..engine.errors import GptTuiError
from ..engine.events import Event, RunFailed, StepMetrics
from ..engine.follow import RunWatcher, read_events, read_status
from ..engine.runs import RunSummary, compare_label, differing_keys, read_run_config, summarize, val_curve
from .messages import FollowedEvents
from .runs_screen import RunsScreen
from .state import AppState, allowed

FOLLOW_INTERVAL = 0.5  # seconds between reads of a followed run's files


def last_line(path: Path) -> str:
    """Where a failed job says why: its last error line, else its last line of words."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if any(c.isalnum() for c in line)]
    except OSError:
        return "no output"
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


class RunsActions:
    """Mixed into GptTuiApp (see the module docstring)."""

    def action_runs(self) -> None:
        if self.check_action("runs", ()) is not True:
            self.notify("stop the current run first", severity="warning", title="Runs")
            return
        out_dir = self.runs_root or (self.form_config or self.config).out_dir
        self.push_screen(RunsScreen(out_dir), self._runs_chosen)

    def _runs_chosen(self, choice: tuple[str, list[Path]] | None) -> None:
        if choice is None:
            return
        what, paths = choice
        try:
            if what == "resume":
                self.resume_run(paths[0])
            elif what == "watch":
                self.watch_run(paths[0])
            elif what == "fork":
                self.fork_run(paths[0])
            else:
                self.compare_runs(paths)
        except GptTuiError as exc:
            self.notify(str(exc), severity="error", title="Runs", timeout=10)

    def resume_run(self, run_dir: Path) -> None:
        """Load a run's config into the form and continue it; a run that reached max_iters
        waits for a larger max_iters and F5."""
        summary = summarize(run_dir)
        if summary.status.startswith(("running", "paused")):  # here, or maybe on another host
            self.watch_run(run_dir)  # another process trains it: follow instead of training it twice
            return
        self.form.load(load_config(run_dir / "config.toml"))
        self.form_config = self.form.validate()
        self.resume_from = run_dir
        if self.form_config is not None and summary.last_step < self.form_config.max_iters:
            self.action_start()
            return
        self.plot.reset()
        self._plot_history(read_events(run_dir))
        self.sub_title = f"resume {run_dir.name}"
        self.log_line(f"{run_dir.name} ended at step {summary.last_step:,}: raise max_iters, then F5 to continue it")
        self.notify("raise max_iters in the form, then press F5", title=f"Resume {run_dir.name}")
        self.form.query_one("#f-max_iters").focus()

    def fork_run(self, run_dir: Path) -> None:
        """Fill the form with a run's config to fork it: any key that keeps the weights' shapes
        may change; F5 starts the new run from the run's model.ckpt."""
        from ..engine.checkpoint import resolve_checkpoint

        resolve_checkpoint(run_dir)  # no checkpoint, nothing to fork: said now, not at F5
        self.form.load(load_config(run_dir / "config.toml"))
        self.form_config = self.form.validate()
        self.fork_from, self.resume_from = run_dir, None
        self.plot.reset()
        self._show_parent(run_dir, summarize(run_dir).last_step)
        self.sub_title = f"fork of {run_dir.name}"
        self.log_line(f"forking {run_dir.name}: change any key that keeps the network's shape, then F5")
        self.notify("edit the form, then press F5 to start the fork", title=f"Fork {run_dir.name}")

    def _show_parent(self, run_dir: Path, step: int) -> None:
        """The curve of the run this one was forked from, up to the fork, drawn dimmed."""
        losses = [(e.step, e.loss) for e in read_events(run_dir) if isinstance(e, StepMetrics) and e.step <= step]
        self.plot.set_parent(run_dir.name, losses)
        self._dirty = True

    def watch_run(self, run_dir: Path, job=None) -> None:
        """Follow a run that another process trains: plot, progress, samples, save and stop.
        ``job`` is the torchrun process when this app launched it: then quitting stops it."""
        if not allowed(self.state).start:
            self.notify("stop the current run first", severity="warning", title="Watch")
            return
        run_dir = Path(run_dir)
        self._stop_training_thread("another run is watched")  # the last run's thread, which serves save and sample
        self.run_info = None
        self.fork_from = None
        self.resume_from = None
        self.watching = run_dir
        self.job = job
        self.control = RunDirControl(run_dir)
        self.run_dir = str(run_dir)
        try:
            self.form.load(load_config(run_dir / "config.toml"))
        except GptTuiError:
            pass  # an old or hand-edited config: the form keeps its values, the run is still followed
        self.notify_level = (self.form_config or self.config).notify
        self.plot.reset()
        status = read_status(run_dir)
        self.device_panel.show_recorded(status)
        if job:
            self.sub_title = f"torchrun {run_dir.name}"
        else:
            self.sub_title = f"watching {run_dir.name} · {status.get('device', '?')} on {status.get('host', '?')}"
            self.log_line(f"watching {run_dir} (pid {status.get('pid', '?')}): ctrl+s asks it to save, F7 to stop")
        self._set_state(AppState.STARTING)
        self._follow(run_dir, job)

    def _leave_watch(self) -> None:
        if self.watching is not None:
            self.watching = self.job = None
            self.device_panel.show_recorded(None)
            self.workers.cancel_group(self, "training")

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def _follow(self, run_dir: Path, job=None) -> None:
        """Read the run's new metrics lines every FOLLOW_INTERVAL until it ends or vanishes
        (or, for a job this app launched, until that process exits)."""
        worker, watcher, replay = get_current_worker(), RunWatcher(run_dir), True
        while not worker.is_cancelled and not watcher.done:
            exited = job is not None and job.poll() is not None
            events = watcher.poll()
            if exited and not watcher.done:
                events.append(RunFailed(watcher.follower.step, "job", (
                    f"torchrun exited with code {job.returncode} before the run ended: "
                    f"{last_line(run_dir / 'torchrun.log')} (all output in {run_dir / 'torchrun.log'})"),
                    str(run_dir)))
                watcher.done = True
            if events:
                self.post_message(FollowedEvents(events, replay))
            replay = False
            time.sleep(FOLLOW_INTERVAL)

    def _plot_history(self, events: list[Event]) -> None:
        for event in events:
            self.plot.add_event(event)
        self.plot.refresh()
        self._dirty = True

    def compare_runs(self, run_dirs: list[Path]) -> None:
        """Overlay the val loss of ``run_dirs``, each labelled by the hyperparameters that differ."""
        runs: list[RunSummary] = [summarize(Path(p)) for p in run_dirs]
        keys = differing_keys([r.config for r in runs]) if len(runs) > 1 else []
        curves = [(compare_label(r, keys), *val_curve(r.path)) for r in runs]
        self.plot.set_compare(curves)
        self._dirty = True  # the legend line follows at the next tick
        if curves:
            self.log_line("comparing " + "; ".join(label for label, _, _ in curves))
        else:
            self.log_line("comparison cleared")

    def _start_job(self, config: TrainConfig) -> None:
        """processes > 1: launch torchrun on this machine and follow its run directory."""
        from ..engine.launch import fork_args, launch_job, prepare_run_dir, resume_args
        from ..engine.rundir import new_run_dir

        resume, self.resume_from = self.resume_from, None
        fork, self.fork_from = self.fork_from, None
        try:
            if fork:
                run_dir = Path(self.first_run_dir) if self.first_run_dir else new_run_dir(config)
                train_args = fork_args(fork, config.to_dict(), run_dir)
            elif resume:
                before = read_run_config(resume)
                changed = {k: v for k, v in config.to_dict().items() if before.get(k) != v}
                run_dir, train_args = resume, resume_args(resume, changed)
            else:
                run_dir = Path(self.first_run_dir) if self.first_run_dir else new_run_dir(config)
                train_args = prepare_run_dir(config, run_dir)
        except GptTuiError as exc:
            self.notify(str(exc), severity="error", title="Cannot start", timeout=10)
            return
        self.first_run_dir = None
        job = launch_job(config.processes, train_args, log=run_dir / "torchrun.log")
        self.log_line(f"torchrun: {config.processes} processes, batch_size {config.batch_size} per process "
                      f"(output in {run_dir / 'torchrun.log'})")
        self.watch_run(run_dir, job)
