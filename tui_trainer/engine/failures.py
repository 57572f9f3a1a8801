"""What a failed run tells its user: the kind of failure and one line that says what happened
to the update and the checkpoint, and what to do."""
from __future__ import annotations

from pathlib import Path

import torch

from .config import TrainConfig
from .errors import GptTuiError, NonFiniteLoss

# What the CPU allocator (c10's DefaultCPUAllocator) and others say when an allocation fails:
# on a CPU torch raises a plain RuntimeError, not torch.OutOfMemoryError.
_OOM_WORDS = ("can't allocate memory", "not enough memory", "out of memory", "cannot allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """An allocation that failed, on any device."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(words in str(exc).lower() for words in _OOM_WORDS)


def describe_failure(exc: Exception, step: int, device: torch.device, config: TrainConfig, run_dir: Path,
                     checkpoint: str) -> tuple[str, str]:
    """(kind, message): "nonfinite", "oom" and "input" name the fix; "error" is a bug or a
    library's error, whose traceback goes to RUN_DIR/error.log. ``checkpoint`` says what is on
    disk now ("model.ckpt saved at step 40", "model.ckpt keeps step 20")."""
    if isinstance(exc, NonFiniteLoss):
        update = "that update was skipped, " if exc.where == "step" else ""
        return "nonfinite", (f"{exc}: the run stopped; {update}the weights in memory may be broken by the updates "
                             f"before, so they are not saved ({checkpoint}); lower learning_rate or set grad_clip, "
                             "then resume, or set spike_action = \"rollback\"")
    if is_out_of_memory(exc):
        return "oom", (f"out of memory on {device} at step {step}; {checkpoint}: lower batch_size (now "
                       f"{config.batch_size}) or context_length (now {config.context_length}), or eval_iters and "
                       "sample_tokens if it failed in an eval or a sample, then resume")
    if isinstance(exc, GptTuiError):
        return "input", str(exc)
    return "error", f"{type(exc).__name__}: {exc} ({checkpoint}; details in {run_dir / 'error.log'})"
