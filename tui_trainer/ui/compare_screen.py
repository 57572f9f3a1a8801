"""The Runs screen's compare as a table: the runs compared, only the keys that differ among
them, the best run starred and the values far from its own highlighted (the Sweep screen's
trial table); their val-loss curves are overlaid in the dashboard's plot behind it."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..engine.runs import RunSummary
from ..engine.safe_text import visible
from ..engine.sweep_view import TrialRow, far_apart
from .widgets.trial_table import TrialTable


def compared_rows(runs: list[RunSummary], keys: list[str]) -> list[TrialRow]:
    return [TrialRow(i, run.status, {k: run.config.get(k, "") for k in keys}, run.best_val_loss, run.last_step,
                     run.path, label=run.name) for i, run in enumerate(runs)]


class CompareScreen(Screen[None]):
    DEFAULT_CSS = """
    #compare-title { height: auto; max-height: 3; color: $accent; text-style: bold; padding: 0 1; }
    #compare-table { height: 1fr; }
    """
    BINDINGS = [
        Binding("o", "sort", "Sort", tooltip="Sort the runs by order, best val loss or status", id="compare.sort"),
        Binding("escape", "back", "Back", tooltip="Back to the dashboard: the curves are in its plot",
                id="compare.back"),
    ]

    def __init__(self, runs: list[RunSummary], keys: list[str]) -> None:
        super().__init__()
        self.rows = compared_rows(runs, keys)
        self.keys = keys
        self.table = TrialTable(id="compare-table")

    def compose(self) -> ComposeResult:
        shown = ", ".join(self.keys) if self.keys else "none: the runs share every hyperparameter"
        yield Static(visible(f"{len(self.rows)} runs compared · the keys that differ: {shown}"), id="compare-title",
                     markup=False)
        yield self.table
        yield Footer()

    def on_mount(self) -> None:
        finite = [r for r in self.rows if r.best_val_loss == r.best_val_loss and r.best_val_loss != float("inf")]
        best = min(finite, key=lambda r: r.best_val_loss) if finite else None
        self.table.show(self.rows, self.keys, best,
                        lambda row, key: best is not None and row is not best
                        and far_apart(row.params.get(key), best.params.get(key)))
        self.table.focus()

    def action_sort(self) -> None:
        self.app.notify(f"sorted by {self.table.sort_by()}", title="Sort", timeout=2)

    def action_back(self) -> None:
        self.dismiss(None)
