"""The app's text field: whatever is typed, pasted or loaded into it (a preset, a run's config)
shows its control characters as ‹1b›, so a field never sends a code to the terminal."""
from __future__ import annotations

from textual.widgets import Input

from ...engine.safe_text import visible


class TextInput(Input):
    def validate_value(self, value: str) -> str:
        return visible(value)
