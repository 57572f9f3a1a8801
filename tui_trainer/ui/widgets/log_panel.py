"""Run events, warnings and errors, each with the time it happened."""
from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.widgets import RichLog

from ...engine.events import Event, LogMessage, RolledBack, RunFailed, SampleText, SpikeDetected, StepMetrics
from ...engine.safe_text import visible
from ...event_text import event_line
from .hidden import in_hidden_tab

STYLES = {"info": "", "warning": "yellow", "error": "bold red"}
MAX_LINES = 2000
REWRAP_DELAY = 0.1  # seconds after the last resize before every line is wrapped again


class LogPanel(RichLog):
    def __init__(self, **kwargs) -> None:
        # min_width=1: RichLog's default of 78 wrapped lines wider than an 80-column terminal's
        # log pane, which then hid their middle.
        super().__init__(wrap=True, markup=False, max_lines=MAX_LINES, min_width=1, **kwargs)
        # (time, level, text), unwrapped: written again, wrapped to fit, when the width changes
        self.history: deque[tuple[str, str, str]] = deque(maxlen=MAX_LINES)
        # The newest lines of history not written yet: they came while the tab was hidden (see
        # in_hidden_tab), and are written when it shows, at the log's real width.
        self._unwritten = 0
        self._wrapped_at = 0  # the width the written lines were wrapped at
        self._rewrap = None  # the pending rewrap of a resize: a drag sends many, one is enough

    @property
    def messages(self) -> list[tuple[str, str]]:
        """(level, text) of each line kept, oldest first."""
        return [(level, text) for _, level, text in self.history]

    def add_event(self, event: Event) -> None:
        """The event's line; steps show in the progress line and the plot, samples in their tab."""
        line = None if isinstance(event, (StepMetrics, SampleText)) else event_line(event)
        if line is None:
            return
        if isinstance(event, RunFailed) and event.kind == "interrupted":
            line = f"{line}; or press F2 and resume it from the Runs screen"
        self.add(line, event.level if isinstance(event, LogMessage) else "error" if isinstance(event, RunFailed)
                 else "warning" if isinstance(event, (SpikeDetected, RolledBack)) else "info")

    def add(self, text: str, level: str = "info") -> None:
        text = visible(text)  # paths and messages come from users and files: never terminal codes
        self.history.append((time.strftime("%H:%M:%S "), level, text))
        if in_hidden_tab(self):
            self._unwritten = min(self._unwritten + 1, MAX_LINES)
        else:
            self._write(*self.history[-1])

    def on_show(self) -> None:
        self._catch_up()

    def on_resize(self) -> None:
        if self._rewrap is not None:
            self._rewrap.stop()
        self._rewrap = self.set_timer(REWRAP_DELAY, self._catch_up_shown)

    def _catch_up_shown(self) -> None:
        if not in_hidden_tab(self):
            self._catch_up()

    def _catch_up(self) -> None:
        """Write what came while hidden; at a new width, every line again, wrapped to fit it."""
        width = self.scrollable_content_region.width
        if width and width != self._wrapped_at:
            self._wrapped_at = width
            self.clear()
            self._unwritten = len(self.history)
        for entry in list(self.history)[len(self.history) - self._unwritten:]:
            self._write(*entry)
        self._unwritten = 0

    def _write(self, stamp: str, level: str, text: str) -> None:
        """At the pane's width: RichLog's own measure stops at the console's, which can be narrower."""
        line = Text(stamp, style="dim")
        line.append(text, style=STYLES.get(level, ""))
        self.write(line, width=self.scrollable_content_region.width or None)
