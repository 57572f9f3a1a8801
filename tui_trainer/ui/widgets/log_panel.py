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
        self.messages: deque[tuple[str, str]] = deque(maxlen=MAX_LINES)  # (level, text), unwrapped
        self.history: deque[Text] = deque(maxlen=MAX_LINES)  # with their times, to wrap again at a new width
        # Lines that came while the tab was hidden: written when it shows (see in_hidden_tab),
        # and then wrapped at the log's real width.
        self.unwritten: deque[Text] = deque(maxlen=MAX_LINES)
        self._wrapped_at = 0  # the width the written lines were wrapped at
        self._rewrap = None  # the pending rewrap of a resize: a drag sends many, one is enough

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
        self.messages.append((level, text))
        line = Text(time.strftime("%H:%M:%S "), style="dim")
        line.append(text, style=STYLES.get(level, ""))
        self.history.append(line)
        if in_hidden_tab(self):
            self.unwritten.append(line)
        else:
            self._write(line)

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
            self.unwritten.clear()
            self.clear()
            for line in self.history:
                self._write(line)
        while self.unwritten:
            self._write(self.unwritten.popleft())

    def _write(self, line: Text) -> None:
        """At the pane's width: RichLog's own measure stops at the console's, which can be narrower."""
        self.write(line, width=self.scrollable_content_region.width or None)
