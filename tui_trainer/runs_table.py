"""The table of runs, for the Runs screen and `gpt-tui runs` alike."""
from __future__ import annotations

from .engine.runs import RunSummary
from .engine.safe_text import visible
from .formats import fmt_count, fmt_date, fmt_duration, fmt_loss

COLUMNS = ("run", "started", "status", "steps", "best val", "bpb", "params", "device", "parent")


def run_cells(run: RunSummary) -> tuple[str, ...]:
    """The cells after the "run" column, which each front end fills (a name, or a path to paste)."""
    steps = "-" if run.sweep else f"{run.last_step:,}" + (f"/{run.max_iters:,}" if run.max_iters else "")
    bpb = f"{run.best_val_bpb:.3f}" if run.best_val_bpb is not None else "-"
    status = run.status
    if run.target:  # how soon it got there
        status += f": target at {run.target['step']:,} in {fmt_duration(run.target['elapsed'])}"
    return tuple(map(visible, (fmt_date(run.started), status, steps, fmt_loss(run.best_val_loss), bpb,
                               fmt_count(run.num_params) if run.num_params else "-", str(run.device),
                               run.parent or "-")))
