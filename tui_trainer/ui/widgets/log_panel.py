"""Run events, warnings and errors, each with the time it happened."""
from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.widgets import RichLog

STYLES = {"info": "", "warning": "yellow", "error": "bold red"}
MAX_LINES = 2000


class LogPanel(RichLog):
    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, max_lines=MAX_LINES, **kwargs)
        self.messages: deque[tuple[str, str]] = deque(maxlen=MAX_LINES)  # (level, text), unwrapped

    def add(self, text: str, level: str = "info") -> None:
        self.messages.append((level, text))
        line = Text(time.strftime("%H:%M:%S "), style="dim")
        line.append(text, style=STYLES.get(level, ""))
        self.write(line)
