"""Modal screens."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class QuitScreen(ModalScreen[str]):
    """Asked when quitting during a run: save first, quit without saving, or go back."""

    BINDINGS = [Binding("escape", "dismiss('cancel')", "Cancel"), Binding("s", "dismiss('save')", "Save and quit"),
                Binding("q", "dismiss('discard')", "Quit without saving")]

    def compose(self) -> ComposeResult:
        with Grid(id="quit-dialog"):
            yield Label("Training is running. Save a checkpoint before quitting?", id="quit-question")
            yield Button("Save and quit (s)", variant="primary", id="save")
            yield Button("Quit without saving (q)", variant="error", id="discard")
            yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)
