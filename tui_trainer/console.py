"""How `gpt-tui train` shows a run: a rich progress bar on a terminal, plain lines on a pipe."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .engine.events import EvalResult, Event, LogMessage, RunFailed, RunFinished, RunStarted, StepMetrics
from .event_text import event_line, grad_text
from .formats import fmt_duration, fmt_loss, fmt_mfu


class ConsoleReporter:
    """An event callback for the headless CLI. Call :meth:`close` when the run ends."""

    def __init__(self, interactive: bool | None = None):
        self.interactive = sys.stdout.isatty() if interactive is None else interactive
        self.console = Console(highlight=False)
        self.progress: Progress | None = None
        self.task = None
        self.val_loss: float | None = None

    def _line(self, text: str) -> None:
        if self.progress:
            self.progress.console.print(text, markup=False)  # paths and samples are data, not markup
        else:
            print(text, flush=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepMetrics) and self.progress:
            self.progress.update(self.task, completed=event.step, loss=fmt_loss(event.loss),
                                 val=fmt_loss(self.val_loss), rate=f"{event.tokens_per_sec:,.0f}",
                                 eta=fmt_duration(event.eta), mfu=fmt_mfu(event.mfu), grad=grad_text(event))
            return
        if isinstance(event, EvalResult):
            self.val_loss = event.val_loss
        elif isinstance(event, (RunFinished, RunFailed)):
            self.close()
        line = event_line(event)
        if isinstance(event, RunFailed):
            print(f"gpt-tui: error: {line}", file=sys.stderr, flush=True)
        elif line is not None:
            self._line(f"{event.level}: {line}" if isinstance(event, LogMessage) else line)
        if isinstance(event, RunStarted) and self.interactive:
            self._start_progress(event)

    def _start_progress(self, event: RunStarted) -> None:
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[grad]}  "
                       "{task.fields[rate]} tok/s  MFU {task.fields[mfu]}"),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
            console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=event.max_iters, completed=event.step,
                                           loss="-", val="-", rate="-", eta="?", mfu="-", grad="")

    @staticmethod
    def tokenizing(done: int, total: int) -> None:
        """Progress callback for first-time tokenization of a large corpus."""
        if total >= 8 << 20:
            print(f"\rtokenizing {done / 2**20:,.0f}/{total / 2**20:,.0f} MB", end="\n" if done >= total else "",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
            self.progress = None
