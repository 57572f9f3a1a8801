"""What the user chooses to run, turned into a run plan and a session for the dashboard: F5
(a new run from the form, or the resume or fork chosen before it), and the Runs screen's
resume, fork, watch and compare.

Every folder these choose lies under one root: beside the run --out named when it named one,
else the form's out_dir. That is the folder F2 lists, so a run started here shows there.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.config import TrainConfig, load_config
from ..engine.errors import GptTuiError
from ..engine.events import Event, RunStarted, StepMetrics
from ..engine.follow import read_events, read_status
from ..engine.run_plan import RunPlan
from ..engine.rundir import free_path, holds_run, new_run_dir
from ..engine.sweep_spec import SweepSpec
from ..engine.runs import RunSummary, compare_label, differing_keys, summarize, val_curve
from .compare_screen import CompareScreen
from .runs_screen import RunsScreen
from .screens import ChoiceScreen
from .sessions.job_run import JobRun
from .sessions.local_run import LocalRun
from .sessions.watched_run import WatchedRun
from .sweep_screen import SweepScreen
from .sweep_setup import SweepSetupScreen
from .state import allowed

if TYPE_CHECKING:
    from .dashboard import DashboardScreen


class RunChoices:
    def __init__(self, dashboard: DashboardScreen, run_dir: str | Path | None) -> None:
        self.dashboard = dashboard
        self.out = Path(run_dir).expanduser() if run_dir else None  # --out: the first new run goes there
        self.root: Path | None = self.out.parent if self.out else None  # where F2 looks, and new runs go
        self.chosen: tuple[str, Path] | None = None  # ("resume" | "fork", run) that F5 starts, until it has

    def _new_dir(self, config: TrainConfig) -> Path:
        if self.out is not None:  # beside it when it holds a run already (a fork chosen first)
            return free_path(self.out) if holds_run(self.out) else self.out
        return free_path(self.root / new_run_dir(config).name) if self.root else new_run_dir(config)

    # ---- F5 ------------------------------------------------------------------------------------
    def start(self, config: TrainConfig, new: bool = False) -> None:
        """A run with the form's values: the chosen resume or fork, else a new run (``new``:
        the user said so, after F5 in an ended watcher offered to resume what it watched)."""
        if self.out is not None and self.chosen is None and holds_run(self.out):
            self._ask_about_existing_run(self.out)
            return
        session = self.dashboard.session
        if (not new and self.chosen is None and session is not None and not session.in_this_process
                and session.result is not None):
            self._ask_about_watched_run(session.run_dir, config)
            return
        kind, source = self.chosen or ("new", None)
        run_dir = None if kind == "resume" else self._new_dir(config)
        plan = RunPlan.new(config, run_dir) if source is None else RunPlan.edited(config, source, kind, run_dir)
        board = self.dashboard
        try:
            session = self._job(plan, config) if config.processes > 1 else LocalRun(board, plan, board.app.stderr)
        except (GptTuiError, OSError) as exc:  # OSError: torchrun could not be started, or its log written
            board.app.notify(str(exc), severity="error", title="Cannot start", timeout=10)
            return
        board.show(session)
        if kind == "resume":
            self._plot_history(read_events(source))
            board.log_line(f"resuming {source}")
        if config.processes == 1:
            board.log_line("starting: reading the corpus and building the model")

    def _job(self, plan: RunPlan, config: TrainConfig) -> JobRun:
        """processes > 1: launch torchrun on this machine and follow its run directory."""
        from ..engine.launch import launch_job

        run_dir = plan.job_dir(config)
        train_args = plan.torchrun_args(run_dir)
        metrics = run_dir / "metrics.jsonl"
        start_offset = metrics.stat().st_size if metrics.is_file() else 0  # before any rank can write
        job = launch_job(config.processes, train_args, log=run_dir / "torchrun.log")
        self.dashboard.log_line(f"torchrun: {config.processes} processes, batch_size {config.batch_size} per "
                                f"process (output in {run_dir / 'torchrun.log'})")
        return JobRun(self.dashboard, run_dir, job, start_offset)

    def started(self, event: RunStarted) -> None:
        """The run chosen has started: F5 from now on starts another (a refused one stays chosen)."""
        self.chosen, self.out = None, None
        if event.parent:
            self._show_parent(Path(event.parent), event.step)

    def _ask_about_watched_run(self, path: Path, config: TrainConfig) -> None:
        """F5 after a watched run (or a torchrun job) ended: continue it here, or a new run?"""
        if isinstance(self.dashboard.app.screen, ChoiceScreen):
            return

        def chosen(answer: str | None) -> None:
            if answer == "resume":
                self.resume_run(path)
            elif answer == "new":
                self.start(config, new=True)
        self.dashboard.app.push_screen(ChoiceScreen(
            f"{path.name} has ended. Continue it here from its checkpoint (a larger max_iters), or start a new "
            "run with the form's values?", [("resume", "r", "Resume it"), ("new", "n", "New run")]), chosen)

    def _ask_about_existing_run(self, path: Path) -> None:
        """--out named a folder that holds a run: nothing of it changes unless the user says so."""
        app = self.dashboard.app
        if isinstance(app.screen, ChoiceScreen):
            return

        def chosen(answer: str | None) -> None:
            if answer == "resume":
                self.chosen = ("resume", path)
            elif answer == "new":
                self.out = free_path(path)
            else:
                return
            self.dashboard.action_start()
        status = read_status(path)
        app.push_screen(ChoiceScreen(
            f"{path} already holds a run ({status.get('status', 'unknown')}, step {status.get('last_step', '?')}). "
            f"Continue it, or train this one in {free_path(path).name} beside it?",
            [("resume", "r", "Resume it"), ("new", "n", "New folder")]), chosen)

    # ---- the Runs screen -----------------------------------------------------------------------
    def open_runs_screen(self) -> None:
        board = self.dashboard
        board.app.push_screen(RunsScreen(self.root or (board.form_config or board.config).out_dir), self._chosen)

    def _chosen(self, choice: tuple[str, list[Path]] | None) -> None:
        if choice is None:
            return
        what, paths = choice
        actions = {"resume": self.resume_run, "watch": self.watch_run, "fork": self.fork_run,
                   "sweep": self.open_sweep}
        try:
            actions[what](paths[0]) if what in actions else self.compare_runs(paths)
        except GptTuiError as exc:
            self.dashboard.app.notify(str(exc), severity="error", title="Runs", timeout=10)

    def resume_run(self, run_dir: Path) -> None:
        """Load a run's config into the form and continue it; a run that reached max_iters
        waits for a larger max_iters and F5."""
        board = self.dashboard
        summary = summarize(run_dir)
        if summary.status.startswith(("running", "paused")):  # here, or maybe on another host
            self.watch_run(run_dir)  # another process trains it: follow instead of training it twice
            return
        board.form.load(load_config(run_dir / "config.toml"))
        board.form_config = board.form.validate()
        self.chosen = ("resume", run_dir)
        if board.form_config is not None and summary.last_step < board.form_config.max_iters:
            board.action_start()
            return
        board.plot.reset()
        self._plot_history(read_events(run_dir))
        board.sub_title = f"resume {run_dir.name}"
        board.log_line(f"{run_dir.name} ended at step {summary.last_step:,}: raise max_iters, then F5 to continue it")
        board.app.notify("raise max_iters in the form, then press F5", title=f"Resume {run_dir.name}")
        board.form.query_one("#f-max_iters").focus()

    def fork_run(self, run_dir: Path) -> None:
        """Fill the form with a run's config to fork it: any key that keeps the weights' shapes
        may change; F5 starts the new run from the run's model.ckpt."""
        from ..engine.checkpoint import resolve_checkpoint

        board = self.dashboard
        resolve_checkpoint(run_dir)  # no checkpoint, nothing to fork: said now, not at F5
        board.form.load(load_config(run_dir / "config.toml"))
        board.form_config = board.form.validate()
        self.chosen = ("fork", run_dir)
        board.plot.reset()
        self._show_parent(run_dir, summarize(run_dir).last_step)
        board.sub_title = f"fork of {run_dir.name}"
        board.log_line(f"forking {run_dir.name}: change any key that keeps the network's shape, then F5")
        board.app.notify("edit the form, then press F5 to start the fork", title=f"Fork {run_dir.name}")

    def watch_run(self, run_dir: Path) -> None:
        """Follow a run that another process trains: plot, progress, samples, save and stop."""
        board = self.dashboard
        if not allowed(board.state).start:
            board.app.notify("stop the current run first", severity="warning", title="Watch")
            return
        run_dir = Path(run_dir)
        self.chosen = None
        try:
            board.form.load(load_config(run_dir / "config.toml"))
        except GptTuiError:
            pass  # an old or hand-edited config: the form keeps its values, the run is still followed
        session = WatchedRun(board, run_dir)
        board.show(session)
        board.log_line(session.greeting)

    def compare_runs(self, run_dirs: list[Path]) -> None:
        """Overlay the val loss of ``run_dirs``, each labelled by the hyperparameters that differ."""
        runs: list[RunSummary] = [summarize(Path(p)) for p in run_dirs]
        keys = differing_keys([r.config for r in runs]) if len(runs) > 1 else []
        curves = [(compare_label(r, keys), *val_curve(r.path)) for r in runs]
        self.dashboard.plot.set_compare(curves)
        self.dashboard.redraw_soon()  # the legend line follows at the next tick
        if curves:
            self.dashboard.log_line("comparing " + "; ".join(label for label, _, _ in curves))
        else:
            self.dashboard.log_line("comparison cleared")
        if len(runs) > 1:  # the table of what differs, over the plot that overlays them
            self.dashboard.app.push_screen(CompareScreen(runs, keys))

    # ---- sweeps ---------------------------------------------------------------------------------
    def open_sweep_setup(self, config: TrainConfig) -> None:
        self.dashboard.app.push_screen(SweepSetupScreen(config), self._launch_sweep)

    def _launch_sweep(self, chosen: tuple[SweepSpec, int] | None) -> None:
        """A new sweep folder beside the runs, its sweep file in it, and ``gpt-tui sweep`` on it."""
        from datetime import datetime

        from ..engine.launch import launch_sweep

        if chosen is None:
            return
        spec, workers = chosen
        board = self.dashboard
        root = self.root or Path((board.form_config or board.config).out_dir)
        sweep_dir = free_path(root.expanduser() / f"sweep-{datetime.now():%Y%m%d-%H%M%S}")
        try:
            sweep_dir.mkdir(parents=True)
            (sweep_dir / "sweep.toml").write_text(spec.to_toml(), encoding="utf-8")
            process = launch_sweep(sweep_dir / "sweep.toml", sweep_dir, workers)
        except OSError as exc:
            board.app.notify(f"cannot start the sweep in {sweep_dir}: {exc}", severity="error", title="Sweep")
            return
        board.log_line(f"sweep started in process {process.pid}: {sweep_dir} (it runs on if the app quits; "
                       f"gpt-tui sweep --watch {sweep_dir} opens it again)")
        self.open_sweep(sweep_dir)

    def open_sweep(self, sweep_dir: Path) -> None:
        self.dashboard.app.push_screen(SweepScreen(Path(sweep_dir)), self._sweep_chosen)

    def _sweep_chosen(self, choice: tuple[str, Path] | None) -> None:
        """The Sweep screen opened a trial (watched in the dashboard) or forked the best one."""
        if choice is None:
            return
        what, run_dir = choice
        try:
            if what == "watch":
                self.watch_run(run_dir)
                return
            self.fork_run(run_dir)
        except GptTuiError as exc:
            self.dashboard.app.notify(str(exc), severity="error", title="Sweep", timeout=10)
            return
        board = self.dashboard
        field = board.form.query_one("#f-max_iters")
        field.value = str(2 * summarize(run_dir).last_step)  # a full-length run: twice the trial's, to start with
        field.focus()
        board.form_config = board.form.validate()

    # ---- history in the plot -------------------------------------------------------------------
    def _show_parent(self, run_dir: Path, step: int) -> None:
        """The curve of the run this one was forked from, up to the fork, drawn dimmed."""
        losses = [(e.step, e.loss) for e in read_events(run_dir) if isinstance(e, StepMetrics) and e.step <= step]
        self.dashboard.plot.set_parent(run_dir.name, losses)
        self.dashboard.redraw_soon()

    def _plot_history(self, events: list[Event]) -> None:
        for event in events:
            self.dashboard.plot.add_event(event)
        self.dashboard.plot.refresh()
        self.dashboard.redraw_soon()
