"""Text from a user, a file or a model shown safely: control characters (but newline and tab)
would move a terminal's cursor, change its colours or its title when printed, so they are shown
as ‹1b› instead, on the CLI and in the app alike."""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with its control characters (but newline and tab) shown as ‹1b›: safe to print."""
    return _CONTROL.sub(lambda match: f"‹{ord(match.group()):02x}›", text)
