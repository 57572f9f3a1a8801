"""Generated samples, with an editable prompt, temperature, top_k and top_p (checked as typed),
shown one page at a time by :class:`SampleView`."""
from __future__ import annotations

from dataclasses import dataclass, replace

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from ...engine.config import quoted
from ...engine.control import SampleRequest
from ...engine.events import Event, SampleText
from ...engine.sampling import sample_problems
from .sample_view import SampleView
from .text_input import TextInput


class SamplesPanel(Vertical):
    @dataclass
    class Requested(Message):
        """Generate: a sample with the panel's prompt and settings."""

        request: SampleRequest

    def __init__(self, max_new_tokens: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_new_tokens = max_new_tokens

    def compose(self) -> ComposeResult:
        # Two rows, the settings labelled: in one, an 80-column terminal left the prompt 3 columns
        # and hid which number was which once the placeholders were typed over.
        with Vertical(id="sample-controls"):
            with Horizontal(classes="sample-row"):
                yield TextInput(placeholder="prompt", id="sample-prompt")
                yield Button("Sample", id="sample-button")
                yield Button("Compare", id="compare-button")
            with Horizontal(classes="sample-row"):
                for label, value, widget_id in (("temperature", "1.0", "sample-temperature"),
                                                ("top_k", "", "sample-top-k"), ("top_p", "", "sample-top-p")):
                    yield Label(label)
                    yield TextInput(value, placeholder="off" if not value else "", id=widget_id)
        yield Static("", id="sample-problem", markup=False)
        with VerticalScroll(id="sample-scroll"):
            yield SampleView(id="sample-view")

    def on_mount(self) -> None:
        self.query_one("#sample-problem").display = False

    def _parsed(self) -> tuple[SampleRequest | None, list[str]]:
        """The request the inputs describe, or None and what is wrong with them."""
        texts = {name: self.query_one(f"#sample-{name}", Input).value.strip() for name in ("temperature", "top-k",
                                                                                          "top-p")}
        try:
            temperature = float(texts["temperature"])
        except ValueError:
            return None, [f"temperature {quoted(texts['temperature'])}: must be a number > 0 (or 0 for greedy)"]
        try:
            top_k = int(texts["top-k"]) if texts["top-k"] else None
        except ValueError:
            return None, [f"top_k {quoted(texts['top-k'])}: must be an integer >= 1 (or empty for none)"]
        try:
            top_p = float(texts["top-p"]) if texts["top-p"] else None
        except ValueError:
            return None, [f"top_p {quoted(texts['top-p'])}: must be in (0, 1] (or empty for none)"]
        problems = sample_problems(self.max_new_tokens, temperature, top_k, top_p)
        if problems:
            return None, problems
        prompt = self.query_one("#sample-prompt", Input).value
        return SampleRequest(prompt, self.max_new_tokens, temperature, top_k, top_p), []

    def on_input_changed(self, event: Input.Changed) -> None:
        """Settings are checked where they are typed: the problem shows under them at once."""
        event.stop()
        _, problems = self._parsed()
        problem = self.query_one("#sample-problem", Static)
        problem.update("; ".join(problems))
        problem.display = bool(problems)

    def request(self) -> SampleRequest | None:
        """The request the inputs describe, or None (with the problem shown) if they are invalid."""
        request, problems = self._parsed()
        if problems:
            self.app.notify("; ".join(problems), severity="error", title="Sample")
        return request

    def _ask(self, compare: bool) -> None:
        request = self.request()
        if request:
            self.post_message(self.Requested(replace(request, compare=compare)))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self._ask(compare=event.button.id == "compare-button")

    def on_sample_view_compare_requested(self, event: SampleView.CompareRequested) -> None:
        event.stop()
        self._ask(compare=True)

    def add_event(self, event: Event) -> None:
        if isinstance(event, SampleText):
            self.query_one(SampleView).add(event)
