"""Generated tokens as coloured text, the same way in the Samples tab and in `gpt-tui sample
--show-probs`: each token coloured by how sure the model was of it (its probability, or the
entropy of the distribution it came from), in four levels that each front end maps to colours
readable on its background."""
from __future__ import annotations

from typing import Any, Sequence

from rich.text import Text

PROB_EDGES = (0.8, 0.4, 0.1)  # level 0: p >= 0.8 (sure) ... level 3: p < 0.1 (surprising)
ENTROPY_EDGES = (0.5, 1.5, 3.0)  # nats; level 0: < 0.5 (one clear choice) ... level 3: >= 3.0
LEGENDS = {"prob": ("p ≥ 0.8", "p 0.4-0.8", "p 0.1-0.4", "p < 0.1"),
           "entropy": ("H < 0.5", "H 0.5-1.5", "H 1.5-3", "H ≥ 3 nats")}
# On a terminal whose colours we do not know, the four standard ANSI ones (each terminal theme
# makes them readable on its own background); the app uses its theme's text colours instead.
TERMINAL_COLOURS = ("green", "default", "yellow", "red")


def level(token: dict[str, Any], by: str = "prob") -> int:
    """0 (the model was sure) to 3 (it was not)."""
    if by == "entropy":
        return sum(token["entropy"] >= edge for edge in ENTROPY_EDGES)
    return sum(token["prob"] < edge for edge in PROB_EDGES)


def token_text(prompt: str, tokens: Sequence[dict[str, Any]], colours: Sequence[str], by: str = "prob",
               boundaries: bool = False, selected: int | None = None) -> Text:
    """The prompt (plain) and the tokens coloured by level. With ``boundaries`` each token shows
    alone, between dim bars, newlines as ↵, and bytes of a split character as ‹e4 b8›;
    otherwise the text reads as decoded. The ``selected`` token is shown reversed."""
    text = Text()
    text.append(prompt, style="bold")
    for i, token in enumerate(tokens):
        shown = token["text"].replace("\n", "↵\n") if boundaries else token["piece"]
        if i == selected and not shown:
            shown = token["text"]  # a token that only starts a character: select its bytes
        style = colours[level(token, by)]
        if i == selected:
            style += " reverse"
        if boundaries:
            text.append("|", style="dim")
        text.append(shown, style=style)
    return text


def legend(colours: Sequence[str], by: str = "prob") -> Text:
    return Text.assemble("colours: ", *((f"{name}  ", colour) for name, colour in zip(LEGENDS[by], colours)))


def alternatives(token: dict[str, Any]) -> Text:
    """The selected token and its top-5 alternatives with their probabilities, on one line."""
    line = Text.assemble(("token ", "dim"), (repr(token["text"]), "bold"),
                         f"  p={token['prob']:.3f}  H={token['entropy']:.2f} nats   top 5: ")
    for alt in token["top"]:
        chosen = alt["id"] == token["id"] and alt["text"] == token["text"]
        line.append(f"{alt['text']!r} {alt['prob']:.3f}", style="bold underline" if chosen else "")
        line.append("  ")
    return line
