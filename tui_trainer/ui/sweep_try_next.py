""""Try this next": values for the searched keys, typed by the user, queued in the study as
the next trial any worker runs (Optuna's enqueue_trial)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from ..engine.errors import GptTuiError
from ..engine.safe_text import visible
from ..engine.sweep_spec import SweepSpec
from .widgets.text_input import TextInput


def shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class TryNextScreen(ModalScreen[dict | None]):
    """Dismissed with the values queued, or None (escape, Cancel)."""

    DEFAULT_CSS = """
    TryNextScreen { align: center middle; }
    #try-next { width: 90%; max-width: 100; height: auto; max-height: 95%; }
    .try-row { height: 3; }
    .try-key { width: 1fr; padding: 1 1 0 0; }
    .try-value { width: 1fr; }
    #try-problems { height: auto; color: $error; }
    """

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, spec: SweepSpec, sweep_dir: Path, start: dict[str, Any]) -> None:
        super().__init__()
        self.spec, self.sweep_dir, self.start = spec, Path(sweep_dir), start

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="choice-dialog", id="try-next"):
            yield Label("Try these values as the next trial (the best trial's to start with):", markup=False)
            for key, param in self.spec.search.items():
                ranged = ", ".join(map(str, param.values)) if param.kind == "choice" else \
                    f"{param.values[0]:g} to {param.values[1]:g}"
                with Horizontal(classes="try-row"):
                    yield Label(visible(f"{key} ({ranged})"), classes="try-key", markup=False)
                    value = self.start.get(key, param.values[0])
                    yield TextInput(shown(value), id=f"try-{key}", classes="try-value")
            yield Static("", id="try-problems", markup=False)
            with Horizontal(classes="choice-buttons"):
                yield Button("Try next (enter)", id="try", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query(TextInput).first().focus()

    @on(TextInput.Submitted)
    def _submitted(self, event: TextInput.Submitted) -> None:
        event.stop()
        self._try()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "try":
            self._try()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _try(self) -> None:
        from ..engine.sweep_view import typed_trial

        texts = {key: self.query_one(f"#try-{key}", TextInput).value for key in self.spec.search}
        try:
            params = typed_trial(self.spec, texts)
        except GptTuiError as exc:
            self._say(exc)
            return
        self.query_one("#try-problems", Static).update("queueing…")
        self._queue(params)

    @work(thread=True, exclusive=True, exit_on_error=False)
    def _queue(self, params: dict) -> None:
        """In a thread: the study may be an RDB across a network."""
        from ..engine.sweep_study import enqueue, load_local_study, local_storage, read_record, write_record

        try:
            record = read_record(self.sweep_dir)
            study = load_local_study(self.sweep_dir, record)
            enqueue(study, params)
            write_record(study, self.spec, self.sweep_dir, local_storage(self.sweep_dir, record.get("storage")))
        except Exception as exc:  # noqa: BLE001 - any storage's error is said in the dialog, which stays open
            self.app.call_from_thread(self._say, exc)
            return
        self.app.call_from_thread(self.dismiss, params)

    def _say(self, exc: Exception) -> None:
        lines = getattr(exc, "problems", None) or [f"cannot queue the trial: {exc}"]
        self.query_one("#try-problems", Static).update(visible("\n".join(lines)))
