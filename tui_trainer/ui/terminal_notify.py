"""Desktop notifications through the terminal: the escape sequences terminals turn into system
notifications, OSC 9 (iTerm2, WezTerm, Windows Terminal, foot, kitty) and OSC 777 ``notify``
(rxvt-unicode, Konsole, VTE-based terminals: GNOME Terminal, Tilix). A terminal ignores the
one it does not know. They pass through SSH unchanged; under tmux each is wrapped for tmux's
passthrough, which needs ``set -g allow-passthrough on`` (tmux 3.3 and later)."""
from __future__ import annotations

import os

from ..engine.safe_text import visible


def notification_sequences(title: str, body: str, tmux: bool | None = None) -> str:
    """OSC 9 and OSC 777 for one notification; wrapped for tmux when under it (``$TMUX``)."""
    # No control character may end a sequence early, nor ";" split 777's fields.
    title, body = (visible(text).replace(";", ",") for text in (title, body))
    sequences = [f"\x1b]9;{title}: {body}\x07", f"\x1b]777;notify;{title};{body}\x07"]
    if os.environ.get("TMUX") if tmux is None else tmux:
        sequences = [f"\x1bPtmux;{seq.replace(chr(27), chr(27) * 2)}\x1b\\" for seq in sequences]
    return "".join(sequences)
