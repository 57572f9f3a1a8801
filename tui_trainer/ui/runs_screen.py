"""The Runs screen: every run under out_dir, to resume, watch, or overlay in the plot."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..console import fmt_count, fmt_date, fmt_loss
from ..engine.runs import RunSummary, list_runs

MARK = "●"


class RunsScreen(Screen[tuple[str, list[Path]] | None]):
    """Dismissed with ("resume" | "watch" | "compare", [run paths]), or None for Back."""

    BINDINGS = [
        Binding("enter", "choose('resume')", "Resume", tooltip="Continue the run from its model.ckpt"),
        Binding("space", "mark", "Mark", tooltip="Mark runs to compare"),
        Binding("c", "compare", "Compare", tooltip="Overlay the marked runs' val loss in the plot"),
        Binding("w", "choose('watch')", "Watch", tooltip="Follow a run another process is training"),
        Binding("x", "clear_compare", "Clear compare", tooltip="Remove the overlaid curves from the plot"),
        Binding("escape", "dismiss_none", "Back"),
    ]

    def __init__(self, out_dir: str | Path) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.runs: list[RunSummary] = list_runs(self.out_dir)
        self.marked: set[str] = set()
        self.table = DataTable(cursor_type="row", zebra_stripes=True, id="runs-table")

    def compose(self) -> ComposeResult:
        yield Static(f"Runs in {self.out_dir}/ · enter resume · space mark · c compare · w watch",
                     id="runs-title", markup=False)
        yield self.table
        yield Static("", id="runs-empty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        table.add_column(" ", key="mark", width=1)
        for label in ("name", "date", "status", "steps", "best val", "params", "device"):
            table.add_column(label, key=label)
        for run in self.runs:
            steps = f"{run.last_step:,}" + (f"/{run.max_iters:,}" if run.max_iters else "")
            # DataTable parses str cells as markup: run names, statuses and devices come from files
            cells = (run.name, fmt_date(run.started), run.status, steps, fmt_loss(run.best_val_loss),
                     fmt_count(run.num_params) if run.num_params else "-", run.device)
            table.add_row("", *(Text(str(cell)) for cell in cells), key=str(run.path))
        empty = self.query_one("#runs-empty", Static)
        empty.update(f"No runs in {self.out_dir}/ yet: press escape, then F5 to start one.")
        empty.display = not self.runs
        table.focus()

    def _selected(self) -> Path | None:
        if not self.runs:
            return None
        return Path(self.table.ordered_rows[self.table.cursor_row].key.value)

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose("resume")

    def action_choose(self, what: str) -> None:
        path = self._selected()
        if path is not None:
            self.dismiss((what, [path]))

    def action_mark(self) -> None:
        path = self._selected()
        if path is None:
            return
        key = str(path)
        self.marked.symmetric_difference_update({key})
        self.table.update_cell(key, "mark", MARK if key in self.marked else "")

    def action_compare(self) -> None:
        """Overlay the marked runs (or the selected one); with nothing to show, clear the overlay."""
        chosen = [run.path for run in self.runs if str(run.path) in self.marked]
        if not chosen and self._selected():
            chosen = [self._selected()]
        self.dismiss(("compare", chosen))

    def action_clear_compare(self) -> None:
        self.dismiss(("compare", []))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
