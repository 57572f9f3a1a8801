"""The Sweep setup: which of the form's keys to search and over what, pre-filled with ranges
around the form's values (sweep_spec.around), and the budget; checked as a sweep file is."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, Static

from ..engine.config import TrainConfig, field_type, parse_value, stored
from ..engine.safe_text import visible
from ..engine.sweep_spec import PRUNERS, SAMPLERS, SweepError, SweepSpec, around, parse_sweep
from .widgets.text_input import TextInput
from .widgets.tick_box import TickBox


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class SweepSetupScreen(ModalScreen[tuple[SweepSpec, int] | None]):
    """Dismissed with (the sweep's spec, workers), or None."""

    DEFAULT_CSS = """
    SweepSetupScreen { align: center middle; }
    #sweep-setup { width: 90%; max-width: 100; height: auto; max-height: 95%; }
    #setup-intro { width: 1fr; }  /* wraps at 80 columns rather than lose its end */
    #sweep-rows { height: auto; }
    .setup-row { height: 3; }
    .setup-key { width: 22; }
    .setup-kind { width: auto; padding: 1 1 0 1; }
    .setup-bound { width: 1fr; }
    .setup-choices { width: 2fr; }
    #setup-problems { height: auto; color: $error; }
    #sweep-setup Select { width: 1fr; }
    """

    BINDINGS = [("escape", "cancel", "Cancel")]

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config
        self.rows = around(config)

    def compose(self) -> ComposeResult:
        # one scrolling dialog: at 80x24 its rows, budget and buttons do not fit at once, and Tab
        # (or the mouse) scrolls whatever is focused into view
        with VerticalScroll(classes="choice-dialog", id="sweep-setup"):
            yield Label("Sweep around the form's values: tick the keys to search, edit their ranges.", markup=False,
                        id="setup-intro")
            with Vertical(id="sweep-rows"):
                for param, searched in self.rows:
                    with Horizontal(classes="setup-row"):
                        yield TickBox(param.name, searched, id=f"on-{param.name}", classes="setup-key")
                        yield Label(param.kind.replace("_", "-"), classes="setup-kind", markup=False)
                        if param.kind == "choice":
                            yield TextInput(", ".join(map(_text, param.values)), id=f"choices-{param.name}",
                                            classes="setup-choices")
                        else:
                            yield TextInput(_text(param.values[0]), id=f"low-{param.name}", classes="setup-bound")
                            yield TextInput(_text(param.values[1]), id=f"high-{param.name}", classes="setup-bound")
            with Horizontal(classes="setup-row"):
                yield Label("trials", classes="setup-kind", markup=False)
                yield TextInput("16", id="setup-trials", classes="setup-bound")
                yield Label("steps each", classes="setup-kind", markup=False)
                yield TextInput(str(self.config.max_iters), id="setup-steps", classes="setup-bound")
                yield Label("workers", classes="setup-kind", markup=False)
                yield TextInput("1", id="setup-workers", classes="setup-bound")
            with Horizontal(classes="setup-row"):
                yield Select([(p, p) for p in SAMPLERS], value="tpe", allow_blank=False, id="setup-sampler")
                yield Select([(p, p) for p in PRUNERS], value="asha", allow_blank=False, id="setup-pruner")
            yield Static("", id="setup-problems", markup=False)
            with Horizontal(classes="choice-buttons"):
                yield Button("Start the sweep", id="start", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "start":
            self._start()
        else:
            self.dismiss(None)

    @on(TextInput.Submitted)
    def _submitted(self, event: TextInput.Submitted) -> None:
        event.stop()
        self._start()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", TextInput).value

    def _start(self) -> None:
        problems: list[str] = []
        search = {}
        for param, _ in self.rows:
            if not self.query_one(f"#on-{param.name}", TickBox).value:
                continue
            try:
                if param.kind == "choice":
                    texts = [t for t in self._value(f"choices-{param.name}").split(",") if t.strip()]
                    search[param.name] = {"choice": [parse_value(param.name, t) for t in texts]}
                else:
                    bounds = [self._value(f"{end}-{param.name}") for end in ("low", "high")]
                    tp = int if param.kind == "int" else float
                    if field_type(param.name) is int and tp is float:
                        tp = int
                    search[param.name] = {param.kind: [tp(parse_value(param.name, b)) for b in bounds]}
            except ValueError as exc:
                problems.append(str(exc))
        raw = {"trials": self._whole("setup-trials", "trials", problems), "sampler": self._select("setup-sampler"),
               "pruner": self._select("setup-pruner"), "set": {}, "search": search}
        steps = self._whole("setup-steps", "steps each", problems)
        workers = self._whole("setup-workers", "workers", problems)
        if steps:
            raw["set"]["max_iters"] = steps
        if not search:
            problems.append("tick at least one key to search")
        if not problems:
            try:
                spec = parse_sweep(raw, "the Sweep setup", base=stored(self.config.to_dict()))
            except SweepError as exc:
                problems += exc.problems
        if problems:
            self.query_one("#setup-problems", Static).update(visible("\n".join(problems)))
            return
        self.dismiss((spec, workers or 1))

    def _whole(self, widget_id: str, name: str, problems: list[str]) -> int | None:
        text = self._value(widget_id).strip()
        if not text.isdigit() or not 1 <= int(text) <= 100_000:
            problems.append(f"{name} = {text[:20]!r}: must be a whole number from 1 to 100000")
            return None
        return int(text)

    def _select(self, widget_id: str) -> str:
        return str(self.query_one(f"#{widget_id}", Select).value)
