"""The live loss plot: raw and EMA-smoothed train loss, eval losses, the best val loss marked.

plotext draws its legend over the top-left of the canvas, which is where a falling loss curve
starts; so the legend is a line of its own under the plot (:class:`PlotLegend`).
"""
from __future__ import annotations

import math
import time

from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ...engine.events import EvalResult, Event, HparamsChanged, SpikeDetected, StepMetrics
from ..series import Series
from .entry_wrap import GAP, wrap_entries

EMA_ALPHA = 0.1
PARENT_COLOR = "gray"  # dimmed: the parent run's curve behind a fork's own
MAX_MARKERS = 32  # live changes and spikes marked on the plot: the latest ones
LR_CURVE, LR_SUGGESTION = ("smoothed loss", "cyan"), ("suggested lr", "green")  # (legend name, colour)
DECAY = ("decay from step", "green")
AXIS_COLUMNS = 8  # the y axis and its figures, left of the plot area
MARKER_KINDS = {"hparams": ("hyperparameters changed", "yellow"), "spike": ("loss spike", "red")}
COMPARE_COLORS = ("orange", "blue+", "yellow", "green+", "red+", "cyan+")
# plotext's colour names as Rich spells them, for the legend line
RICH_COLORS = {"gray": "grey62", "cyan": "cyan", "green": "green", "magenta": "magenta", "red": "red",
               "orange": "dark_orange", "blue+": "bright_blue", "yellow": "yellow", "green+": "bright_green",
               "red+": "bright_red", "cyan+": "bright_cyan"}
SERIES = (("raw", "train", "gray", "dot"), ("ema", "EMA", "cyan", "braille"),
          ("eval_train", "eval train", "green", "braille"), ("eval_val", "eval val", "magenta", "braille"))


