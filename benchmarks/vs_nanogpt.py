"""nanoGPT's own train.py beside gpt-tui, at nanoGPT's CPU recipe, char-level on the bundled corpus:

    python benchmarks/vs_nanogpt.py --nanogpt ../shared/nanogpt [--iters 2000] [--rounds 2]

Its README's CPU recipe: 4 layers, 4 heads, 128 wide, context 64, batch 12, cosine from 1e-3
to 1e-4 over the run (warmup 100), no dropout, evals every 250 steps over 20 batches. Rows:
- nanoGPT's train.py, unmodified, run from a scratch folder (it never enters the project);
- gpt-tui at the same shape, steps and schedule (byte tokenizer: the corpus is ASCII, so bytes
  are its characters), health on, as the app trains, and health off;
- gpt-tui's fastest recipe (Muon + WSD) until it reaches nanoGPT's final val loss.
Wall time is each process's, start to end (imports and data included). Each round runs every
row once, in an order that turns around from one round to the next, so the machine's drift
falls on both sides; the table gives medians, and the speed ratios of each round's pairs.
Without --nanogpt the nanoGPT row is skipped.
"""
from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tui_trainer.engine.follow import read_status

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "data" / "orders.txt"
SHAPE = {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "batch_size": 12, "dropout": 0.0}


def prepare_nanogpt(nanogpt: Path, work: Path) -> Path:
    """A scratch folder with nanoGPT's train.py, model.py and char-level data of the corpus."""
    scratch = work / "nanogpt"
    (scratch / "config").mkdir(parents=True)
    for name in ("train.py", "model.py", "configurator.py"):
        shutil.copy(nanogpt / name, scratch / name)  # into a scratch folder outside the project, as its README says
    shutil.copy(nanogpt / "train_shakespeare_char.py", scratch / "config" / "train_shakespeare_char.py")
    subprocess.run([sys.executable, str(nanogpt / "prepare_char.py"), str(CORPUS), str(scratch / "data" / "orders")],
                   check=True, capture_output=True)
    return scratch


def run_nanogpt(scratch: Path, iters: int, name: str) -> tuple[float, float]:
    """(wall seconds, final val loss) of nanoGPT's own train.py."""
    args = [f"--{k}={v}" for k, v in SHAPE.items()] + [
        "--dataset=orders", "--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=100",
        f"--max_iters={iters}", f"--lr_decay_iters={iters}", f"--out_dir={scratch / name}"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "train.py", "config/train_shakespeare_char.py", *args], cwd=scratch,
                          capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    losses = re.findall(r"step \d+: train loss [\d.]+, val loss ([\d.]+)", done.stdout)
    return seconds, float(losses[-1])


def recipe(iters: int) -> dict:
    """nanoGPT's CPU recipe in gpt-tui's keys (also bench_train.py's --shape nanogpt)."""
    return {"d_model": SHAPE["n_embd"], "num_blocks": SHAPE["n_layer"], "num_heads": SHAPE["n_head"],
            "context_length": SHAPE["block_size"], "batch_size": SHAPE["batch_size"], "dropout": 0.0,
            "tokenizer": "byte", "max_iters": iters, "learning_rate": 1e-3, "min_lr": 1e-4, "lr_schedule": "cosine",
            "warmup_iters": 100, "eval_interval": 250, "eval_iters": 20, "log_interval": 100, "device": "cpu",
            "sample_interval": 0, "checkpoint_interval": 0, "weight_decay": 0.1}


def run_gpt_tui(work: Path, name: str, iters: int, **extra) -> tuple[float, dict]:
    """(wall seconds, run.json) of `gpt-tui train` at the recipe's shape."""
    sets = {**recipe(iters), **extra}
    out = work / name
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tui_trainer", "train", "--data", str(CORPUS), "--out", str(out),
                    *[f"--set={k}={v}" for k, v in sets.items()]], check=True, capture_output=True)
    return time.perf_counter() - started, read_status(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nanogpt", type=Path, help="an unmodified nanoGPT checkout (its train.py, model.py, ...)")
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vs-nanogpt-"))
    scratch = None
    if args.nanogpt and (args.nanogpt / "train.py").is_file():
        scratch = prepare_nanogpt(args.nanogpt.resolve(), work)
    else:
        print("no --nanogpt: its row is skipped")
    # (wall seconds, best val loss, steps) of each row, a list per round
    rows: dict[str, list[tuple[float, float, int]]] = {}

    def add(name: str, seconds: float, loss: float, steps: int) -> None:
        rows.setdefault(name, []).append((seconds, loss, steps))

    same, nohealth, nano = ("gpt-tui, same shape, steps and schedule (health on)", "gpt-tui, the same, health off",
                            "nanoGPT train.py (its CPU recipe)")
    target = None
    for round_ in range(args.rounds):
        order = ["nano", "on", "off"] if round_ % 2 == 0 else ["off", "on", "nano"]
        for side in order:
            if side == "nano" and scratch is not None:
                seconds, loss = run_nanogpt(scratch, args.iters, f"out-{round_}")
                target = target or loss  # the first round's final loss is the Muon row's target
                add(nano, seconds, loss, args.iters)
            elif side != "nano":
                seconds, status = run_gpt_tui(work, f"{side}-{round_}", args.iters, health=side == "on")
                add(same if side == "on" else nohealth, seconds, status["best_val_loss"], status["last_step"])
    if target is not None:
        muon = f"gpt-tui, Muon + WSD (muon_lr 0.02, lr 3e-3) to nanoGPT's {target:.4f}"
        for round_ in range(args.rounds):
            seconds, status = run_gpt_tui(work, f"muon-{round_}", args.iters, optimizer="muon", lr_schedule="wsd",
                                          learning_rate=3e-3, muon_lr=0.02, target_val_loss=round(target, 4))
            reached = status.get("target")
            add(muon, seconds, status["best_val_loss"], reached["step"] if reached else status["last_step"])
    print(f"\n{args.iters} iterations, char-level {CORPUS.name}, CPU ({sys.platform}), median of {args.rounds} rounds\n")
    print("| run | wall time | best val loss | steps | time vs nanoGPT |\n|---|---:|---:|---:|---:|")
    reference = statistics.median(s for s, _, _ in rows[nano]) if nano in rows else None
    for name, runs in rows.items():
        seconds = statistics.median(s for s, _, _ in runs)
        ratio = f"{seconds / reference:.2f}x" if reference else "-"
        print(f"| {name} | {seconds:.1f} s | {statistics.median(v for _, v, _ in runs):.4f} | "
              f"{max(n for _, _, n in runs):,} | {ratio} |")
    if reference:
        for name in (same, nohealth):
            speeds = [n[0] / g[0] for g, n in zip(rows[name], rows[nano])]
            print(f"\n{name}: {', '.join(f'{s:.2f}x' for s in speeds)} nanoGPT's speed, round by round "
                  f"(median {statistics.median(speeds):.2f}x; goal for health on: at least 1.1x)")


if __name__ == "__main__":
    main()
