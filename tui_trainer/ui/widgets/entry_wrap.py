"""Lines of short entries (figures, legend items) two spaces apart, never broken inside one:
Rich wraps at any space, which would part a label from its value or a mark from its name."""
from __future__ import annotations

from typing import Sized, TypeVar

Entry = TypeVar("Entry", bound=Sized)
GAP = 2  # spaces between entries on a line


def wrap_entries(entries: list[Entry], width: int) -> list[list[Entry]]:
    """Greedy lines of at most ``width`` columns (an entry wider than that gets a line of its own)."""
    lines: list[list[Entry]] = []
    used = 0
    for entry in entries:
        if lines and used + GAP + len(entry) <= width:
            lines[-1].append(entry)
            used += GAP + len(entry)
        else:
            lines.append([entry])
            used = len(entry)
    return lines
