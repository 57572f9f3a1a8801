"""Optional Weights & Biases logging, as in the chapter: the trainer's events forwarded to a W&B run.

W&B is never required: without the package, or when it cannot start (no login, no network),
the trainer says so once and trains on.
"""
from __future__ import annotations

import secrets

from .config import TrainConfig
from .events import EvalResult, Event, RunFailed, RunFinished, StepMetrics
from .rundir import RunDir

INSTALL_HINT = "pip install 'gpt-tui[wandb]' (or pip install wandb)"


def health_figures(event: StepMetrics) -> dict[str, float]:
    """The step's gradient figures as W&B keys ("health/block 0/grad_norm"); nulls left out."""
    figures = {"health/grad_norm": event.grad_norm, "health/clipped": event.clipped,
               "health/embedding_norm": event.health.get("embedding_norm"),
               "health/head_norm": event.health.get("head_norm")}
    for group in event.health.get("groups", []):
        for key in ("grad_norm", "update_ratio"):
            figures[f"health/{group['name']}/{key}"] = group.get(key)
    return {key: value for key, value in figures.items() if value is not None}


class WandbLogger:
    """An event callback that logs losses, lr, tokens/s and the health figures against the step."""

    def __init__(self, run) -> None:
        self.run = run

    def __call__(self, event: Event) -> None:
        if isinstance(event, StepMetrics):
            self.run.log({"train/loss": event.loss, "lr": event.lr, "tokens_per_sec": event.tokens_per_sec,
                          **health_figures(event)}, step=event.step)
        elif isinstance(event, EvalResult):
            self.run.log({"eval/train_loss": event.train_loss, "eval/val_loss": event.val_loss,
                          "eval/best_val_loss": event.best_val_loss,
                          **({"eval/val_bpb": event.val_bpb} if event.val_bpb is not None else {})}, step=event.step)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.run.finish(exit_code=0 if isinstance(event, RunFinished) else 1)


def open_wandb(config: TrainConfig, rundir: RunDir) -> tuple[WandbLogger | None, str | None]:
    """(logger, None), or (None, why not) for the trainer to show as a warning."""
    try:
        import wandb
    except ImportError:
        return None, f"wandb = true, but the wandb package is not installed: {INSTALL_HINT}. Training goes on without W&B."
    # The W&B run id lives in run.json, so a resumed run goes on in the same W&B run.
    run_id = rundir.status.get("wandb_id") or f"{rundir.path.name}-{secrets.token_hex(3)}"
    try:
        run = wandb.init(project=config.wandb_project, name=rundir.path.name, id=run_id, resume="allow",
                         config=config.to_dict(), dir=str(rundir.path))
    except Exception as exc:  # W&B is optional; the run is not
        return None, (f"W&B could not start ({type(exc).__name__}: {exc}); training goes on without it. "
                      "Run `wandb login`, or set WANDB_MODE=offline to log locally.")
    rundir.update_status(wandb_id=run_id)
    return WandbLogger(run), None
