"""Generated samples, with an editable prompt, temperature and top_k."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, RichLog

from ...engine.control import SampleRequest


class SamplesPanel(Vertical):
    class Requested(Message):
        def __init__(self, request: SampleRequest) -> None:
            super().__init__()
            self.request = request

    def __init__(self, max_new_tokens: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_new_tokens = max_new_tokens

    def compose(self) -> ComposeResult:
        with Horizontal(id="sample-controls"):
            yield Input(placeholder="prompt", id="sample-prompt")
            yield Input("1.0", placeholder="temperature", id="sample-temperature")
            yield Input("", placeholder="top_k", id="sample-top-k")
            yield Button("Sample", id="sample-button")
        yield RichLog(id="sample-log", wrap=True, markup=False, max_lines=500)

    def request(self) -> SampleRequest | None:
        """The request the inputs describe, or None (with the problem shown) if they are invalid."""
        temperature_text = self.query_one("#sample-temperature", Input).value
        top_k_text = self.query_one("#sample-top-k", Input).value.strip()
        try:
            temperature = float(temperature_text)
            top_k = int(top_k_text) if top_k_text else None
            if temperature < 0 or (top_k is not None and top_k < 1):
                raise ValueError
        except ValueError:
            self.app.notify("temperature must be a number >= 0 and top_k an integer >= 1 (or empty)",
                            severity="error", title="Sample")
            return None
        return SampleRequest(self.query_one("#sample-prompt", Input).value, self.max_new_tokens, temperature, top_k)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        request = self.request()
        if request:
            self.post_message(self.Requested(request))

    def add(self, step: int, text: str) -> None:
        self.query_one(RichLog).write(f"── step {step} ──\n{text}")
