"""The progress line: a step bar, then elapsed, ETA, tokens/s, lr and the losses."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from ...engine.events import EvalResult, Event, HparamsChanged, RunStarted, StepMetrics
from ...event_text import grad_text
from ...formats import fmt_duration, fmt_loss, fmt_mfu
from .entry_wrap import GAP, wrap_entries


FIGURE_LINES = 2  # the figures' fixed height (app.tcss #run-figures)


class ProgressPanel(Horizontal):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = "idle"
        self.step = 0
        self.max_iters = 0
        self.metrics: StepMetrics | None = None
        self.eval: EvalResult | None = None
        self.note = ""  # shown until the first step reports, e.g. tokenizing progress
        # Kept as attributes: the app's timer may redraw while the screen is being torn down.
        self._state_label = Static("idle", id="run-state", markup=False)
        self._bar = ProgressBar(total=1, show_eta=False, id="step-bar")  # a fixed total: no idle animation
        self._figures = Static("", id="run-figures", markup=False)  # the note may name a path

    def compose(self) -> ComposeResult:
        yield self._state_label
        yield self._bar
        yield self._figures

    def add_event(self, event: Event) -> None:
        if isinstance(event, StepMetrics):
            self.step, self.metrics = event.step, event
        elif isinstance(event, EvalResult):
            self.eval = event
        elif isinstance(event, RunStarted):
            self.start(event.step, event.max_iters)
        elif isinstance(event, HparamsChanged) and "max_iters" in event.changes:
            self.set_max_iters(event.changes["max_iters"][1])

    def start(self, start_step: int, max_iters: int) -> None:
        self.step, self.max_iters = start_step, max_iters
        self.metrics = self.eval = None
        self._bar.update(total=max_iters, progress=start_step)

    def set_max_iters(self, max_iters: int) -> None:
        """max_iters changed during the run."""
        self.max_iters = max_iters
        self._bar.update(total=max_iters)

    def set_state(self, state: str) -> None:
        self.state = state

    def redraw(self) -> None:
        """Called by the app's UI tick, never per training step."""
        # Fixed-size cells: skip the layout pass, which costs more than the training step it would delay.
        self._state_label.update(self.state, layout=False)
        if self.max_iters:
            self._bar.update(progress=self.step)
        m, e = self.metrics, self.eval
        # (priority, text) in display order: 0 is kept longest when the panel is narrow
        parts = [(0, f"step {self.step:,}/{self.max_iters:,}" if self.max_iters else "step -")]
        if m:
            # An eta only while the run goes on to max_iters: once it ends (or stops at the next
            # step) it counted down to nothing.
            eta = [(4, f"eta {fmt_duration(m.eta)}")] if self.state in ("running", "paused") else []
            parts += [(7, f"elapsed {fmt_duration(m.elapsed)}"), *eta,
                      (3, f"{m.tokens_per_sec:,.0f} tok/s"), (5, f"MFU {fmt_mfu(m.mfu)}"), (6, f"lr {m.lr:.1e}"),
                      (1, f"loss {fmt_loss(m.loss)}")]
            if m.grad_norm is not None:
                parts.append((5, grad_text(m)))
        if e:
            parts += [(2, f"val {fmt_loss(e.val_loss)}"), (8, f"best {fmt_loss(e.best_val_loss)}")]
            if e.val_bpb is not None:
                parts.append((6, f"{e.val_bpb:.3f} bpb"))
        if self.note and not m:
            parts.append((0, self.note))
        self._figures.update(fit_lines(parts, self._figures.size.width or 200, FIGURE_LINES), layout=False)


def fit_lines(parts: list[tuple[int, str]], width: int, max_lines: int) -> str:
    """Lay out ``parts`` (priority, text) in order on at most ``max_lines`` lines of ``width``,
    leaving out the least important (highest number) until they fit: nothing is cut mid-way."""
    kept = list(parts)
    while len(kept) > 1 and len(wrap_entries([t for _, t in kept], width)) > max_lines:
        kept.remove(max(kept, key=lambda part: part[0]))
    return "\n".join((" " * GAP).join(line) for line in wrap_entries([t for _, t in kept], width))