class LossPlot(PlotextPlot):
    """Owns bounded series; the app appends points and calls ``refresh`` a few times a second."""

    # The last redraw's cost in seconds: plotext's build and the conversion of its output into
    # lines, both on the app's thread, where they hold the GIL that the training thread needs.
    render_seconds = 0.0

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.raw = Series()
        self.ema = Series()
        self.eval_train = Series(512)
        self.eval_val = Series(512)
        self.best: tuple[float, float] | None = None
        self.log_y = False
        self._ema_value: float | None = None
        # Val curves of other runs overlaid from the Runs screen: (label, steps, losses).
        self.compare: list[tuple[str, Series]] = []
        self.markers: list[tuple[int, str, str]] = []  # (step, label, kind): live changes and spikes
        self.fork_parent: tuple[str, Series] | None = None  # a fork's parent run: its train loss up to the fork
        # The learning-rate finder's curve, drawn instead of the run's until the next run starts:
        # ((lr, smoothed loss) points, the suggested lr or None).
        self.lr_curve: tuple[list[tuple[float, float]], float | None] | None = None
        self.decay_start: int | None = None  # where a wsd schedule's decay begins (schedule.decay_start)

    def set_compare(self, curves: list[tuple[str, list[int], list[float]]]) -> None:
        """Overlay other runs' val curves, given as (label, steps, losses); [] removes them."""
        self.compare = []
        for label, xs, ys in curves:
            series = Series(512)
            for x, y in zip(xs, ys):
                series.append(x, y)
            self.compare.append((label, series))
        self.refresh()

    def set_parent(self, name: str, losses: list[tuple[int, float]]) -> None:
        series = Series(512)
        for step, loss in losses:
            if math.isfinite(loss):
                series.append(step, loss)
        self.fork_parent = (name, series) if len(series) else None
        self.refresh()

    def set_decay_start(self, step: int | None) -> None:
        self.decay_start = step
        self.refresh()

    def set_lr_curve(self, points: list[tuple[float, float]], suggestion: float | None) -> None:
        self.lr_curve = (points, suggestion)
        self.refresh()

    def reset(self) -> None:
        for series in (self.raw, self.ema, self.eval_train, self.eval_val):
            series.clear()
        self.lr_curve = None
        self.decay_start = None
        self.best = None
        self._ema_value = None
        self.markers = []
        self.fork_parent = None
        self.refresh()

    def add_step(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            return
        self.raw.append(step, loss)
        self._ema_value = loss if self._ema_value is None else (1 - EMA_ALPHA) * self._ema_value + EMA_ALPHA * loss
        self.ema.append(step, self._ema_value)

    def add_eval(self, step: int, train_loss: float, val_loss: float) -> None:
        self.eval_train.append(step, train_loss)
        self.eval_val.append(step, val_loss)
        if self.best is None or val_loss < self.best[1]:
            self.best = (step, val_loss)

    def add_marker(self, step: int, label: str, kind: str) -> None:
        """A vertical line at ``step``: a live change ("hparams") or a loss spike ("spike")."""
        self.markers = [*self.markers[-(MAX_MARKERS - 1):], (step, label, kind)]

    def add_event(self, event: Event) -> None:
        """What an engine event draws: the one place for the live run, a watched one and the
        history a resume starts from."""
        if isinstance(event, StepMetrics):
            self.add_step(event.step, event.loss)
        elif isinstance(event, EvalResult):
            self.add_eval(event.step, event.train_loss, event.val_loss)
        elif isinstance(event, HparamsChanged):
            self.add_marker(event.step, ", ".join(event.changes), "hparams")
        elif isinstance(event, SpikeDetected):
            self.add_marker(event.step, "spike", "spike")

    def toggle_log_y(self) -> bool:
        self.log_y = not self.log_y
        self.refresh()
        return self.log_y

    def render_lines(self, crop):
        started = time.perf_counter()
        lines = super().render_lines(crop)
        self.render_seconds = time.perf_counter() - started
        return lines

    def render(self):
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if self.lr_curve is not None:
            self._draw_lr_curve(plt, *self.lr_curve)
            return super().render()
        plt.title("loss" + (" (log y)" if self.log_y else ""))
        plt.xlabel("step")
        plt.yscale("log" if self.log_y else "linear")
        width = max(10, self.size.width * 2)  # about two points per column
        drawn = False
        if self.fork_parent:  # first, so the fork's own curves draw over it
            xs, ys = self.fork_parent[1].view(width)
            plt.plot(xs, ys, color=PARENT_COLOR, marker="braille")
            drawn = True
        for attribute, _, color, marker in SERIES:
            xs, ys = getattr(self, attribute).view(width)
            if xs:
                plt.plot(xs, ys, color=color, marker=marker)
                drawn = True
        for (_, series), color in zip(self.compare, COMPARE_COLORS * 4):
            xs, ys = series.view(width)
            if xs:
                plt.plot(xs, ys, color=color, marker="braille")
                drawn = True
        if self.best:
            plt.scatter([self.best[0]], [self.best[1]], color="red", marker="x")
        if drawn:
            self._draw_markers(plt)
            if self.decay_start is not None and self.raw.xs and self.decay_start <= self.raw.xs[-1]:
                plt.vline(self.decay_start, color=DECAY[1])  # once reached: ahead, it would squeeze the curve
        else:
            plt.text("press F5 to start training", 0.5, 0.5, alignment="center")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
        return super().render()

    def _draw_lr_curve(self, plt, points: list[tuple[float, float]], suggestion: float | None) -> None:
        """The range test: smoothed loss against the learning rate, log x, the suggestion marked."""
        plt.title("loss against learning rate (log x)")
        plt.xlabel("learning rate")
        plt.xscale("log")
        if not points:
            plt.text("finding a learning rate…", 0.5, 0.5, alignment="center")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            return
        xs, ys = zip(*points)
        plt.plot(list(xs), list(ys), color=LR_CURVE[1], marker="braille")
        if suggestion is not None:
            plt.vline(suggestion, color=LR_SUGGESTION[1])
            plt.text(f"{suggestion:.2g}", suggestion, max(ys), color=LR_SUGGESTION[1])

    def _draw_markers(self, plt) -> None:
        """A vertical line at each live change or spike, labelled at the top (the keys changed).
        A label that would run into the one before it is left out; its line stays."""
        if not self.markers:
            return
        ys = [y for series in (self.raw, self.eval_val) for y in series.ys]
        top = max(ys) if ys else 1.0
        xs = [x for series in (self.raw, self.eval_val) for x in series.xs] + [m[0] for m in self.markers]
        low, span = min(xs), (max(xs) - min(xs)) or 1
        columns = max(1, self.size.width - AXIS_COLUMNS)
        free_from = -1.0  # the first column after the last label drawn
        for step, label, kind in self.markers:
            color = MARKER_KINDS[kind][1]
            plt.vline(step, color=color)
            column = (step - low) / span * columns
            if column >= free_from:
                plt.text(label[:24], step, top, color=color)
                free_from = column + len(label[:24]) + 1

    def legend(self) -> list[tuple[str, str, str]]:
        """(mark, name, plotext colour) of each thing drawn."""
        if self.lr_curve is not None:
            suggestion = self.lr_curve[1]
            return [("━", *LR_CURVE)] + ([("│", f"{LR_SUGGESTION[0]} {suggestion:.3g}", LR_SUGGESTION[1])]
                                          if suggestion is not None else [])
        items = [("•" if marker == "dot" else "━", label, color) for attribute, label, color, marker in SERIES
                 if len(getattr(self, attribute))]
        if self.fork_parent:
            items.insert(0, ("━", f"forked from {self.fork_parent[0]}", PARENT_COLOR))
        if self.best:
            items.append(("×", f"best {self.best[1]:.3f}", "red"))
        items += [("━", label, color) for (label, series), color in zip(self.compare, COMPARE_COLORS * 4)
                  if len(series)]
        if self.decay_start is not None:
            items.append(("┊", f"{DECAY[0]} {self.decay_start:,}", DECAY[1]))
        kinds = {kind for _, _, kind in self.markers}
        items += [("│", name, color) for kind, (name, color) in MARKER_KINDS.items() if kind in kinds]
        return items


class PlotLegend(Static):
    """The loss plot's legend under the plot: names in their curves' colours, wrapped between
    entries (never inside one)."""

    text = Text()  # what is shown
    items: list[tuple[str, str, str]] = []

    def show(self, items: list[tuple[str, str, str]]) -> None:
        self.items = items
        entries = [Text().append(f"{mark} ", style=RICH_COLORS[color]).append(label) for mark, label, color in items]
        lines = wrap_entries(entries, max(20, self._width()))
        legend = Text("\n").join(Text(" " * GAP).join(line) for line in lines)
        if legend.plain != self.text.plain:  # a new series or a new best: rare, so a layout pass is fine
            self.text = legend
            self.update(legend)
            self.display = bool(legend.plain)  # no empty row under an empty plot

    def _width(self) -> int:
        """The columns a line may use. Hidden (before the first series) the legend has no size of
        its own, so it wraps to what it will get: its container's width less its own gutter."""
        if self.display and self.content_size.width:
            return self.content_size.width
        return (self.parent.content_size.width if self.parent else 200) - self.styles.gutter.width

    def on_resize(self) -> None:
        self.show(self.items)  # wrapped anew for the new width
