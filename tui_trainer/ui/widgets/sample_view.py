"""One sample at a time, its tokens coloured by how sure the model was, paged through the run.

Keyboard only: ←/→ select a token (its top 5 alternatives show below), ↑/↓ the sample of a
comparison, PgUp/PgDn older and newer samples, e entropy instead of probability, b token
boundaries, c compare checkpoints. A comparison (same prompt and seed from the current weights,
best.ckpt and kept checkpoints) is one page: side by side when each gets 40 columns, else stacked.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import ScrollableContainer
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ...engine.events import SampleText
from ...token_text import alternatives, legend, token_text
from .hidden import in_hidden_tab

MAX_PAGES = 200  # samples kept for paging back: a long run's periodic samples do not grow without end
SIDE_BY_SIDE_WIDTH = 40  # columns each compared sample needs to sit beside the others


class SampleView(Widget, can_focus=True):
    BINDINGS = [
        Binding("left", "select(-1)", "Prev token", tooltip="Previous token: select it to see its top 5",
                id="samples.prev-token"),
        Binding("right", "select(1)", "Next token", tooltip="Next token: select it to see its top 5",
                id="samples.next-token"),
        Binding("up", "row(-1)", "Prev sample", show=False, tooltip="Previous sample of a comparison",
                id="samples.prev-sample"),
        Binding("down", "row(1)", "Next sample", show=False, tooltip="Next sample of a comparison",
                id="samples.next-sample"),
        Binding("pageup", "page(-1)", "Older", tooltip="Older sample: page back through the run", id="samples.older"),
        Binding("pagedown", "page(1)", "Newer", tooltip="Newer sample", id="samples.newer"),
        Binding("e", "toggle_entropy", "Entropy", tooltip="Colour by entropy: or by probability again",
                id="samples.entropy"),
        Binding("b", "toggle_boundaries", "Tokens", tooltip="Token boundaries: show what the tokenizer did",
                id="samples.boundaries"),
        Binding("c", "compare", "Compare", tooltip="Compare: the same prompt and seed from the current weights, "
                "best.ckpt and the kept checkpoints", id="samples.compare"),
    ]

    @dataclass
    class CompareRequested(Message):
        """The user asked for a comparison (the panel adds its prompt and settings)."""

    by: reactive[str] = reactive("prob", layout=True)  # colour by "prob" or "entropy"
    boundaries: reactive[bool] = reactive(False, layout=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pages: list[list[SampleText]] = []  # one sample, or the samples of one comparison
        self.page = -1  # shown page; the newest while the user has not paged back
        self.row = 0  # the sample of a comparison whose tokens are selected
        self.selected: int | None = None  # token index in that sample

    # ---- content ---------------------------------------------------------------------------
    def add(self, event: SampleText) -> None:
        following = self.page == len(self.pages) - 1
        if event.compare and self.pages and self.pages[-1][0].compare == event.compare:
            self.pages[-1].append(event)
        else:
            self.pages.append([event])
            if len(self.pages) > MAX_PAGES:
                del self.pages[0]
                self.page -= 1
            if following:
                self._show(len(self.pages) - 1)
        if not in_hidden_tab(self):  # else on_show draws it
            self.refresh(layout=True)

    def on_show(self) -> None:
        self.refresh(layout=True)

    def _show(self, page: int) -> None:
        self.page, self.row, self.selected = page, 0, None

    @property
    def sample(self) -> SampleText | None:
        return self.pages[self.page][self.row] if self.pages else None

    # ---- actions ---------------------------------------------------------------------------
    def action_select(self, delta: int) -> None:
        sample = self.sample
        if sample is None or not sample.tokens:
            return
        if self.selected is None:
            self.selected = 0 if delta > 0 else len(sample.tokens) - 1
        else:
            self.selected = max(0, min(len(sample.tokens) - 1, self.selected + delta))
        self.refresh(layout=True)
        self._scroll_to_selected()

    def action_row(self, delta: int) -> None:
        if self.pages and len(self.pages[self.page]) > 1:
            self.row = max(0, min(len(self.pages[self.page]) - 1, self.row + delta))
            self.selected = None
            self.refresh(layout=True)
        elif isinstance(self.parent, ScrollableContainer):  # one sample: the arrows scroll a long one
            self.parent.scroll_relative(y=delta, animate=False)

    def action_page(self, delta: int) -> None:
        if self.pages:
            self._show(max(0, min(len(self.pages) - 1, self.page + delta)))
            self.refresh(layout=True)

    def action_toggle_entropy(self) -> None:
        self.by = "entropy" if self.by == "prob" else "prob"

    def action_toggle_boundaries(self) -> None:
        self.boundaries = not self.boundaries

    def action_compare(self) -> None:
        self.post_message(self.CompareRequested())

    # ---- drawing ---------------------------------------------------------------------------
    def _colours(self) -> tuple[str, ...]:
        """The theme's text colours (readable on its background in light and dark modes; the
        terminal's colour count is handled when drawing)."""
        v = self.app.theme_variables
        return v["text-success"], "", v["text-warning"], v["text-error"]

    def _sample_text(self, sample: SampleText, row: int) -> Text:
        selected = self.selected if row == self.row else None
        return token_text(sample.prompt, sample.tokens, self._colours(), self.by, self.boundaries, selected)

    def _scroll_to_selected(self) -> None:
        """Keep the selected token in view when the sample is taller than the tab: the lines
        down to it are rendered (its sample cut after it, at its column's width) and counted."""
        sample = self.sample
        if self.selected is None or sample is None or not isinstance(self.parent, ScrollableContainer):
            return
        page = self.pages[self.page]
        width = self.size.width
        cut = replace(sample, tokens=sample.tokens[:self.selected + 1])
        above: list[RenderableType] = [self._header(page)]
        if len(page) > 1 and width >= SIDE_BY_SIDE_WIDTH * len(page):
            width = max(1, (width - 2 * (len(page) - 1)) // len(page))  # the token's column
            above = [Text(" "), Text(" ")]  # the header and the titles' row
        elif len(page) > 1:
            for row, other in enumerate(page[:self.row]):
                above += [self._title(other), self._sample_text(other, row)]
            above.append(self._title(sample))
        console = self.app.console
        lines = console.render_lines(Group(*above, self._sample_text(cut, self.row)),
                                     console.options.update_width(max(1, width)), pad=False)
        self.parent.scroll_to_region(Region(0, len(lines) - 1, 1, 1), animate=False)

    def _header(self, page: list[SampleText]) -> Text:
        first = page[0]
        colour = "entropy" if self.by == "entropy" else "probability"
        return Text(f"sample {self.page + 1}/{len(self.pages)} · step {first.step}"
                    + (f" · seed {first.seed}" if first.seed is not None else "")
                    + f" · colour: {colour}", style="dim")

    @staticmethod
    def _title(sample: SampleText) -> Text:
        return Text(f"{sample.source or 'current weights'} · step {sample.step}", style="bold")

    def render(self) -> RenderableType:
        if not self.pages:
            return Text("No samples yet: F8 generates one from the current model, c compares it with the "
                        "run's checkpoints, and sample_interval adds one every N steps.", style="dim")
        page = self.pages[self.page]
        parts: list[RenderableType] = [self._header(page)]
        if len(page) == 1:
            parts.append(self._sample_text(page[0], 0))
        else:
            titles = [self._title(s) for s in page]
            bodies = [self._sample_text(s, row) for row, s in enumerate(page)]
            if self.size.width >= SIDE_BY_SIDE_WIDTH * len(page):
                table = Table.grid(padding=(0, 2), expand=True)
                for _ in page:
                    table.add_column(ratio=1)
                table.add_row(*titles)
                table.add_row(*bodies)
                parts.append(table)
            else:
                for title, body in zip(titles, bodies):
                    parts += [title, body]
        sample = self.sample
        if self.selected is not None and sample is not None and sample.tokens:
            parts.append(alternatives(sample.tokens[self.selected]))
        elif sample is not None and sample.tokens:
            parts.append(Text("←/→ selects a token and shows the model's top 5 there", style="dim"))
        if sample is not None and sample.tokens:
            parts.append(legend(self._colours(), self.by))
        return Group(*parts)
