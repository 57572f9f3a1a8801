"""Whether a widget sits in a hidden tab, asked without Textual's compositor.

Refreshing a widget that is not on screen makes Textual rebuild its map of every widget at
the next size or region query (about 7 ms here, on the UI thread that the training thread
needs the GIL from), and ``Widget.is_on_screen`` is such a query. A hidden tab pane has
``display`` off, so the ancestors say it for the cost of a short walk.
"""
from __future__ import annotations

from textual.widget import Widget


def in_hidden_tab(widget: Widget) -> bool:
    return not all(node.display for node in widget.ancestors_with_self)
