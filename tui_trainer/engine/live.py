"""Hyperparameters that may change while a run trains, and the check every front end shares.

A live key keeps the weights' shapes and the data: it takes effect at the next step boundary.
Every other key is fixed for the run; forking it (``gpt-tui train --fork``) changes any key
that still loads the weights.
"""
from __future__ import annotations

from typing import Any

from .config import FIELDS, TrainConfig, config_from_dict, find_problems
from .errors import ConfigError

LIVE_KEYS = ("learning_rate", "muon_lr", "lr_schedule", "warmup_iters", "min_lr", "decay_fraction", "weight_decay", "grad_clip", "dropout",
             "batch_size", "grad_accum_steps", "max_iters", "eval_interval", "eval_iters", "log_interval",
             "checkpoint_interval", "sample_interval", "sample_prompt", "sample_tokens", "spike_action", "spike_factor",
             "target_val_loss", "target_val_bpb",
             "health", "notify")
FORK_HINT = "fork the run to change it (gpt-tui train --fork RUN_DIR --set KEY=VALUE)"


def locked_problem(key: str) -> str:
    return f"{key} cannot change while the run trains: {FORK_HINT.replace('KEY', key)}"


def below_step(values: dict[str, Any], step: int) -> str | None:
    """The problem of a max_iters below the step a run has reached, if ``values`` has one."""
    value = values.get("max_iters")
    if isinstance(value, int) and value < step:
        return f"max_iters = {value}: the run is at step {step} already"
    return None


def check_live_change(config: TrainConfig, changes: dict[str, Any], step: int) -> dict[str, list]:
    """The keys that ``changes`` really changes, as {key: [old, new]}, or a ConfigError naming
    every unknown key, locked key and bad value (checked with the run's other values)."""
    problems = {key: locked_problem(key) for key in changes if key in FIELDS and key not in LIVE_KEYS}
    merged = {**config.to_dict(), **{k: v for k, v in changes.items() if k not in problems}}
    problems.update({k: v for k, v in find_problems(merged).items() if k not in problems})
    if "max_iters" not in problems and below_step(changes, step):
        problems["max_iters"] = below_step(changes, step)
    if problems:
        raise ConfigError(list(problems.values()))
    current, new = config.to_dict(), config_from_dict(merged).to_dict()  # typed: 1 becomes 1.0 for a float key
    return {key: [current[key], new[key]] for key in changes if new[key] != current[key]}
