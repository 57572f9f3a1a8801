"""The line each engine event reads as: one wording for the app's Log tab and the CLI."""
from __future__ import annotations

from .engine.events import (ChangeRefused, CheckpointSaved, Detached, EvalResult, Event, HparamsChanged, LogMessage, RolledBack,
                            RunFailed, RunFinished, RunStarted, SampleText, SpikeDetected, StateChanged, StepMetrics,
                            TargetReached)
from .engine.safe_text import visible
from .formats import fmt_duration, fmt_loss, fmt_mfu, fmt_norm, fmt_value


def grad_text(event: StepMetrics) -> str:
    """The gradient norm as the progress lines show it: "grad 0.52", "(clipped 3)" when it was."""
    clipped = f" (clipped {event.clipped})" if event.clipped else ""
    return f"grad {fmt_norm(event.grad_norm)}{clipped}" if event.grad_norm is not None else ""


def event_line(event: Event) -> str | None:
    """The event as one line of text (data, never markup, its control characters shown as
    ‹1b›: paths, prompts and messages come from users and files), or None for an event with
    nothing to say (a best.ckpt save, a state other than compiling)."""
    line = _line(event)
    return None if line is None else visible(line)


def _line(event: Event) -> str | None:
    if isinstance(event, StepMetrics):
        grad = f" {grad_text(event)}" if event.grad_norm is not None else ""
        return (f"step {event.step} loss {event.loss:.4f} lr {event.lr:.2e}{grad} {event.tokens_per_sec:,.0f} tok/s "
                f"MFU {fmt_mfu(event.mfu)} elapsed {fmt_duration(event.elapsed)} eta {fmt_duration(event.eta)}")
    if isinstance(event, EvalResult):
        bpb = f", {event.val_bpb:.4f} bits per byte" if event.val_bpb is not None else ""
        return (f"eval step {event.step}: train {event.train_loss:.4f} val {event.val_loss:.4f}{bpb} "
                f"(best {event.best_val_loss:.4f})")
    if isinstance(event, RunStarted):
        processes = f", {event.processes} processes" if event.processes > 1 else ""
        resumed = f", from step {event.step:,}" if event.step else ""
        forked = f", forked from {event.parent}" if event.parent else ""
        return (f"run {event.run_dir}: {event.num_params:,} parameters, vocab {event.vocab_size:,}, "
                f"{event.train_tokens:,}/{event.val_tokens:,} train/valid tokens, {event.device} {event.dtype}"
                f"{processes}{resumed}{forked}")
    if isinstance(event, CheckpointSaved):
        return f"saved {event.path} at step {event.step}" if event.kind == "latest" else None
    if isinstance(event, SampleText):
        return f"sample at step {event.step}: {event.text!r}"
    if isinstance(event, StateChanged):
        return "compiling the model: the first step takes a while" if event.state == "compiling" else None
    if isinstance(event, HparamsChanged):
        changes = ", ".join(f"{key} {fmt_value(old)} → {fmt_value(new)}" for key, (old, new) in event.changes.items())
        by = "by the rollback" if event.source == "rollback" else f"set in the {event.source}"
        return f"from step {event.step}: {changes or 'nothing to change, the values were in force'} ({by})"
    if isinstance(event, ChangeRefused):
        return f"change from the {event.source or 'run'} not applied at step {event.step}: {event.reason}"
    if isinstance(event, TargetReached):
        what = "val loss" if event.metric == "val_loss" else "val bits per byte"
        return (f"target {what} {event.target:g} reached at step {event.step:,}: {event.value:.4f}, after "
                f"{fmt_duration(event.elapsed)} of training")
    if isinstance(event, SpikeDetected):
        then = {"warn": "training goes on", "rollback": "rolling back"}.get(event.action, "")
        return f"loss spike at step {event.step}: {event.reason}; {then}"
    if isinstance(event, RolledBack):
        return (f"rolled back from step {event.step} to step {event.to_step}: the batches in between skipped, "
                f"{event.how} (lr {event.lr_before:.2e} → {event.lr_after:.2e})")
    if isinstance(event, Detached):
        return (f"detached at step {event.step}: process {event.pid} trains on without the app; "
                "steer it with gpt-tui watch or gpt-tui set")
    if isinstance(event, LogMessage):
        return event.text
    if isinstance(event, RunFinished):
        reason = f": {event.reason}" if event.reason else ""
        return (f"{event.status} at step {event.step}{reason}; best val loss {fmt_loss(event.best_val_loss)}; "
                f"run directory {event.run_dir}")
    if isinstance(event, RunFailed):
        return event.message
    return None
