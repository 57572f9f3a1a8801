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


class LogPanel(RichLog):
    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, max_lines=MAX_LINES, **kwargs)
        self.messages: deque[tuple[str, str]] = deque(maxlen=MAX_LINES)  # (level, text), unwrapped
        # Lines that came while the tab was hidden: written when it shows (see in_hidden_tab),
        # and then wrapped at the log's real width.
        self.unwritten: deque[Text] = deque(maxlen=MAX_LINES)

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
        if in_hidden_tab(self):
            self.unwritten.append(line)
        else:
            self.write(line)

    def on_show(self) -> None:
        while self.unwritten:
            self.write(self.unwritten.popleft())
