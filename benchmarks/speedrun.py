"""Time to a target val loss on the bundled corpus, for three recipes, in one run:

    python benchmarks/speedrun.py [--config configs/default.toml] [--steps 300] [--rounds 2]

- the chapter's recipe: AdamW at a constant learning rate;
- AdamW with warmup and cosine decay (configs/default.toml's schedule);
- Muon for the blocks' matrices (AdamW for the rest) with warmup-stable-decay.

The target is AdamW + cosine's final val loss at --steps. Every run stops once an eval reaches
it (target_val_loss), so "time" is the training time to get there, from run.json. AdamW's
learning rate comes from the learning-rate finder (gpt-tui lr-find) on the config; Muon's
muon_lr from a 3-point grid at half the steps. Rounds interleave the recipes.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import tempfile
from pathlib import Path

from tui_trainer.cli import main
from tui_trainer.engine.config import load_config, to_toml, with_overrides
from tui_trainer.engine.follow import read_status

REPO = Path(__file__).resolve().parent.parent
MUON_GRID = (0.01, 0.02, 0.05)


def quietly(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0, argv
    return out.getvalue()


def train(base: Path, out: Path, **changes) -> dict:
    quietly(["train", "--config", str(base), "--out", str(out), *[f"--set={k}={v}" for k, v in changes.items()]])
    return read_status(out)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "default.toml"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="speedrun-"))
    config = with_overrides(load_config(args.config), {
        "max_iters": args.steps, "eval_interval": max(1, args.steps // 20), "sample_interval": 0,
        "checkpoint_interval": 0, "warmup_iters": args.steps // 20, "out_dir": str(work)})
    base = work / "base.toml"
    base.write_text(to_toml(config), encoding="utf-8")
    lr = json.loads(quietly(["lr-find", "--config", str(base), "--json"]))["suggestion"]
    grid = {m: train(base, work / f"grid-{m}", optimizer="muon", lr_schedule="wsd", learning_rate=lr, muon_lr=m,
                     max_iters=args.steps // 2)["best_val_loss"] for m in MUON_GRID}
    muon_lr = min(grid, key=grid.get)
    recipes = {
        "chapter: AdamW, constant lr": {"lr_schedule": "constant", "learning_rate": lr},
        "AdamW + cosine": {"lr_schedule": "cosine", "learning_rate": lr},
        "Muon + WSD": {"optimizer": "muon", "lr_schedule": "wsd", "learning_rate": lr, "muon_lr": muon_lr},
    }
    times: dict[str, list[float]] = {name: [] for name in recipes}
    steps: dict[str, list[int]] = {name: [] for name in recipes}
    target = None
    for round_ in range(args.rounds):
        cosine = train(base, work / f"cosine-{round_}", **recipes["AdamW + cosine"])
        target = target or cosine["best_val_loss"]  # the first round's sets the target for all
        for name, changes in recipes.items():
            status = train(base, work / f"{name.split(':')[0].split()[0]}-{round_}", target_val_loss=round(target, 4),
                           max_iters=2 * args.steps, **changes)
            reached = status.get("target")
            times[name].append(reached["elapsed"] if reached else float("inf"))
            steps[name].append(reached["step"] if reached else -1)
    print(f"\n{Path(args.config).name} on the bundled corpus, {args.rounds} rounds; lr {lr:.3g} (lr finder), muon_lr "
          f"{muon_lr:g} (grid {', '.join(f'{m:g}: {v:.4f}' for m, v in grid.items())}); target val loss "
          f"{target:.4f} (AdamW + cosine's best at {args.steps} steps); each run may go on to {2 * args.steps}")
    print("\n| recipe | steps to target | time to target (median) | vs AdamW + cosine |\n|---|---:|---:|---:|")
    reference = statistics.median(times["AdamW + cosine"])
    for name in recipes:
        median = statistics.median(times[name])
        shown = "not reached" if median == float("inf") else f"{median:.1f} s"
        print(f"| {name} | {', '.join(str(s) if s >= 0 else '-' for s in steps[name])} | {shown} | "
              f"{median / reference:.2f}x |")
    ratio = statistics.median(times["Muon + WSD"]) / reference
    print(f"\nMuon + WSD in {ratio:.2f}x AdamW + cosine's time (goal: at most 0.6x): {ratio <= 0.6}")


if __name__ == "__main__":
    main_bench()
