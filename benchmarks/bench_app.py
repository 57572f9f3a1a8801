"""Training speed inside the app against headless `gpt-tui train`, and the plot's redraw cost.

    python benchmarks/bench_app.py [--steps 400]

1. The same config (configs/chapter19.toml, evals pushed out of the timed window) trains
   once through `gpt-tui train` in a subprocess and once in the app (headless run_test,
   plot and progress live); steps/s comes from each run's metrics.jsonl timestamps.
2. The loss plot at 120x40 is filled with 1k, 100k and 1M steps and its render timed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIP = 100  # steps of warm-up (imports, first layouts) left out of the timing


def steps_per_sec(run_dir: Path) -> float:
    steps = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines() if '"event": "step"' in l]
    steps = [s for s in steps if s["step"] >= SKIP]
    return (steps[-1]["step"] - steps[0]["step"]) / (steps[-1]["time"] - steps[0]["time"])


def overrides(steps: int) -> list[str]:
    return [f"max_iters={steps}", "eval_interval=100000", "log_interval=10"]


def headless(steps: int, out: Path, threads: int) -> float:
    subprocess.run([sys.executable, "-m", "tui_trainer", "train", "--config", str(REPO / "configs/chapter19.toml"),
                    "--out", str(out), *sum((["--set", s] for s in overrides(steps) + [f"num_threads={threads}"]), [])],
                   check=True, stdout=subprocess.DEVNULL)
    return steps_per_sec(out)


async def in_app(steps: int, out: Path, threads: int | None, key_latency: list[float] | None = None) -> float:
    from textual import events

    from tui_trainer.engine.config import load_config, parse_overrides
    from tui_trainer.ui.app import create_app

    extra = overrides(steps) + ([f"num_threads={threads}"] if threads else [])
    app = create_app(load_config(REPO / "configs/chapter19.toml", parse_overrides(extra)), run_dir=out, start=True)
    async with app.run_test(size=(120, 40)):
        while app.state != "ended":
            await asyncio.sleep(0.2)  # not pilot.pause(): that forces extra screen updates of its own
            if key_latency is not None and app.trainer and app.trainer.step > SKIP and len(key_latency) < 10:
                plot = app.query_one("#plot")
                before, start = plot.log_y, time.perf_counter()
                app.post_message(events.Key("f9", None))  # as the terminal driver delivers a key
                while plot.log_y == before:  # F9 toggles log-y: wait until the handler ran
                    await asyncio.sleep(0.001)
                key_latency.append((time.perf_counter() - start) * 1000)
    return steps_per_sec(out)


async def redraw_ms(points: int) -> float:
    from tui_trainer.engine.config import TrainConfig
    from tui_trainer.ui.app import create_app
    from tui_trainer.ui.widgets.loss_plot import LossPlot

    app = create_app(TrainConfig())
    async with app.run_test(size=(120, 40)) as pilot:
        plot = app.query_one(LossPlot)
        for step in range(1, points + 1):
            plot.add_step(step, 5.0 / (1 + step / 1000) + 0.1 * ((step * 7919) % 13) / 13)
            if step % 50 == 0:
                plot.add_eval(step, 5.0 / (1 + step / 1000), 5.1 / (1 + step / 1000))
        await pilot.pause()
        return render_ms(plot)


def render_ms(plot, repeats: int = 20) -> float:
    """Median time of one plot render (the plotext build and its conversion), in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        plot.render()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()
    import os

    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        head = headless(args.steps, tmp / "headless", cores)
        head_one = headless(args.steps, tmp / "headless-1", max(1, cores - 1))
        latency: list[float] = []
        app_default = asyncio.run(in_app(args.steps, tmp / "app", None, latency))
        app_same = asyncio.run(in_app(args.steps, tmp / "app-same", cores))
    print(f"configs/chapter19.toml, {args.steps} steps, {cores} cores")
    print("| run | threads | steps/s | vs headless |")
    print("|---|---:|---:|---:|")
    print(f"| gpt-tui train (headless) | {cores} | {head:.1f} | 1.00x |")
    print(f"| gpt-tui train (headless), num_threads={max(1, cores - 1)} | {max(1, cores - 1)} | {head_one:.1f} | "
          f"{head_one / head:.2f}x |")
    print(f"| app, default (one core kept for the UI) | {max(1, cores - 1)} | {app_default:.1f} | "
          f"{app_default / head:.2f}x |")
    print(f"| app, num_threads={cores} | {cores} | {app_same:.1f} | {app_same / head:.2f}x |")
    print(f"\napp default vs headless at the same thread count: {app_default / head_one:.2f}x")
    print(f"key handled while training (F9, {len(latency)} presses): median {statistics.median(latency):.0f} ms, "
          f"max {max(latency):.0f} ms (target < 100 ms)")
    print()
    print("| plot history | redraw at 120x40 |")
    print("|---:|---:|")
    for points in (1_000, 100_000, 1_000_000):
        print(f"| {points:,} steps | {asyncio.run(redraw_ms(points)):.1f} ms |")


if __name__ == "__main__":
    main()
