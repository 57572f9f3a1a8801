"""F3 on the dashboard: the learning-rate range test (engine/lr_finder.py) on the form's values,
drawn where the loss plot is; its suggestion goes into the form's learning_rate when applied."""
from __future__ import annotations

from dataclasses import dataclass
from textual.message import Message
from textual.widgets import Input

from ..engine.config import TrainConfig
from ..engine.lr_finder import RULE, LrFinding
from .finder import FormFinder
from .tokenize_progress import tokenize_progress

POST_EVERY = 5  # points between redraws while the test runs


@dataclass
class LrPoints(Message):
    """The range test's curve so far; ``finding`` once it has ended."""

    token: int
    points: list[tuple[float, float]]
    finding: LrFinding | None = None


class LrFind(FormFinder):
    group, what = "lr-find", "learning-rate finder"

    def begin(self) -> None:
        self.dashboard.plot.set_lr_curve([], None)
        self.dashboard.log_line("finding a learning rate: a range test on a fresh model of the form's values "
                                "(F3 again stops it)")

    def work(self, config: TrainConfig, token: int, stopped) -> None:
        from ..engine.lr_finder import find_lr

        points = []

        def on_point(lr: float, loss: float) -> None:
            points.append((lr, loss))
            if len(points) % POST_EVERY == 0:
                self.dashboard.post_message(LrPoints(token, list(points)))
        finding = find_lr(config, on_point=on_point, progress=tokenize_progress(self.dashboard),
                          cancelled=stopped)
        self.dashboard.post_message(LrPoints(token, finding.points, finding))

    def show(self, message: LrPoints) -> None:
        board = self.dashboard
        if not self.is_current(message.token):
            return
        board.plot.set_lr_curve(message.points, message.finding.suggestion if message.finding else None)
        board.redraw_soon()
        if message.finding is None:
            return
        finding = message.finding
        board.log_line(f"learning rate range test: {len(finding.points)} rates tried; {finding.stopped}")
        if self.stopped:
            return
        if finding.suggestion is None:
            board.app.notify("no suggestion: the loss did not fall over enough steps", severity="warning",
                             title="LR find")
            return
        suggestion = float(f"{finding.suggestion:.3g}")
        board.log_line(f"suggested learning_rate {suggestion:g} ({RULE})")

        def apply() -> None:
            board.form.query_one("#f-learning_rate", Input).value = repr(suggestion)
            board.log_line(f"learning_rate {suggestion:g} is in the form: F5 trains with it")
        self.offer(f"Suggested learning_rate: {suggestion:g} (the log says why). Put it into the form?", apply)
