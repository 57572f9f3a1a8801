"""Training speed inside the app against headless `gpt-tui train`, and the plot's redraw cost.

    python benchmarks/bench_app.py [--steps 1000] [--rounds 3]

1. From outside, as a user meets it: configs/chapter19.toml (evals pushed out of the timed
   window) through `gpt-tui train`, then `gpt-tui --start` in a real terminal (a pty at
   120x40), each its own process at default settings, --rounds times; steps/s from each
   run's metrics.jsonl timestamps after warm-up.
2. The same in-process (the app under run_test), with the time a key takes to be handled.
3. The loss plot at 120x40 is filled with 1k, 100k and 1M steps and its render timed.
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


def outside(steps: int, out: Path, extra: list[str]) -> tuple[float, float]:
    """The issue's own method: `gpt-tui train`, then `gpt-tui --start` in a real terminal (a pty at
    120x40), each its own process at default settings; steps/s from each run's metrics.jsonl."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from pty_terminal import PtyApp

    base = ["--config", str(REPO / "configs/chapter19.toml"), *sum((["--set", s] for s in overrides(steps) + extra),
                                                                    [])]
    subprocess.run([sys.executable, "-m", "tui_trainer", "train", *base, "--out", str(out / "cli")], check=True,
                   stdout=subprocess.DEVNULL)
    app = PtyApp([sys.executable, "-m", "tui_trainer", *base, "--out", str(out / "app"), "--start"])
    try:
        deadline = time.time() + 600
        while time.time() < deadline:
            status = (out / "app" / "run.json").read_text() if (out / "app" / "run.json").exists() else ""
            if '"finished"' in status:
                break
            time.sleep(0.5)
        app.press("ctrl+q")
        app.wait(30)
    finally:
        app.kill()
    return steps_per_sec(out / "cli"), steps_per_sec(out / "app")


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
        while app.dashboard.state != "ended":
            await asyncio.sleep(0.2)  # not pilot.pause(): that forces extra screen updates of its own
            if key_latency is not None and app.dashboard.progress.step > SKIP and len(key_latency) < 10:
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
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import os

    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        real = [outside(args.steps, tmp / f"outside-{i}", []) for i in range(args.rounds)]
        head = headless(args.steps, tmp / "headless", cores)
        latency: list[float] = []
        in_process = asyncio.run(in_app(args.steps, tmp / "app", None, latency))
    print(f"configs/chapter19.toml, {args.steps} steps, {cores} cores, default settings")
    print("\nFrom outside: `gpt-tui train`, then `gpt-tui --start` in a 120x40 terminal, each its own process:")
    print("| round | gpt-tui train steps/s | app steps/s | app vs headless |")
    print("|---:|---:|---:|---:|")
    for i, (cli, app) in enumerate(real, 1):
        print(f"| {i} | {cli:.1f} | {app:.1f} | {app / cli:.2f}x |")
    ratios = sorted(app / cli for cli, app in real)
    print(f"median app vs headless: {ratios[len(ratios) // 2]:.2f}x (target >= 0.90x)")
    print(f"\nIn-process (the app under run_test, no terminal): {in_process:.1f} vs headless {head:.1f} steps/s "
          f"= {in_process / head:.2f}x")
    print(f"key handled while training (F9, {len(latency)} presses): median {statistics.median(latency):.0f} ms, "
          f"max {max(latency):.0f} ms (target < 100 ms)")
    print()
    print("| plot history | redraw at 120x40 |")
    print("|---:|---:|")
    for points in (1_000, 100_000, 1_000_000):
        print(f"| {points:,} steps | {asyncio.run(redraw_ms(points)):.1f} ms |")


if __name__ == "__main__":
    main()
