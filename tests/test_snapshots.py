"""Snapshots of the idle screen with fixed data (the bundled corpus, configs/default.toml)."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from textual.widgets import Input

from tui_trainer.engine.config import load_config
from tui_trainer.ui.app import create_app

from .conftest import REPO


def idle_app():
    return create_app(load_config(REPO / "configs" / "default.toml"))


async def corpus_figures_shown(pilot) -> None:
    """The derived figures come from a worker: wait until they are on screen."""
    for _ in range(400):  # app.run() may hand over before the dashboard has composed
        derived = pilot.app.dashboard.query("#derived")
        if derived and "tokens, vocab" in str(derived.first().render()):
            break
        await pilot.pause(0.05)
    for field in pilot.app.query(Input):
        field.cursor_blink = False  # a blinking cursor is caught on or off by the machine's load
    pilot.app.query_one("#f-d_model").focus()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_idle_screen(snap_compare, size):
    assert snap_compare(idle_app(), terminal_size=size, run_before=corpus_figures_shown)


def fake_run(root: Path, name: str, started: float, status: str, lr: float, best: float | None) -> None:
    """A run directory with fixed files: what the Runs screen reads, without training."""
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "status": status, "started": started, "last_step": 500, "max_iters": 1000 if status == "stopped" else 500,
        "best_val_loss": best, "num_params": 1_234_567, "device": "cpu", "host": "nohost", "pid": 1}))
    (run / "config.toml").write_text(f"learning_rate = {lr}\n")
    (run / "metrics.jsonl").write_text("")


def test_runs_screen(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = datetime(2026, 11, 20, 9, 30).timestamp()
    fake_run(tmp_path / "runs", "gpt-20261120-093000", start, "finished", 1e-3, 1.2345)
    fake_run(tmp_path / "runs", "gpt-20261121-101500", start + 90000, "stopped", 3e-4, None)

    async def open_runs(pilot) -> None:
        await pilot.press("f2", "space")
    assert snap_compare(idle_app(), terminal_size=(100, 16), run_before=open_runs)


def test_samples_tab_colours_tokens(snap_compare):
    """A fixed checkpoint's sample with a fixed seed: tokens coloured by probability, one selected."""
    from tui_trainer.engine.events import SampleText
    from tui_trainer.engine.sampling import generate

    from .test_samples import tiny_model

    model, vocab, tokenizer = tiny_model()
    generation = generate(model, tokenizer, vocab, "the ", 40, seed=7)

    async def show_sample(pilot) -> None:
        await corpus_figures_shown(pilot)
        pilot.app.dashboard.samples.add_event(SampleText(200, "the ", generation.text, generation.tokens, "", 7))
        pilot.app.dashboard.tabs.active = "tab-samples"
        pilot.app.query_one("#sample-view").focus()
        await pilot.press("right", "right", "right")
    assert snap_compare(idle_app(), terminal_size=(120, 40), run_before=show_sample)
