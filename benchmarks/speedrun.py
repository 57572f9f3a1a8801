"""Time to a target val loss on the bundled corpus, for three recipes, in one run:

    python benchmarks/speedrun.py [--config configs/default.toml] [--steps 300] [--rounds 2]

- the chapter's recipe: AdamW at a constant learning rate;
- AdamW with warmup and cosine decay (configs/default.toml's schedule);
- Muon for the blocks' matrices (AdamW for the rest) with warmup-stable-decay.

The target is AdamW + cosine's best val loss at --steps. Every run stops once an eval reaches
it (target_val_loss), so "time" is the training time to get there, from run.json. A schedule
is shaped by max_iters, so Muon + WSD runs at half, three quarters and all of --steps, and its
fastest length that reaches the target counts; the AdamW recipes run at --steps. AdamW's
learning rate comes from the learning-rate finder (gpt-tui lr-find) on the config; Muon + WSD's
from a small grid at half the steps: muon_lr, its AdamW group's learning_rate (the finder's, or
three times it: embeddings and head take a larger step beside Muon, as in modded-nanogpt) and
the cooldown's length (decay_fraction). Rounds interleave the recipes.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import statistics
import tempfile
from pathlib import Path

from tui_trainer.cli import main
from tui_trainer.engine.config import load_config, to_toml, with_overrides
from tui_trainer.engine.follow import read_status

REPO = Path(__file__).resolve().parent.parent
MUON_GRID = {"muon_lr": (0.02, 0.05), "lr_factor": (1.0, 3.0), "decay_fraction": (0.2, 0.5)}
LENGTHS = (0.5, 0.75, 1.0)  # Muon + WSD's max_iters, as fractions of --steps


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
    grid = {}
    for point in itertools.product(*MUON_GRID.values()):
        muon_lr, factor, decay = point
        grid[point] = train(base, work / f"grid-{muon_lr}-{factor}-{decay}", optimizer="muon", lr_schedule="wsd",
                            learning_rate=lr * factor, muon_lr=muon_lr, decay_fraction=decay,
                            max_iters=args.steps // 2)["best_val_loss"]
    muon_lr, factor, decay = min(grid, key=grid.get)
    recipes = {
        "chapter: AdamW, constant lr": ({"lr_schedule": "constant", "learning_rate": lr}, (1.0,)),
        "AdamW + cosine": ({"lr_schedule": "cosine", "learning_rate": lr}, (1.0,)),
        "Muon + WSD": ({"optimizer": "muon", "lr_schedule": "wsd", "learning_rate": lr * factor, "muon_lr": muon_lr,
                        "decay_fraction": decay}, LENGTHS),
    }
    results: dict[str, list[tuple[float, int, int]]] = {name: [] for name in recipes}  # (time, steps, max_iters)
    target = None
    for round_ in range(args.rounds):
        cosine = train(base, work / f"cosine-{round_}", **recipes["AdamW + cosine"][0])
        target = target or round(cosine["best_val_loss"], 4)  # the first round's sets the target for all
        for name, (changes, lengths) in recipes.items():
            # A schedule is shaped by max_iters: each recipe runs at lengths of its own (a fraction of
            # --steps) and stops at the target; the fastest length that reaches it counts.
            best = (float("inf"), -1, 0)
            for fraction in lengths:
                length = max(1, round(fraction * args.steps))
                slug = f"{name.split(':')[0].split()[0]}-{length}-{round_}"
                status = train(base, work / slug, target_val_loss=target, max_iters=length, **changes)
                reached = status.get("target")
                if reached and reached["elapsed"] < best[0]:
                    best = (reached["elapsed"], reached["step"], length)
            results[name].append(best)
    print(f"\n{Path(args.config).name} on the bundled corpus, {args.rounds} rounds; lr {lr:.3g} (lr finder); "
          f"Muon + WSD: muon_lr {muon_lr:g}, learning_rate {lr * factor:.3g}, decay_fraction {decay:g}, the best of "
          f"the grid at {args.steps // 2} steps:")
    for (m, f, d), value in sorted(grid.items(), key=lambda item: item[1]):
        print(f"  muon_lr {m:g}, learning_rate {f:g} x {lr:.3g}, decay_fraction {d:g}: best val loss {value:.4f}")
    print(f"target val loss {target:.4f} (AdamW + cosine's best at {args.steps} steps)")
    print("\n| recipe | max_iters | steps to target | time to target (median) | vs AdamW + cosine |\n"
          "|---|---:|---:|---:|---:|")
    reference = statistics.median(t for t, _, _ in results["AdamW + cosine"])
    for name in recipes:
        median = statistics.median(t for t, _, _ in results[name])
        shown = "not reached" if median == float("inf") else f"{median:.1f} s"
        lengths = ", ".join(str(n) if n else "-" for _, _, n in results[name])
        steps = ", ".join(str(s) if s >= 0 else "-" for _, s, _ in results[name])
        print(f"| {name} | {lengths} | {steps} | {shown} | {median / reference:.2f}x |")
    ratio = statistics.median(t for t, _, _ in results["Muon + WSD"]) / reference
    print(f"\nMuon + WSD in {ratio:.2f}x AdamW + cosine's time (goal: at most 0.6x): {ratio <= 0.6}")


if __name__ == "__main__":
    main_bench()
