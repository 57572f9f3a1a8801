"""Modal screens: a question with a few answers, each a button and a key."""
from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from ..engine.safe_text import visible


class ChoiceScreen(ModalScreen[str]):
    """Dismissed with the id of the answer chosen (its button, or its key), or "cancel" on escape.

    ``answers`` are (id, key, label) in the order shown; the question is plain text."""

    def __init__(self, question: str, answers: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.question = question
        self.answers = answers

    def compose(self) -> ComposeResult:
        with Vertical(classes="choice-dialog"):
            yield Label(visible(self.question), classes="choice-question", markup=False)
            with Horizontal(classes="choice-buttons"):
                for answer, key, label in self.answers:
                    yield Button(f"{label} ({key})", id=answer, variant="primary" if answer == self.answers[0][0]
                                 else "default")
                yield Button("Cancel (esc)", id="cancel")

    def on_key(self, event: events.Key) -> None:
        keys = {key: answer for answer, key, _ in self.answers} | {"escape": "cancel"}
        if event.key in keys:
            event.stop()
            self.dismiss(keys[event.key])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id)


class QuitScreen(ChoiceScreen):
    """Asked when quitting during a run: save first, quit without saving, or go back."""

    def __init__(self, paused: bool = False) -> None:
        state = "paused" if paused else "running"
        super().__init__(f"Training is {state}. Save a checkpoint before quitting?",
                         [("save", "s", "Save and quit"), ("discard", "q", "Quit without saving")])
