"""What a failed run tells its user: the kind of failure and one line that says what to do."""
from __future__ import annotations

from pathlib import Path

import torch

from .config import TrainConfig
from .errors import GptTuiError, NonFiniteLoss


def describe_failure(exc: Exception, step: int, device: torch.device, config: TrainConfig,
                     run_dir: Path) -> tuple[str, str]:
    """(kind, message): "nonfinite", "oom" and "input" name the fix; "error" is a bug or a
    library's error, whose traceback goes to RUN_DIR/error.log."""
    if isinstance(exc, NonFiniteLoss):
        return "nonfinite", str(exc)
    if isinstance(exc, torch.OutOfMemoryError):
        return "oom", (f"out of memory on {device} at step {step}: lower batch_size (now {config.batch_size}) or "
                       f"context_length (now {config.context_length})")
    if isinstance(exc, GptTuiError):
        return "input", str(exc)
    return "error", f"{type(exc).__name__}: {exc} (details in {run_dir / 'error.log'})"
