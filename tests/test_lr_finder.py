"""The learning-rate range test: a suggestion from a curve that falls then diverges, nothing kept."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from tui_trainer.cli import main
from tui_trainer.engine.lr_finder import find_lr, learning_rates, suggest
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer

from .conftest import TINY, make_config


def test_the_rates_grow_exponentially_and_the_steepest_fall_is_suggested():
    rates = learning_rates(5, 1e-4, 1.0)
    assert rates[0] == 1e-4 and math.isclose(rates[-1], 1.0) and all(
        math.isclose(b / a, 10.0) for a, b in zip(rates, rates[1:]))
    # a loss that falls slowly, then fast between 1e-3 and 1e-2, bottoms out at 1, then rises
    points = list(zip(learning_rates(7, 1e-5, 10.0), [5.0, 4.9, 4.7, 2.0, 1.5, 1.4, 9.0]))
    assert math.isclose(suggest(points), 1e-3)
    assert suggest(points[:3]) is None  # too few falling points to tell


def test_a_range_test_finds_a_rate_where_the_loss_falls_and_stops_once_it_diverges(tiny_config):
    finding = find_lr(tiny_config, steps=80)
    lrs, losses = zip(*finding.points)
    assert all(b > a for a, b in zip(lrs, lrs[1:])) and lrs[0] == 1e-7
    lowest = losses.index(min(losses))
    assert min(losses) < losses[0] - 0.3  # it learned something on the way
    assert "diverged" in finding.stopped and losses[-1] > 4 * min(losses) and len(finding.points) < 80
    assert finding.suggestion in lrs[:lowest + 1] and 1e-6 < finding.suggestion < 1.0


def test_a_run_after_a_range_test_is_bit_identical_to_one_without(tiny_config, tmp_path):
    config = make_config(tiny_config, max_iters=10, eval_interval=10)
    before = Trainer(config, run_dir=tmp_path / "before")
    before.run()
    rng = torch.get_rng_state()
    find_lr(config, steps=30)
    assert torch.equal(torch.get_rng_state(), rng)  # the process's streams are as they were
    after = Trainer(config, run_dir=tmp_path / "after")
    after.run()
    for name, tensor in before.raw_model.state_dict().items():
        assert torch.equal(tensor, after.raw_model.state_dict()[name]), name


def test_lr_find_prints_one_json_object_and_writes_no_run(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [f"--set={key}={value}" for key, value in {**TINY, "device": "cpu"}.items()]
    assert main(["lr-find", "--data", str(corpus), *sets, "--steps", "40", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert isinstance(found["suggestion"], float) and found["rule"].startswith("steepest descent")
    assert all(len(point) == 2 for point in found["points"]) and found["points"][0][0] == 1e-7
    assert list(tmp_path.iterdir()) == []  # no run directory, nothing at all
    with pytest.raises(SystemExit) as exited:  # argparse's one line and exit 2
        main(["lr-find", "--data", str(corpus), *sets, "--steps", "1"])
    assert exited.value.code == 2 and "at least 2" in capsys.readouterr().err


def test_lr_find_from_a_runs_checkpoint_leaves_the_run_as_it_was(tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(make_config(tiny_config, max_iters=20, eval_interval=20), run_dir=run).run()
    files = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}
    finding = find_lr(RunPlan.fork(run), steps=30)
    fresh = find_lr(make_config(tiny_config, max_iters=20), steps=30)
    assert finding.points[0][1] < fresh.points[0][1]  # it starts from the trained weights
    assert main(["lr-find", "--fork", str(run), "--steps", "30"]) in (0, 1)
    assert "learning rates tried" in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == files


async def test_f3_draws_the_range_test_and_apply_puts_its_suggestion_into_the_form(app_config):
    from textual.widgets import Input

    from tui_trainer.ui.app import create_app
    from tui_trainer.ui.screens import ChoiceScreen

    from .test_app import SIZE, press, wait_for

    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        before = board.form_config
        await press(pilot, "f3")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        points, suggestion = board.plot.lr_curve
        assert len(points) > 10 and "Suggested learning_rate" in app.screen.question
        assert board.plot.legend()[1][1].startswith("suggested lr") and board.form_config == before
        await press(pilot, "a")
        await pilot.pause()
        assert float(board.query_one("#f-learning_rate", Input).value) == float(f"{suggestion:.3g}")
        assert board.form_config.learning_rate == float(f"{suggestion:.3g}") and board.state == "idle"
        assert board.check_action("start", ()) is True and not board.lr_find.running
        await press(pilot, "f5")  # a run starts afresh: the plot is the run's again
        await wait_for(pilot, lambda: board.state == "ended")
        assert board.plot.lr_curve is None and board.plot.raw.total > 0
    assert not list(Path(app_config.out_dir).glob("*/lr*"))  # the finder wrote nothing of its own


async def test_f3_again_stops_the_range_test(app_config):
    from tui_trainer.ui.app import create_app

    from .test_app import SIZE, press, wait_for

    # a model large enough that the test is still running a few points in
    app = create_app(make_config(app_config, d_model=128, num_blocks=4, batch_size=32, context_length=64))
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        await press(pilot, "f3")
        await wait_for(pilot, lambda: board.plot.lr_curve[0])  # a few points in
        assert board.check_action("start", ()) is None and board.check_action("runs", ()) is None  # not meanwhile
        await press(pilot, "f3")
        await wait_for(pilot, lambda: not board.lr_find.running)
        assert any("cancelled at lr" in text for _, text in board.log_panel.messages)
        assert len(board.plot.lr_curve[0]) < 100 and board.check_action("start", ()) is True


async def test_a_finder_started_and_stopped_at_once_ends(app_config):
    """Both presses handled before the worker's thread ran: it still runs, sees the stop, ends."""
    from tui_trainer.ui.app import create_app

    from .test_app import SIZE, wait_for

    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        for name in ("lr_find", "fit_batch"):
            board.action_find(name)
            board.action_find(name)
            await wait_for(pilot, lambda: board.finding is None, timeout=30)
        assert board.check_action("start", ()) is True and board.check_action("runs", ()) is True
