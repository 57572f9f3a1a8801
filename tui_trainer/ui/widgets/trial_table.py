"""The table of trials, for the Sweep screen and the Runs screen's compare: a row per trial or
run, a column per key that varies, the values far from the best row's highlighted, sortable
by number, best val loss or state (a key, or a click on the header)."""
from __future__ import annotations

import math
from typing import Callable

from rich.text import Text
from textual import on
from textual.widgets import DataTable

from ...engine.safe_text import visible
from ...engine.sweep_view import TrialRow

SORTS = ("number", "best val", "state")
STATE_STYLES = {"complete": "green", "finished": "green", "pruned": "grey50", "failed": "red", "running": "bold yellow",
                "interrupted": "grey50 italic", "waiting": "cyan"}
FIXED = ("#", "state")
AFTER = ("best val", "step", "pruned at")


class TrialTable(DataTable):
    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.sort = "number"
        self._shown: tuple[list[TrialRow], list[str], TrialRow | None, Callable] | None = None
        self._cells_shown: list[tuple[str, list[Text]]] = []

    def show(self, rows: list[TrialRow], keys: list[str], best: TrialRow | None,
             far: Callable[[TrialRow, str], bool]) -> None:
        """Fill the table: ``far(row, key)`` says which values to highlight. Rows that show as
        they do already are left alone (a refill would flicker, and resize the columns)."""
        self._shown = (rows, keys, best, far)
        selected = self.selected_number()
        labels = [*FIXED, *keys, *AFTER]
        if [str(c.key.value) for c in self.columns.values()] != labels:
            self.clear(columns=True)
            self._cells_shown = []
            for label in labels:
                self.add_column(Text(label), key=label)  # a str label would be read as markup
        cells = [(str(row.number), self._cells(row, keys, best, far)) for row in self._sorted(rows)]
        if cells == self._cells_shown:
            return
        self._cells_shown = cells
        self.clear()
        for key, row_cells in cells:
            self.add_row(*row_cells, key=key)
        if selected is not None and str(selected) in self.rows:
            self.move_cursor(row=self.get_row_index(str(selected)))

    def _cells(self, row: TrialRow, keys: list[str], best: TrialRow | None, far) -> list[Text]:
        star = "★" if best is not None and row is best else " "
        cells = [Text(f"{star}{visible(row.label) if row.label else row.number}"),
                 Text(row.state, style=STATE_STYLES.get(row.state.split(":")[0], ""))]
        for key in keys:
            value = row.params.get(key, "")
            shown = f"{value:.3g}" if isinstance(value, float) else visible(str(value))
            cells.append(Text(shown, style="bold yellow" if far(row, key) else ""))
        cells.append(Text(f"{row.best_val_loss:.4f}" if math.isfinite(row.best_val_loss) else "-"))
        cells.append(Text(f"{row.steps:,}"))
        cells.append(Text(f"{row.pruned_at:,}" if row.pruned_at is not None else ""))
        return cells

    def _sorted(self, rows: list[TrialRow]) -> list[TrialRow]:
        if self.sort == "best val":
            return sorted(rows, key=lambda r: (r.best_val_loss, r.number))
        if self.sort == "state":
            return sorted(rows, key=lambda r: (r.state, r.number))
        return sorted(rows, key=lambda r: r.number)

    def sort_by(self, sort: str | None = None) -> str:
        """Sort by ``sort``, or by the next way after the current one; returns it."""
        self.sort = sort or SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        if self._shown is not None:
            self.show(*self._shown)
        return self.sort

    def selected_number(self) -> int | None:
        if not self.row_count:
            return None
        return int(self.ordered_rows[self.cursor_row].key.value)

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        label = str(event.column_key.value)
        if label in ("#", "best val", "state"):
            self.sort_by({"#": "number"}.get(label, label))
