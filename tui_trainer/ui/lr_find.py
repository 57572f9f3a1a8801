"""F3 on the dashboard: the learning-rate range test (engine/lr_finder.py) on the form's values,
drawn where the loss plot is. Its suggestion goes into the form's learning_rate only when the
user applies it; nothing else changes (no run, no file, not the random streams)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message
from textual.widgets import Input
from textual.worker import get_current_worker

from ..engine.config import TrainConfig
from ..engine.lr_finder import RULE, LrFinding
from .screens import ChoiceScreen
from .tokenize_progress import tokenize_progress

if TYPE_CHECKING:
    from .dashboard import DashboardScreen

POST_EVERY = 5  # points between redraws while the test runs


@dataclass
class LrPoints(Message):
    """The range test's curve so far; ``finding`` once it has ended."""

    points: list[tuple[float, float]]
    finding: LrFinding | None = None


class LrFind:
    def __init__(self, dashboard: DashboardScreen) -> None:
        self.dashboard = dashboard
        self.running = False

    def start(self, config: TrainConfig) -> None:
        board = self.dashboard
        self.running = True
        board.plot.set_lr_curve([], None)
        board.log_line("finding a learning rate: a range test on a fresh model of the form's values (F3 again stops it)")
        board.run_worker(lambda: self._find(config), thread=True, exclusive=True, group="lr-find", exit_on_error=False)
        board.refresh_keys()

    def stop(self) -> None:
        self.dashboard.workers.cancel_group(self.dashboard, "lr-find")

    def _find(self, config: TrainConfig) -> None:
        from ..engine.lr_finder import find_lr

        worker, points = get_current_worker(), []

        def on_point(lr: float, loss: float) -> None:
            points.append((lr, loss))
            if len(points) % POST_EVERY == 0:
                self.dashboard.post_message(LrPoints(list(points)))
        finding = find_lr(config, on_point=on_point, progress=tokenize_progress(self.dashboard),
                          cancelled=lambda: worker.is_cancelled)
        self.dashboard.post_message(LrPoints(finding.points, finding))

    def show(self, message: LrPoints) -> None:
        board = self.dashboard
        board.plot.set_lr_curve(message.points, message.finding.suggestion if message.finding else None)
        board.redraw_soon()
        if message.finding is None:
            return
        self.ended()
        finding = message.finding
        board.log_line(f"learning rate range test: {len(finding.points)} rates tried; {finding.stopped}")
        if finding.suggestion is None:
            board.app.notify("no suggestion: the loss did not fall over enough steps", severity="warning",
                             title="LR find")
            return
        suggestion = float(f"{finding.suggestion:.3g}")
        board.log_line(f"suggested learning_rate {suggestion:g} ({RULE})")

        def chosen(answer: str | None) -> None:
            if answer == "apply":
                board.form.query_one("#f-learning_rate", Input).value = repr(suggestion)
                board.log_line(f"learning_rate {suggestion:g} is in the form: F5 trains with it")
        board.app.push_screen(ChoiceScreen(f"Suggested learning_rate: {suggestion:g} (the log says why). Put it "
                                           "into the form?", [("apply", "a", "Apply")]), chosen)

    def ended(self) -> None:
        """The test ended (its result shown, or its worker failed or was stopped)."""
        self.running = False
        self.dashboard.refresh_keys()
