"""The hyperparameter form: every config key, grouped, validated inline by the engine's rules."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, Switch

from ...engine.config import (FIELDS, GROUPS, TrainConfig, config_from_dict, field_type, find_problems, parse_value,
                              stored)
from ...engine.errors import ConfigError, GptTuiError
from ...engine.events import Event, HparamsChanged, RunStarted, StepMetrics
from ...engine.live import LIVE_KEYS, below_step
from ...engine.model import count_params, estimate_train_memory
from ...engine.presets import list_presets, preset_target, save_preset
from ...formats import fmt_count
from ..messages import CorpusInfo
from ..screens import ChoiceScreen
from ..tokenize_progress import tokenize_progress
from .corpus_figures import corpus_key, read_figures
from .text_input import TextInput

CORPUS_PAUSE = 0.8  # seconds of no typing before the corpus figures are read



class HyperparamForm(VerticalScroll):
    @dataclass
    class Changed(Message):
        """The form's values changed: ``config`` is None while anything is invalid."""

        config: TrainConfig | None

    @dataclass
    class LiveChangeSubmitted(Message):
        """Enter in a live field during a run (or a choice in a live select): change it from the next step."""

        changes: dict[str, Any]

    def __init__(self, config: TrainConfig, corpus_figures: tuple[int, int] | None = None, **kwargs) -> None:
        """``corpus_figures``: (tokens, vocab size) of the config's corpus, when the caller read it already."""
        super().__init__(**kwargs)
        self._initial = config
        self._presets = list_presets()
        self._initial_figures = corpus_figures
        self._corpus_key: tuple | None = corpus_key(config) if corpus_figures else None
        self._corpus_timer = None  # the pending read of the corpus, while typing goes on
        self._corpus_confirmed: set[tuple] = set()  # large corpora the user asked to read (Enter)
        self._problems: dict[str, str] = {}
        self._shown: dict[str, object] = {}  # widget values at the last validation
        self._corpus: tuple[int | None, int | None, str | None] = (None, None, None)
        self._loading = False
        self._in_force: dict[str, Any] | None = None  # during a run: the values it trains with
        self._step = 0  # the step the run shown has reached
        self._problem_lines: dict[str, Static] = {}  # the fields' problem lines made so far

    def compose(self) -> ComposeResult:
        yield Select(self._preset_options(self._presets), prompt="Load preset…", id="preset", allow_blank=True,
                     compact=True)
        for group in GROUPS:
            yield Static(group, classes="group-title")
            for name, f in FIELDS.items():
                if f.metadata["group"] != group:
                    continue
                # a field's problem gets its line under the row when it first has one: fifty
                # empty lines would be a sixth of the app's widgets, and of its start-up time
                with Horizontal(classes="field", id=f"field-{name}"):
                    yield Label(name, classes="field-name")
                    yield self._input_for(name, getattr(self._initial, name))
        yield Static("", id="derived", markup=False)  # may name the corpus path
        with Horizontal(id="preset-save"):
            yield TextInput(placeholder="preset name", id="preset-name")
            yield Button("Save preset", id="save-preset")

    @staticmethod
    def _preset_options(presets: list[tuple[str, Path]]) -> list[tuple[Text, str]]:
        return [(Text(label), str(path)) for label, path in presets]  # file names are data: Text, never markup

    def set_presets(self, presets: list[tuple[str, Path]]) -> None:
        """A preset saved now appears in the picker at once."""
        self.query_one("#preset", Select).set_options(self._preset_options(presets))

    def _input_for(self, name: str, value: Any):
        meta = FIELDS[name].metadata
        tooltip = meta["help"]
        if meta["choices"]:
            widget = Select([(c, c) for c in meta["choices"]], value=value, allow_blank=False, id=f"f-{name}",
                            compact=True)
        elif field_type(name) is bool:
            widget = Switch(value=value, id=f"f-{name}")
        else:
            widget = TextInput(value=self._text(value), id=f"f-{name}", placeholder=meta["help"][:40])
        widget.tooltip = tooltip
        return widget

    @staticmethod
    def _text(value: Any) -> str:
        return repr(value) if isinstance(value, float) else str(value)  # exact: it round-trips

    def on_mount(self) -> None:
        if self._initial_figures:
            self.set_corpus_info(*self._initial_figures, None)
        self.validate()

    # ---- reading and writing values ----------------------------------------------------------
    def raw_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Parsed values of every field, and the problems of fields that do not parse."""
        values, problems = {}, {}
        for name in FIELDS:
            widget = self.query_one(f"#f-{name}")
            if isinstance(widget, Input):
                try:
                    values[name] = parse_value(name, widget.value)
                except ValueError as exc:
                    problems[name] = str(exc)
            else:
                values[name] = widget.value
        return values, problems

    def load(self, config: TrainConfig) -> None:
        self.load_values(config.to_dict())

    def load_values(self, values: dict[str, Any]) -> None:
        """Put ``values`` (all keys or some) into their fields, valid or not, so validation shows
        each problem where it is; a value that a choice or a switch cannot hold is reported."""
        self._loading = True
        refused = []
        try:
            for name, value in stored(values).items():  # a run's or a preset's values: never a command
                widget = self.query_one(f"#f-{name}")
                if isinstance(widget, Input):
                    widget.value = self._text(value)
                elif isinstance(widget, Switch) and isinstance(value, bool):
                    widget.value = value
                elif isinstance(widget, Select) and value in FIELDS[name].metadata["choices"]:
                    widget.value = value
                else:
                    refused.append(f"{name} = {value!r}")
        finally:
            self._loading = False
        self.validate()
        if refused:
            self.app.notify("left as they were: " + "; ".join(refused), severity="warning", title="Preset")

    def validate(self) -> TrainConfig | None:
        values, problems = self.raw_values()
        problems.update({k: v for k, v in find_problems({k: v for k, v in values.items() if k not in problems}).items()
                         if k not in problems})
        if self._in_force is not None and "max_iters" not in problems and below_step(values, self._step):
            problems["max_iters"] = below_step(values, self._step)  # said as typed, not only at Enter
        for name in FIELDS:
            if problems.get(name) != self._problems.get(name) or not self._shown:
                self._show_problem(name, problems.get(name, ""))
                self.query_one(f"#field-{name}").set_class(name in problems, "invalid")
        if "data" not in problems and self._shown and self._shown.get("data") != self.query_one("#f-data").value:
            self._show_problem("data", "")  # the last corpus's problem: a new path is read
        self._problems = problems
        self._shown = {name: self.query_one(f"#f-{name}").value for name in FIELDS}
        self._mark_pending(values)
        config = None if problems else config_from_dict(values)
        self._update_derived(values)
        self.post_message(self.Changed(config))
        if config is not None and corpus_key(config) != self._corpus_key:
            self._read_corpus_later(corpus_key(config))
        return config

    # ---- the corpus figures -------------------------------------------------------------------
    def _read_corpus_later(self, key: tuple) -> None:
        """Read once typing pauses, not at every prefix of a path ("." is a whole folder)."""
        self._corpus_key = key
        self.workers.cancel_group(self, "corpus")
        if self._corpus_timer is not None:
            self._corpus_timer.stop()
        self._corpus_timer = self.set_timer(CORPUS_PAUSE, lambda: self._read_corpus(key))

    def _read_corpus(self, key: tuple) -> None:
        progress = tokenize_progress(self)
        self.run_worker(lambda: self.post_message(read_figures(key, key in self._corpus_confirmed, progress)),
                        thread=True, exclusive=True, group="corpus", exit_on_error=False)

    @on(CorpusInfo)
    def _corpus_info(self, event: CorpusInfo) -> None:
        event.stop()
        if event.key == self._corpus_key and self.is_attached:  # a read that ends as the app closes: no form left
            self.set_corpus_info(event.tokens, event.vocab_size, event.error, event.ask)

    @on(Input.Submitted, "#f-data")
    def _read_large_corpus(self, event: Input.Submitted) -> None:
        """Enter in the data field: read that corpus, however large."""
        values, problems = self.raw_values()
        if "data" not in problems and not self._problems:
            if self._corpus_timer is not None:
                self._corpus_timer.stop()  # read now, once, rather than again when typing's pause ends
            key = corpus_key(config_from_dict(values))
            self._corpus_confirmed.add(key)
            self._corpus_key = key
            self._read_corpus(key)

    @property
    def problems(self) -> dict[str, str]:
        return dict(self._problems)

    def set_corpus_info(self, tokens: int | None, vocab_size: int | None, error: str | None,
                        ask: bool = False) -> None:
        self._corpus = (tokens, vocab_size, error)
        self._update_derived(self.raw_values()[0])
        if "data" not in self._problems:  # also under the field, where it is typed: the figures may be off screen
            self._show_problem("data", error or "", question=ask)

    def _show_problem(self, name: str, problem: str, question: bool = False) -> None:
        """``problem`` on the line under the field (none: the line hides), made on first need; a
        question (read this large corpus?) is shown as one, not in the colours of a fault."""
        line = self._problem_lines.get(name)
        if line is None:
            if not problem or not self.is_attached:  # a form being closed: the next validate makes it
                return
            # problems quote what the user typed: plain text, never markup
            line = self._problem_lines[name] = Static("", classes="field-error", id=f"error-{name}", markup=False)
            self.mount(line, after=self.query_one(f"#field-{name}"))
        line.update(problem)
        line.display = bool(problem)
        line.set_class(question, "question")

    def _update_derived(self, values: dict[str, Any]) -> None:
        tokens, vocab_size, error = self._corpus
        lines = []
        try:
            batch_tokens = values["batch_size"] * values["context_length"] * values["grad_accum_steps"]
            processes = values["processes"]
            if processes > 1:  # batch_size is per process under torchrun
                lines.append(f"tokens/step   {batch_tokens * processes:,} ({processes} processes × {batch_tokens:,})")
            else:
                lines.append(f"tokens/step   {batch_tokens:,}")
            if vocab_size:
                params = count_params(vocab_size, values["d_model"], values["num_blocks"])
                memory = estimate_train_memory(vocab_size, values["d_model"], values["num_blocks"], batch_tokens)
                lines.append(f"parameters    {fmt_count(params)}")
                lines.append(f"memory        ≈{fmt_count(memory, 'B')}")
        except (KeyError, TypeError, OverflowError, ValueError):
            pass  # a field that does not parse yet, or figures beyond any machine: its own error says so
        if error:
            lines.append(f"corpus        {error}")
        elif tokens is not None:
            lines.append(f"corpus        {tokens:,} tokens, vocab {vocab_size:,}")
        else:
            lines.append("corpus        reading…")
        self.query_one("#derived", Static).update("\n".join(lines))

    def set_running(self, running: bool) -> None:
        """During a run only the live keys stay editable (a watched run's too: changes reach it
        through its run directory), and the fields show the values it trains with until a change
        is applied."""
        if running and self._in_force is None:
            self._in_force = self.raw_values()[0]
        elif not running and self._in_force is not None:
            self._in_force = None
            if "max_iters" in self._problems:
                self.validate()  # "the run is at step N already" no longer holds once it has ended
        for name in FIELDS:
            widget = self.query_one(f"#f-{name}")
            widget.disabled = running and name not in LIVE_KEYS
            help_text = FIELDS[name].metadata["help"]
            if running and name in LIVE_KEYS:
                widget.tooltip = f"{help_text}\nLive: Enter applies a new value at the next step."
            elif running:
                widget.tooltip = f"{help_text}\nFixed while the run trains: fork it to change this (F2, then f)."
            else:
                widget.tooltip = help_text
        self.query_one("#preset").disabled = running
        self._mark_pending(self.raw_values()[0])

    def in_force(self) -> TrainConfig | None:
        """The config the run shown trains with (None between runs)."""
        if self._in_force is None:
            return None
        try:
            return config_from_dict(self._in_force)
        except ConfigError:  # a watched run's hand-edited config.toml
            return None

    def add_event(self, event: Event) -> None:
        if isinstance(event, HparamsChanged):
            self.applied(event.changes)
        elif isinstance(event, (StepMetrics, RunStarted)):
            self._step = event.step

    def applied(self, changes: dict[str, list]) -> None:
        """A live change took effect (from here, another watcher or the command line): the
        fields show the values in force."""
        new = {key: value for key, (_, value) in changes.items()}
        if self._in_force is not None:
            self._in_force.update(new)
        self.load_values(new)

    def _mark_pending(self, values: dict[str, Any]) -> None:
        """Mark the live fields whose value differs from the one the run trains with."""
        for name in LIVE_KEYS:
            pending = self._in_force is not None and values.get(name, self._in_force[name]) != self._in_force[name]
            self.query_one(f"#field-{name}").set_class(pending, "pending")

    # ---- events -------------------------------------------------------------------------------
    @on(Input.Changed)
    @on(Select.Changed)
    @on(Switch.Changed)
    def _changed(self, event: Message) -> None:
        if self._loading or getattr(event, "control", None) is None:
            return
        if event.control.id in ("preset", "preset-name"):
            return
        event.stop()
        # Widgets report their first value on mount too: only a real edit needs a new validation.
        if self._shown.get(event.control.id.removeprefix("f-"), object()) != event.control.value:
            self.validate()

    @on(Input.Submitted)
    def _live_submitted(self, event: Input.Submitted) -> None:
        """Enter in a live field during a run: apply it, unless it shows a problem or is the value
        in force already (as a live choice is, in _live_chosen)."""
        name = (event.input.id or "").removeprefix("f-")
        if self._in_force is None or name not in LIVE_KEYS:
            return
        event.stop()
        if name not in self._problems:
            value = parse_value(name, event.value)
            if value != self._in_force[name]:
                self.post_message(self.LiveChangeSubmitted({name: value}))

    @on(Select.Changed)
    def _live_chosen(self, event: Select.Changed) -> None:
        """A live choice during a run (lr_schedule) applies as soon as it is made."""
        name = (event.select.id or "").removeprefix("f-")
        if self._in_force is not None and not self._loading and name in LIVE_KEYS \
                and event.value != self._in_force[name] and name not in self._problems:
            self.post_message(self.LiveChangeSubmitted({name: event.value}))

    @on(Select.Changed, "#preset")
    def _preset_chosen(self, event: Select.Changed) -> None:
        event.stop()
        if not isinstance(event.value, str):  # the blank "Load preset…" entry (Select.NULL): nothing to load
            return
        from ...engine.config import read_toml

        try:
            values = read_toml(Path(event.value))
        except ConfigError as exc:  # not TOML at all: nothing to show in the fields
            self.app.notify(str(exc), severity="error", title="Preset")
            return
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            self.app.notify(f"{Path(event.value).name}: unknown keys left out: {', '.join(unknown)}",
                            severity="warning", title="Preset")
        # Loaded as text, valid or not: the fields show each problem, as if typed.
        self.load_values({k: v for k, v in values.items() if k in FIELDS})

    @on(Input.Submitted, "#preset-name")
    @on(Button.Pressed, "#save-preset")
    def _save_preset(self, event: Button.Pressed | Input.Submitted) -> None:
        """Saved among the user's presets (the button, or Enter in the name); a shipped one is
        never written, an existing one of the user's only after a yes."""
        event.stop()
        name = self.query_one("#preset-name", Input).value.strip()
        config = self.validate()
        if config is None:
            return
        try:
            path = preset_target(name)
        except GptTuiError as exc:
            self.app.notify(str(exc), severity="error", title="Preset")
            return

        def write(answer: str | None = "overwrite") -> None:
            if answer != "overwrite":
                return
            try:
                save_preset(config, path)
            except OSError as exc:
                self.app.notify(f"could not write {path}: {exc.strerror or exc}", severity="error", title="Preset")
                return
            self.set_presets(list_presets())
            self.app.notify(f"saved preset {path}", title="Preset")
        if path.exists():
            self.app.push_screen(ChoiceScreen(f"Your preset {name!r} exists ({path}). Overwrite it?",
                                              [("overwrite", "o", "Overwrite")]), write)
        else:
            write()
