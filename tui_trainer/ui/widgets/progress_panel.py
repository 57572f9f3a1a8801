"""The progress line: a step bar, then elapsed, ETA, tokens/s, lr and the losses."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from ...console import fmt_duration, fmt_loss, fmt_mfu
from ...engine.events import EvalResult, StepMetrics


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
        self._state_label = Static("idle", id="run-state")
        self._bar = ProgressBar(total=1, show_eta=False, id="step-bar")  # a fixed total: no idle animation
        self._figures = Static("", id="run-figures")

    def compose(self) -> ComposeResult:
        yield self._state_label
        yield self._bar
        yield self._figures

    def start(self, start_step: int, max_iters: int) -> None:
        self.step, self.max_iters = start_step, max_iters
        self.metrics = self.eval = None
        self._bar.update(total=max_iters, progress=start_step)

    def set_state(self, state: str) -> None:
        self.state = state

    def redraw(self) -> None:
        """Called by the app's UI tick, never per training step."""
        # Fixed-size cells: skip the layout pass, which costs more than the training step it would delay.
        self._state_label.update(self.state, layout=False)
        if self.max_iters:
            self._bar.update(progress=self.step)
        m, e = self.metrics, self.eval
        parts = [f"step {self.step:,}/{self.max_iters:,}" if self.max_iters else "step -"]
        if m:  # two lines at most at 80 columns
            parts += [f"elapsed {fmt_duration(m.elapsed)}", f"eta {fmt_duration(m.eta)}",
                      f"{m.tokens_per_sec:,.0f} tok/s", f"MFU {fmt_mfu(m.mfu)}", f"lr {m.lr:.1e}",
                      f"loss {fmt_loss(m.loss)}"]
        if e:
            parts += [f"val {fmt_loss(e.val_loss)}", f"best {fmt_loss(e.best_val_loss)}"]
        if self.note and not m:
            parts.append(self.note)
        self._figures.update("  ".join(parts), layout=False)
