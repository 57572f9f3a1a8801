"""The Sweep screen: a sweep's trials as a table, every trial's val loss on one plot, the best
so far and the parameter importances; keys to prune a trial, try values next, open a trial in
the dashboard, stop or resume the sweep, and fork the best trial.

The sweep runs in processes of its own (``gpt-tui sweep``): the screen reads its folder every
second, in a thread worker, and steers it through files (a trial's request, the sweep's stop).
"""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from ..engine.control import send_request
from ..engine.errors import GptTuiError
from ..engine.safe_text import visible
from ..engine.sweep_spec import SweepSpec, params_text, read_sweep_file
from ..engine.sweep_view import SweepView, TrialRow, importances
from .screens import ChoiceScreen
from .sweep_try_next import TryNextScreen
from .widgets.trial_table import TrialTable

READ_EVERY = 1.0  # seconds between reads of the sweep folder
CURVE_COLORS = {"best": "red+", "pruned": "gray", "other": "cyan"}


class SweepRead(Message):
    """The sweep folder was read again (``importances`` once enough trials completed)."""

    def __init__(self, changed: bool, importances: dict[str, float] | None) -> None:
        super().__init__()
        self.changed, self.importances = changed, importances


class SweepPlot(PlotextPlot):
    """Every trial's val loss against step: the best bright, pruned ones dimmed."""

    rows: list[TrialRow] = []
    best: int | None = None

    def render(self):
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title("val loss of every trial")
        plt.xlabel("step")
        drawn = False
        for row in sorted(self.rows, key=lambda r: (r.number == self.best, r.state != "pruned")):  # best on top
            steps, losses = row.curve
            if not steps:
                continue
            kind = "best" if row.number == self.best else "pruned" if row.state == "pruned" else "other"
            plt.plot(steps, losses, color=CURVE_COLORS[kind], marker="braille")
            drawn = True
        if not drawn:
            plt.text("no eval yet", 0.5, 0.5, alignment="center")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
        return super().render()


