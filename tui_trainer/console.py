"""How `gpt-tui train` shows a run: a rich progress bar on a terminal, plain lines on a pipe."""
from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .engine.events import (CheckpointSaved, EvalResult, Event, LogMessage, RunFailed, RunFinished, RunStarted,
                            SampleText, StateChanged, StepMetrics)


def fmt_duration(seconds: float) -> str:
    return str(timedelta(seconds=int(seconds))) if math.isfinite(seconds) else "?"


def fmt_loss(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def fmt_count(n: float, unit: str = "") -> str:
    """Three significant digits and an SI suffix: 537K, 1.23M, 2.1GB."""
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}"
        n /= 1000
    return f"{n:.3g}P{unit}"


def fmt_date(timestamp: float | None) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M") if timestamp else "-"


def fmt_mfu(value: float | None) -> str:
    """Model FLOPs utilization; "unknown" for a device whose peak gpt-tui does not know."""
    return "unknown" if value is None else f"{100 * value:.1f}%"


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
        if isinstance(event, RunStarted):
            self._line(f"run {event.run_dir}: {event.num_params:,} parameters, vocab {event.vocab_size:,}, "
                       f"{event.train_tokens:,}/{event.val_tokens:,} train/valid tokens, {event.device} {event.dtype}")
            if self.interactive:
                self.progress = Progress(
                    TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[rate]} tok/s  "
                               "MFU {task.fields[mfu]}"),
                    TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"),
                    console=self.console, transient=False)
                self.progress.start()
                self.task = self.progress.add_task("train", total=event.max_iters, completed=event.start_step,
                                                   loss="-", val="-", rate="-", eta="?", mfu="-")
        elif isinstance(event, StepMetrics):
            if self.progress:
                self.progress.update(self.task, completed=event.step, loss=fmt_loss(event.loss),
                                     val=fmt_loss(self.val_loss), rate=f"{event.tokens_per_sec:,.0f}",
                                     eta=fmt_duration(event.eta), mfu=fmt_mfu(event.mfu))
            else:
                self._line(f"step {event.step} loss {event.loss:.4f} lr {event.lr:.2e} "
                           f"{event.tokens_per_sec:,.0f} tok/s MFU {fmt_mfu(event.mfu)} "
                           f"elapsed {fmt_duration(event.elapsed)} "
                           f"eta {fmt_duration(event.eta)}")
        elif isinstance(event, EvalResult):
            self.val_loss = event.val_loss
            self._line(f"eval step {event.step}: train {event.train_loss:.4f} val {event.val_loss:.4f} "
                       f"(best {event.best_val_loss:.4f})")
        elif isinstance(event, CheckpointSaved):
            if event.kind == "latest":
                self._line(f"saved {event.path} at step {event.step}")
        elif isinstance(event, SampleText):
            self._line(f"sample at step {event.step}: {event.text!r}")
        elif isinstance(event, StateChanged) and event.state == "compiling":
            self._line("compiling the model (the first step takes a while)")
        elif isinstance(event, LogMessage):
            self._line(f"{event.level}: {event.text}")
        elif isinstance(event, RunFinished):
            self.close()
            self._line(f"{event.status} at step {event.step}{': ' + event.reason if event.reason else ''}; "
                       f"best val loss {fmt_loss(event.best_val_loss)}; run directory {event.run_dir}")
        elif isinstance(event, RunFailed):
            self.close()
            print(f"gpt-tui: error: {event.message}", file=sys.stderr, flush=True)

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
