"""A checkbox whose tick is a character, not only a colour."""
from __future__ import annotations

from textual.widgets import Checkbox


class TickBox(Checkbox):
    """Textual's checkbox draws the same X ticked or not and tells them apart by colour alone,
    which a monochrome terminal, a screen reader or a pasted screen loses: here an unticked
    box is empty."""

    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 (Textual's name for it)
        return "X" if self.value else " "
