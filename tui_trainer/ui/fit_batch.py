"""F4 on the dashboard: the micro-batch finder (engine/batch_finder.py) on the form's values.
Applied, it puts the batch found into batch_size, and keeps the tokens of an optimizer step the
form has now by setting grad_accum_steps to match."""
from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message
from textual.widgets import Input

from ..engine.batch_finder import BatchFit, describe_trial
from ..engine.config import TrainConfig
from .finder import FormFinder
from .tokenize_progress import tokenize_progress


@dataclass
class BatchFound(Message):
    token: int
    fit: BatchFit
    tokens: int  # per optimizer step, as the form had them when the search began
    found_tokens: int  # per optimizer step with the batch found: the same, but where no micro-batch divides them


class FitBatch(FormFinder):
    group, what = "fit-batch", "batch-size finder"

    def begin(self) -> None:
        self.dashboard.log_line("finding the batch size: timing (CPU) or filling (GPU) a fresh model of the form's "
                                "values (F4 again stops it)")

    def work(self, config: TrainConfig, token: int, stopped) -> None:
        from ..engine.batch_finder import fit_batch

        tokens = config.batch_size * config.grad_accum_steps * config.context_length  # the form's, kept
        fit = fit_batch(config, tokens, tokenize_progress(self.dashboard), cancelled=stopped)
        if fit is not None:
            found = fit.batch_size * fit.grad_accum_steps * config.context_length
            self.dashboard.post_message(BatchFound(token, fit, tokens, found))

    def show(self, message: BatchFound) -> None:
        board, fit = self.dashboard, message.fit
        if not self.is_current(message.token) or self.stopped:
            return
        for trial in fit.tried:
            board.log_line(describe_trial(trial))
        board.log_line(f"batch_size {fit.batch_size} on {fit.device}: {fit.rule}")
        tokens = message.tokens

        def apply() -> None:
            board.form.query_one("#f-batch_size", Input).value = str(fit.batch_size)
            board.form.query_one("#f-grad_accum_steps", Input).value = str(fit.grad_accum_steps)
            board.log_line(f"batch_size {fit.batch_size}, grad_accum_steps {fit.grad_accum_steps} are in the form")
        kept = "as the form has now" if message.found_tokens == tokens else f"the form has {tokens:,}"
        self.offer(f"batch_size {fit.batch_size} with grad_accum_steps {fit.grad_accum_steps} ({message.found_tokens:,} "
                   f"tokens per optimizer step, {kept}) on {fit.device}. Put them into the form?", apply)

