"""What a sweep buys, on the bundled corpus, in one run: the config as it is, random search
without pruning, and TPE + ASHA, each at the same steps per trial; then the learning-rate
finder's suggestion against a 5-point grid, and how long each finder takes.

    python benchmarks/bench_sweep.py [--config configs/default.toml] [--steps 200] [--trials 10]

Every search runs through `gpt-tui sweep` itself (one worker), with a fixed sampler seed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import time
from pathlib import Path

from tui_trainer.cli import main
from tui_trainer.engine.config import load_config, to_toml, with_overrides
from tui_trainer.engine.follow import read_status
from tui_trainer.engine.sweep_study import read_record

REPO = Path(__file__).resolve().parent.parent
GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def quietly(argv: list[str]) -> tuple[int, str, float]:
    """Run a gpt-tui command in this process: (exit code, what it printed, seconds)."""
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return code, out.getvalue(), time.perf_counter() - started


def train(config_path: Path, out: Path, **changes) -> tuple[float, int, float]:
    """One run: (best val loss, steps, seconds)."""
    args = ["train", "--config", str(config_path), "--out", str(out)]
    args += [f"--set={key}={value}" for key, value in changes.items()]
    code, _, seconds = quietly(args)
    assert code == 0, f"train {changes} failed"
    status = read_status(out)
    return float(status["best_val_loss"]), int(status["last_step"]), seconds


def sweep(base: Path, out: Path, trials: int, steps: int, sampler: str, pruner: str) -> tuple[float, int, float]:
    """One sweep: (best val loss, trial-steps spent, seconds)."""
    spec = out.with_suffix(".toml")
    spec.write_text(f'base = "{base}"\ntrials = {trials}\nsampler = "{sampler}"\npruner = "{pruner}"\nseed = 0\n'
                    "[search]\nlearning_rate = { log_uniform = [1e-4, 1e-2] }\n"
                    "dropout = { uniform = [0.0, 0.2] }\n"
                    f"warmup_iters = {{ int = [0, {steps // 4}] }}\n", encoding="utf-8")
    code, _, seconds = quietly(["sweep", str(spec), "--out", str(out)])
    assert code == 0, f"sweep {sampler} + {pruner} failed"
    record = read_record(out)
    spent = sum(int(t["steps"]) for t in record["trials"])
    return float(record["best"]["best_val_loss"]), spent, seconds


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "default.toml"))
    parser.add_argument("--steps", type=int, default=200, help="steps per trial (and per run)")
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    # the config at this length, with nothing but training and evals (no samples, no periodic saves)
    config = with_overrides(load_config(args.config), {"max_iters": args.steps, "sample_interval": 0,
                                                       "checkpoint_interval": 0, "out_dir": str(work)})
    base = work / "base.toml"
    base.write_text(to_toml(config), encoding="utf-8")
    rows = [("the config as it is", *train(base, work / "default"))]
    rows.append(("random search, no pruning", *sweep(base, work / "random", args.trials, args.steps, "random",
                                                     "none")))
    rows.append(("TPE + ASHA", *sweep(base, work / "tpe", args.trials, args.steps, "tpe", "asha")))
    print(f"\n{args.trials} trials of {args.steps} steps at {Path(args.config).name}, bundled corpus\n")
    print("| search | best val loss | trial-steps | wall time |\n|---|---:|---:|---:|")
    for name, loss, steps, seconds in rows:
        print(f"| {name} | {loss:.4f} | {steps:,} | {seconds:.0f} s |")
    (_, default, _, _), (_, random_loss, random_steps, _), (_, tpe_loss, tpe_steps, _) = rows
    print(f"\nTPE + ASHA beats the config: {tpe_loss:.4f} < {default:.4f}: {tpe_loss < default}")
    print(f"TPE + ASHA no worse than random without pruning: {tpe_loss:.4f} <= {random_loss:.4f}: "
          f"{tpe_loss <= random_loss}")
    saved = 1 - tpe_steps / random_steps
    print(f"pruning saved {saved:.0%} of the trial-steps (goal: at least 40%): {saved >= 0.4}")

    code, printed, finder_seconds = quietly(["lr-find", "--config", str(base), "--json"])
    assert code == 0
    suggestion = json.loads(printed)["suggestion"]
    code, _, batch_seconds = quietly(["fit-batch", "--config", str(base), "--json"])
    assert code == 0
    found, _, _ = train(base, work / "suggested", learning_rate=suggestion)
    grid = {lr: train(base, work / f"grid-{lr:g}", learning_rate=lr)[0] for lr in GRID}
    best_lr = min(grid, key=grid.get)
    print("\n| learning rate | best val loss |\n|---|---:|")
    for lr, loss in grid.items():
        print(f"| {lr:g} (grid) | {loss:.4f} |")
    print(f"| {suggestion:.3g} (lr finder) | {found:.4f} |")
    within = found / grid[best_lr] - 1
    print(f"\nthe finder's suggestion is {within:+.1%} from the grid's best ({best_lr:g}): within 5%: "
          f"{math.isfinite(within) and within <= 0.05}")
    print(f"lr-find took {finder_seconds:.1f} s, fit-batch {batch_seconds:.1f} s (each a whole command, "
          "corpus read included)")


if __name__ == "__main__":
    main_bench()
