"""The Health tab: per group (token embedding, each block, head) the gradient norm and the
update-to-weight ratio |Δw| / |w| of its last measurement, each with a sparkline of recent
ones; the worst of each column is highlighted. Above them: the global gradient norm, clipping,
the embedding and head weight norms, and the last loss spike."""
from __future__ import annotations

import math
from collections import deque

from rich.console import Group, RenderableType
from rich.color import Color
from rich.table import Table
from rich.text import Text
from textual.renderables.sparkline import Sparkline
from textual.widget import Widget

from ...engine.events import Event, RolledBack, SpikeDetected, StepMetrics
from ...event_text import event_line, grad_text
from ...formats import fmt_norm
from .hidden import in_hidden_tab

HISTORY = 48  # measurements each sparkline spans (one per log interval)
SPARK_WIDTH = 16


class HealthPanel(Widget):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.metrics: StepMetrics | None = None
        self.grads: dict[str, deque[float]] = {}
        self.ratios: dict[str, deque[float]] = {}
        self.last_spike: str = ""

    def add_event(self, event: Event) -> None:
        if isinstance(event, StepMetrics):
            self.add(event)
        elif isinstance(event, (SpikeDetected, RolledBack)):
            self.note(event)

    def add(self, metrics: StepMetrics) -> None:
        if not metrics.health:
            return
        self.metrics = metrics
        for group in metrics.health.get("groups", []):
            for series, key in ((self.grads, "grad_norm"), (self.ratios, "update_ratio")):
                value = group.get(key)
                history = series.setdefault(group["name"], deque(maxlen=HISTORY))
                if isinstance(value, (int, float)) and math.isfinite(value):
                    history.append(value)
        self._redraw()

    def note(self, event: SpikeDetected | RolledBack) -> None:
        self.last_spike = event_line(event) or ""
        self._redraw()

    def _redraw(self) -> None:
        """A new height needs a layout pass of the whole screen (about 20 ms here, at every log
        interval while training): only while the tab shows. A hidden panel is not touched at
        all (see in_hidden_tab); it is drawn afresh when its tab is shown."""
        if not in_hidden_tab(self):
            self.refresh(layout=True)

    def on_show(self) -> None:
        self.refresh(layout=True)  # what came while the tab was hidden

    def render(self) -> RenderableType:
        m = self.metrics
        if m is None:
            return Text("Gradient norms and update ratios appear at the first log interval (health = true).",
                        style="dim")
        colours = self.app.theme_variables
        low, high = Color.parse(colours["text-success"]), Color.parse(colours["text-error"])  # Rich colours
        warn = f"bold {colours['text-warning']}"
        groups = m.health.get("groups", [])
        worst_grad = _worst(groups, "grad_norm")
        worst_ratio = _worst(groups, "update_ratio")
        # Names and figures keep their width; the sparklines share what is left (up to SPARK_WIDTH).
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        table.add_column("", min_width=9, no_wrap=True)
        for header in ("grad norm", "|Δw| / |w|"):
            table.add_column(header, justify="right", min_width=len(header), header_style="dim", no_wrap=True)
            table.add_column("", max_width=SPARK_WIDTH, ratio=1)
        for i, group in enumerate(groups):
            name = group["name"]
            table.add_row(
                name,
                Text(fmt_norm(group.get("grad_norm")), style=warn if i == worst_grad else ""),
                Sparkline(list(self.grads.get(name, [])), width=None, min_color=low, max_color=high),
                Text(fmt_norm(group.get("update_ratio")), style=warn if i == worst_ratio else ""),
                Sparkline(list(self.ratios.get(name, [])), width=None, min_color=low, max_color=high))
        header = Text(f"step {m.step:,} · global {grad_text(m)} · embedding norm "
                      f"{fmt_norm(m.health.get('embedding_norm'))} · head norm {fmt_norm(m.health.get('head_norm'))}",
                      style="dim")
        parts: list[RenderableType] = [header]
        if isinstance(m.health.get("optimizer"), str):  # which weights each optimizer updates
            parts.append(Text(m.health["optimizer"], style="dim"))
        parts.append(table)
        if self.last_spike:
            parts.append(Text(self.last_spike, style=warn))
        return Group(*parts)


def _worst(groups: list[dict], key: str) -> int | None:
    """The index of the group with the largest finite ``key``, or None."""
    values = [(g.get(key), i) for i, g in enumerate(groups)]
    finite = [(v, i) for v, i in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return max(finite)[1] if finite else None
