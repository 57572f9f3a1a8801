"""The Runs screen: every run under out_dir, to resume, fork, watch, or overlay in the plot;
and every sweep folder there, which enter opens on the Sweep screen."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..engine.runs import RunSummary, list_runs
from ..engine.safe_text import visible
from ..runs_table import COLUMNS, run_cells

MARK = "●"


class RunsScreen(Screen[tuple[str, list[Path]] | None]):
    """Dismissed with ("resume" | "watch" | "fork" | "compare" | "sweep", [paths]), or None for Back."""

    BINDINGS = [
        # priority: the table's own enter binding would otherwise hide this one from the footer
        Binding("enter", "choose('resume')", "Resume", tooltip="Continue the run from its model.ckpt",
                id="runs.resume", priority=True),
        Binding("space", "mark", "Mark", tooltip="Mark runs to compare", id="runs.mark"),
        Binding("c", "compare", "Compare", tooltip="Overlay the marked runs' val loss in the plot",
                id="runs.compare"),
        Binding("w", "choose('watch')", "Watch", tooltip="Follow a run another process is training", id="runs.watch"),
        Binding("f", "choose('fork')", "Fork", tooltip="A new run from this one's checkpoint: edit the form, then F5",
                id="runs.fork"),
        Binding("x", "clear_compare", "Clear compare", tooltip="Remove the overlaid curves from the plot",
                id="runs.clear"),
        Binding("escape", "dismiss_none", "Back", tooltip="Back to the dashboard", id="runs.back"),
    ]

    def __init__(self, out_dir: str | Path) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.runs: list[RunSummary] = list_runs(self.out_dir)
        self.marked: set[str] = set()
        self.table = DataTable(cursor_type="row", zebra_stripes=True, id="runs-table")

    def compose(self) -> ComposeResult:
        yield Static(visible(f"Runs in {self.out_dir}/"), id="runs-title", markup=False)
        yield self.table
        yield Static("", id="runs-empty", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.table
        table.add_column(" ", key="mark", width=1)
        for label in COLUMNS:
            table.add_column(label, key=label)
        for run in self.runs:
            # DataTable parses str cells as markup: run names, statuses and devices come from files
            table.add_row("", *map(Text, (visible(run.name), *run_cells(run))), key=str(run.path))
        empty = self.query_one("#runs-empty", Static)
        empty.update(visible(f"No runs in {self.out_dir}/ yet: press escape, then F5 to start one."))
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

    def _is_sweep(self, path: Path) -> bool:
        return any(run.sweep for run in self.runs if run.path == path)

    def action_choose(self, what: str) -> None:
        path = self._selected()
        if path is not None:
            self.dismiss(("sweep" if self._is_sweep(path) else what, [path]))  # a sweep opens, whatever was asked

    def action_mark(self) -> None:
        path = self._selected()
        if path is None:
            return
        if self._is_sweep(path):
            self.app.notify("a sweep folder: enter opens it, and its trials compare on the Sweep screen",
                            title="Mark")
            return
        key = str(path)
        self.marked.symmetric_difference_update({key})
        self.table.update_cell(key, "mark", MARK if key in self.marked else "")

    def action_compare(self) -> None:
        """Overlay the marked runs (or the selected one); with no run at all, say so and stay (x clears)."""
        chosen = [run.path for run in self.runs if str(run.path) in self.marked]
        if not chosen and self._selected():
            chosen = [self._selected()]
        if not chosen:
            self.app.notify("no run to compare here: runs that train into this folder are listed, then space "
                            "marks them and c overlays them", severity="warning", title="Compare")
            return
        self.dismiss(("compare", chosen))

    def action_clear_compare(self) -> None:
        self.dismiss(("compare", []))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
