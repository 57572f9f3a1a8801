"""Soak: a tiny model trains 20,000 steps inside the app (headless run_test, every message
live), with RSS recorded every 1,000 steps and the plot's redraw time at start and end.

    python benchmarks/soak.py [--steps 20000]

Memory must stay flat (under 5% growth after warm-up) and the redraw cost must not grow.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import render_ms  # noqa: E402
WARMUP = 2_000


async def soak(steps: int, out: Path) -> tuple[list[tuple[int, float]], float, float]:
    from tui_trainer.engine.config import load_config
    from tui_trainer.ui.app import create_app
    from tui_trainer.ui.widgets.loss_plot import LossPlot

    config = load_config(REPO / "configs" / "tiny.toml", {
        "max_iters": steps, "log_interval": 1, "eval_interval": 500, "eval_iters": 2, "sample_interval": 2000,
        "sample_tokens": 16, "data": str(REPO / "data" / "orders.txt"), "out_dir": str(out)})
    app = create_app(config, start=True)
    process = psutil.Process()
    rss: list[tuple[int, float]] = []
    async with app.run_test(size=(120, 40)) as pilot:
        while app.dashboard.progress.step < 200:
            await pilot.pause(0.05)
        plot = app.query_one(LossPlot)
        start_ms = render_ms(plot)
        next_mark = 1_000
        while app.dashboard.state != "ended":
            await pilot.pause(0.1)
            if app.dashboard.progress.step >= next_mark:
                rss.append((next_mark, process.memory_info().rss / 2**20))
                next_mark += 1_000
        end_ms = render_ms(plot)
    return rss, start_ms, end_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        rss, start_ms, end_ms = asyncio.run(soak(args.steps, Path(tmp)))
        minutes = (time.perf_counter() - started) / 60
    print(f"{args.steps:,} steps of configs/tiny.toml in the app (log_interval 1), {minutes:.1f} min")
    print("| step | RSS MiB |")
    print("|---:|---:|")
    for step, mib in rss:
        print(f"| {step:,} | {mib:.1f} |")
    base = next(mib for step, mib in rss if step >= WARMUP)
    growth = (rss[-1][1] - base) / base
    print(f"\nRSS growth after warm-up (step {WARMUP:,} -> {rss[-1][0]:,}): {growth:+.1%} (target < 5%) "
          f"{'OK' if growth < 0.05 else 'MISSED'}")
    print(f"plot redraw at 120x40: {start_ms:.1f} ms at step 200, {end_ms:.1f} ms at the end "
          f"({'OK' if end_ms <= start_ms * 1.2 + 1 else 'GREW'})")
    sys.exit(0)


if __name__ == "__main__":
    main()