class SweepScreen(Screen[tuple[str, Path] | None]):
    """Dismissed with ("watch", trial run dir), ("fork", the best trial's run dir), or None."""

    # Here rather than in app.tcss: the app's stylesheet is matched against every widget of every
    # screen, and this screen's rules would slow the dashboard's layout for nothing.
    DEFAULT_CSS = """
    #sweep-title { height: auto; max-height: 3; color: $accent; text-style: bold; padding: 0 1; }
    #sweep-table { height: 1fr; min-height: 5; }
    #sweep-plot { height: 1fr; min-height: 8; }
    #sweep-info { height: auto; max-height: 4; padding: 0 1; }
    """

    BINDINGS = [
        Binding("enter", "open", "Open", tooltip="Open the trial in the dashboard: watch it, steer it",
                id="sweep.open", priority=True),
        Binding("p", "prune", "Prune", tooltip="Prune the selected trial now: it stops, saved, as pruned",
                id="sweep.prune"),
        Binding("n", "try_next", "Try next", tooltip="Try values you type as the next trial", id="sweep.next"),
        Binding("f", "fork_best", "Fork best", tooltip="Fork the best trial into a full-length run: set "
                "max_iters, then F5", id="sweep.fork"),
        Binding("x", "stop_sweep", "Stop sweep", tooltip="Stop the sweep: let running trials finish, or stop "
                "and save them", id="sweep.stop"),
        Binding("r", "resume_sweep", "Resume", tooltip="Resume the sweep: workers run the rest of its budget "
                "(interrupted trials again)", id="sweep.resume"),
        Binding("o", "sort", "Sort", tooltip="Sort the trials by number, best val loss or state", id="sweep.sort"),
        Binding("escape", "back", "Back", tooltip="Back to the dashboard", id="sweep.back"),
    ]

    def __init__(self, sweep_dir: Path) -> None:
        super().__init__()
        self.sweep_dir = Path(sweep_dir)
        self.view = SweepView(self.sweep_dir)
        self.spec: SweepSpec | None = None
        self._spec_read = False  # sweep.toml is read once (a fork's names a checkpoint: never every second)
        self.importance: dict[str, float] = {}
        self._study = None  # opened once by the reader, for the importances
        self._complete_seen = -1
        self.table = TrialTable(id="sweep-table")
        self.plot = SweepPlot(id="sweep-plot")

    def compose(self) -> ComposeResult:
        yield Static(visible(f"Sweep {self.sweep_dir.name}: reading…"), id="sweep-title", markup=False)
        yield self.table
        yield self.plot
        yield Static("", id="sweep-info", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self._read()
        self.set_interval(READ_EVERY, self._read)

    # ---- reading the sweep folder ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="sweep-read", exit_on_error=False)
    def _read(self) -> None:
        changed = self.view.refresh()
        if not self._spec_read and self.view.record:
            self._spec_read = True
            try:
                self.spec = read_sweep_file(self.sweep_dir / "sweep.toml")
            except GptTuiError:
                pass  # an older or foreign folder: the table still shows, without the search's ranges
        complete = sum(r.state == "complete" for r in self.view.rows)
        found = None
        if complete != self._complete_seen:
            self._complete_seen = complete
            found = self._importances()
        self.post_message(SweepRead(changed, found))

    def _importances(self) -> dict[str, float]:
        from ..engine.sweep_study import load_local_study

        try:
            if self._study is None:
                self._study = load_local_study(self.sweep_dir, self.view.record)
            return importances(self._study)
        except Exception:  # noqa: BLE001 - a storage out of reach (any driver's error): the importances wait
            return {}

    @on(SweepRead)
    def _show(self, message: SweepRead) -> None:
        if message.importances is not None:
            self.importance = message.importances
        if message.changed or message.importances is not None or not self.view.record:  # (a start's log may grow)
            self._fill()

    def _fill(self) -> None:
        view = self.view
        title = f"Sweep {view.name} · {view.summary()}" if view.record else \
            f"Sweep {self.sweep_dir.name}: no sweep.json yet ({self._log_tail() or 'the sweep is starting'})"
        self.query_one("#sweep-title", Static).update(visible(title))
        self.table.show(view.rows, view.searched, view.best_row(),
                        lambda row, key: view.differs(row, key, self.spec))
        self.plot.rows, self.plot.best = view.rows, view.best_number
        self.plot.refresh()
        self.query_one("#sweep-info", Static).update(self._info())

    def _log_tail(self) -> str:
        """The last line of the sweep's own output, when the app started it: why it did not start."""
        try:
            lines = (self.sweep_dir / "sweep.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f"sweep.log: {lines[-1][:200]}" if lines else ""

    def _info(self) -> Text:
        best = self.view.best_row()
        text = Text()
        if best is None:
            text.append("best so far: no trial has completed yet")
        else:
            text.append(visible(f"best so far: trial {best.number}, val loss {best.best_val_loss:.4f}: "
                                f"{params_text(best.params)}"))
        if self.importance:
            ranked = ", ".join(f"{k} {v:.2f}" for k, v in self.importance.items())
            text.append(visible(f"\nimportance (PED-ANOVA): {ranked}"))
        else:
            text.append("\nimportance: once 4 trials have completed", style="dim")
        text.append("\nred: the best trial · cyan: the others · grey: pruned · yellow values: far from the best "
                    "trial's", style="dim")
        return text

    # ---- the keys ----------------------------------------------------------------------------------
    def _selected(self) -> TrialRow | None:
        number = self.table.selected_number()
        return next((r for r in self.view.rows if r.number == number), None)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self._selected()
        if row is None:
            return
        if not (row.run_dir / "run.json").is_file():
            self.app.notify(f"trial {row.number} has no run directory here ({row.run_dir})", severity="warning",
                            title="Open")
            return
        self.dismiss(("watch", row.run_dir))

    def action_prune(self) -> None:
        row = self._selected()
        if row is None:
            return
        if row.state != "running":
            self.app.notify(f"trial {row.number} is {row.state}: only a running trial can be pruned",
                            severity="warning", title="Prune")
            return
        try:
            send_request(row.run_dir, "prune")
        except OSError as exc:
            self.app.notify(f"cannot ask trial {row.number} to stop: {exc}", severity="error", title="Prune")
            return
        self.app.notify(f"trial {row.number} stops at its next step, saved, and counts as pruned", title="Prune")

    def action_try_next(self) -> None:
        if self.spec is None:
            self.app.notify("this sweep folder has no readable sweep.toml: its search is unknown", severity="warning",
                            title="Try next")
            return
        best = self.view.best_row()
        self.app.push_screen(TryNextScreen(self.spec, self.sweep_dir, best.params if best else {}), self._enqueued)

    def _enqueued(self, params: dict | None) -> None:
        if params is None:
            return
        shown = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        running = any(r.state == "running" for r in self.view.rows)
        self.app.notify(f"the next trial tries {shown}" + ("" if running else ": no trial runs now; press r to "
                                                            "resume the sweep"), title="Try next")
        self._read()

    def action_fork_best(self) -> None:
        best = self.view.best_row()
        if best is None:
            self.app.notify("no trial has completed yet", severity="warning", title="Fork best")
            return
        self.dismiss(("fork", best.run_dir))

    def action_stop_sweep(self) -> None:
        def chosen(answer: str | None) -> None:
            from ..engine.sweep_study import ask_stop
            from ..engine.sweep_worker import stop_running_trials

            if answer not in ("finish", "stop"):
                return
            ask_stop(self.sweep_dir, running_too=answer == "stop")
            if answer == "stop":
                stop_running_trials(self.sweep_dir)
            self.app.notify("no new trial starts" + (": running trials stop, saved, and run again on resume"
                                                     if answer == "stop" else "; running trials finish"),
                            title="Stop sweep")
        self.app.push_screen(ChoiceScreen(
            "Stop the sweep? No new trial starts. Running trials can finish, or stop now (saved; they run again "
            "when the sweep is resumed).", [("finish", "f", "Let them finish"), ("stop", "s", "Stop and save")]),
            chosen)

    def action_resume_sweep(self) -> None:
        from ..engine.launch import resume_sweep
        from ..engine.sweep_study import clear_stop

        if any(r.state == "running" for r in self.view.rows):
            self.app.notify("the sweep is running: its workers take the rest of the budget", title="Resume")
            return
        clear_stop(self.sweep_dir)
        try:
            process = resume_sweep(self.sweep_dir)
        except OSError as exc:
            self.app.notify(f"cannot start the sweep: {exc}", severity="error", title="Resume")
            return
        self.app.notify(f"resumed in process {process.pid} (its output: {self.sweep_dir / 'sweep.log'})",
                        title="Resume")

    def action_sort(self) -> None:
        self.app.notify(f"sorted by {self.table.sort_by()}", title="Sort", timeout=2)

    def action_back(self) -> None:
        self.dismiss(None)
