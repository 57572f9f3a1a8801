"""The Sweep screen, driven by pilot on a sweep that trains in this process: prune a trial,
try values next, stop the sweep, open a trial; the setup from the form; and a snapshot of a
fixed finished sweep."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import optuna
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tests.conftest import TINY
from tui_trainer.engine.config import load_config
from tui_trainer.engine.follow import read_status
from tui_trainer.engine.sweep_spec import parse_sweep
from tui_trainer.engine.sweep_study import create_study, open_storage, read_record, storage_field, write_record
from tui_trainer.engine.sweep_worker import SweepWorker
from tui_trainer.ui.app import create_app
from tui_trainer.ui.sweep_screen import SweepScreen
from tui_trainer.ui.sweep_setup import SweepSetupScreen

from .conftest import REPO


async def wait_for(pilot, predicate, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


def states(sweep_dir: Path) -> list[str]:
    return [t["state"] for t in read_record(sweep_dir).get("trials", [])]


@pytest.fixture
def live_sweep(corpus, tmp_path):
    """A two-trial sweep of long trials whose worker runs in a thread of this process; ended
    (every trial stopped) after the test, whatever it did."""
    spec = parse_sweep({"trials": 2, "pruner": "none", "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}},
                        "set": {"max_iters": 100_000}},
                       "test", base={**TINY, "data": str(corpus), "out_dir": str(tmp_path / "runs")})
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    storage = storage_field(sweep_dir, None)
    (sweep_dir / "sweep.toml").write_text(spec.to_toml(), encoding="utf-8")
    study = create_study(spec, "live", storage)
    write_record(study, spec, sweep_dir, storage)
    # each logged step rests a moment: the trial stays running, and leaves the app's thread the GIL
    worker = SweepWorker(study, spec, sweep_dir, storage, say=lambda line: None,
                         on_event=lambda event: time.sleep(0.05))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    yield sweep_dir, study
    worker.stop("the test ended")
    thread.join(timeout=60)
    assert not thread.is_alive()


async def test_the_sweep_screen_prunes_queues_stops_and_opens_trials(live_sweep, tiny_config, monkeypatch):
    sweep_dir, study = live_sweep
    monkeypatch.setattr("tui_trainer.ui.sweep_screen.READ_EVERY", 0.2)  # the test waits on what it shows
    app = create_app(tiny_config, sweep=sweep_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        screen = app.screen
        await wait_for(pilot, lambda: screen.table.row_count == 1 and screen.view.rows[0].state == "running")
        await wait_for(pilot, lambda: read_status(screen.view.rows[0].run_dir).get("last_step", 0) > 0)
        # prune the running trial: it stops saved, as pruned, at its next step
        await pilot.press("p")
        await wait_for(pilot, lambda: states(sweep_dir)[:1] == ["pruned"])
        first = Path(read_record(sweep_dir)["trials"][0]["run_dir"])
        assert read_status(first)["status"] == "pruned"
        await wait_for(pilot, lambda: states(sweep_dir) == ["pruned", "running"])  # the worker took the next
        # try values next: a bad one is refused in the dialog, naming the key; a good one is queued
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "TryNextScreen")
        field = app.screen.query_one("#try-learning_rate")
        field.value = "5"
        await pilot.press("enter")
        problems = str(app.screen.query_one("#try-problems").render())
        assert "learning_rate = 5.0: the search covers [0.0001, 0.01]" in problems
        field.value = "0.002"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        assert states(sweep_dir) == ["pruned", "running", "waiting"]
        assert study.trials[2].params == {} and study.trials[2].system_attrs["fixed_params"] == {"learning_rate": 0.002}
        assert read_record(sweep_dir)["trials_budget"] == 3  # the budget grew by the trial asked for
        await wait_for(pilot, lambda: screen.table.row_count == 3)
        # stop the sweep, stopping and saving the running trial: it is queued to run again on resume
        await pilot.press("x")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "ChoiceScreen")
        await pilot.press("s")
        await wait_for(pilot, lambda: states(sweep_dir)[1] == "interrupted", 90)
        second = Path(read_record(sweep_dir)["trials"][1]["run_dir"])
        assert (second / "model.ckpt").is_file() and read_status(second)["status"] == "stopped"
        assert read_record(sweep_dir)["trials"][3]["retry_of"] == 1
        # sort by best val, then open the first trial in the dashboard
        await pilot.press("o")
        assert screen.table.sort == "best val"
        await wait_for(pilot, lambda: screen.table.row_count >= 2)
        screen.table.move_cursor(row=screen.table.get_row_index("0"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is app.dashboard and app.dashboard.session is not None)
        assert app.dashboard.session.run_dir == first
        await wait_for(pilot, lambda: app.dashboard.session.result is not None)  # an ended trial, replayed


async def test_the_setup_starts_a_sweep_of_the_form_and_opens_it(app_config, monkeypatch):
    launched = []

    def launch(sweep_file: Path, sweep_dir: Path, workers: int = 1):
        launched.append((sweep_file, sweep_dir, workers))

        class Process:
            pid = 0
        return Process()
    monkeypatch.setattr("tui_trainer.engine.launch.launch_sweep", launch)
    app = create_app(app_config)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        await pilot.press("f12")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepSetupScreen))
        setup = app.screen
        ticks = {box.id: box for box in setup.query(".setup-key")}
        assert {box.value for box in ticks.values()} == {True, False}
        for box in ticks.values():  # the tick is a character, not only a colour
            assert str(box.render()).startswith("▐X▌" if box.value else "▐ ▌"), box.id
        setup.query_one("#low-learning_rate").value = "0.1"
        setup.query_one("#high-learning_rate").value = "0.01"
        setup.query_one("#start").press()  # (scrolled out of view at this size: a click would miss it)
        await pilot.pause()
        assert "low must be below high" in str(setup.query_one("#setup-problems").render())
        setup.query_one("#high-learning_rate").value = "0.3"
        setup.query_one("#setup-trials").value = "5"
        setup.query_one("#setup-trials").focus()
        await pilot.press("enter")  # enter in any field starts it, as the button does
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
    sweep_file, sweep_dir, workers = launched[0]
    assert sweep_dir.parent == Path(app_config.out_dir) and workers == 1
    from tui_trainer.engine.sweep_spec import read_sweep_file

    spec = read_sweep_file(sweep_file)  # what gpt-tui sweep reads
    assert spec.trials == 5 and set(spec.search) == {"learning_rate", "dropout"}
    assert spec.search["learning_rate"].values == (0.1, 0.3)
    assert spec.trial_values({})["data"] == app_config.data  # the form's values are the base


# ---- a snapshot of a fixed, finished sweep ---------------------------------------------------------
def fixed_sweep(root: Path, name: str = "sweep-fixed") -> Path:
    """A finished sweep with fixed numbers: five trials, one pruned, written without training."""
    sweep_dir = root / name
    sweep_dir.mkdir(parents=True)
    spec = parse_sweep({"trials": 5, "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]},
                                                "dropout": {"uniform": [0.0, 0.3]}}, "set": {"max_iters": 300}},
                       "fixed", base={})
    (sweep_dir / "sweep.toml").write_text(spec.to_toml(), encoding="utf-8")
    storage = storage_field(sweep_dir, None)
    study = create_study(spec, name, storage)
    table = [(3e-4, 0.05, [4.1, 3.2, 2.9]), (3e-3, 0.2, [3.8, 2.6, 2.2]), (1e-4, 0.25, [4.6]),
             (1.2e-3, 0.1, [3.9, 2.8, 2.4]), (8e-3, 0.02, [3.7, 2.7, 2.5])]
    distributions = {"learning_rate": FloatDistribution(1e-4, 1e-2, log=True), "dropout": FloatDistribution(0.0, 0.3)}
    for number, (lr, dropout, losses) in enumerate(table):
        run = sweep_dir / f"trial-{number:03d}"
        run.mkdir()
        steps = [100 * (i + 1) for i in range(len(losses))]
        lines = [json.dumps({"event": "eval", "step": s, "time": 0, "train_loss": v, "val_loss": v,
                             "best_val_loss": v}) for s, v in zip(steps, losses)]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        pruned = len(losses) == 1
        (run / "run.json").write_text(json.dumps({"status": "pruned" if pruned else "finished",
                                                  "last_step": steps[-1], "best_val_loss": min(losses)}))
        study.add_trial(create_trial(
            params={"learning_rate": lr, "dropout": dropout}, distributions=distributions,
            value=None if pruned else min(losses), state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
            intermediate_values=dict(zip(steps, losses)),
            user_attrs={"run_dir": str(run), "steps": steps[-1], **({"pruned_at": 100} if pruned else {})}))
    write_record(study, spec, sweep_dir, storage)
    return sweep_dir


def test_sweep_screen_snapshot(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = fixed_sweep(tmp_path / "runs")

    async def shown(pilot) -> None:
        screen = None
        for _ in range(400):
            screen = pilot.app.screen
            if isinstance(screen, SweepScreen) and screen.table.row_count == 5 and screen.importance:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.2)
    app = create_app(load_config(REPO / "configs" / "default.toml"), sweep=sweep_dir)
    assert snap_compare(app, terminal_size=(100, 30), run_before=shown)


def test_a_fixed_sweep_reads_back_through_optuna(tmp_path):
    """sweep.json names the study and its storage, and Optuna opens it (as optuna-dashboard does)."""
    record = read_record(fixed_sweep(tmp_path))
    study = optuna.load_study(study_name=record["study_name"], storage=open_storage(record["storage"]))
    assert study.best_trial.number == 1 == record["best"]["number"]
    assert [t["state"] for t in record["trials"]] == ["complete", "complete", "pruned", "complete", "complete"]


async def test_f2_lists_a_sweep_and_enter_opens_it(app_config, tiny_config):
    import shutil

    from tui_trainer.engine.trainer import Trainer

    sweep_dir = fixed_sweep(Path(app_config.out_dir))
    shutil.rmtree(sweep_dir / "trial-001")
    Trainer(tiny_config, run_dir=sweep_dir / "trial-001").run()  # the best trial, as a real run of 60 steps
    app = create_app(app_config)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("f2")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "RunsScreen")
        runs = app.screen
        assert [run.status for run in runs.runs] == ["sweep 5/5"]  # a pruned trial counts toward the budget
        await pilot.press("space")  # a sweep is not marked for a comparison: it says what enter does
        assert not runs.marked
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.table.row_count == 5)
        assert app.screen.sweep_dir == sweep_dir
        await pilot.press("f")  # fork the best trial: the form holds its config, max_iters raised for F5
        await wait_for(pilot, lambda: app.screen is app.dashboard)
        assert app.dashboard.choices.chosen == ("fork", sweep_dir / "trial-001")
        assert app.dashboard.form.query_one("#f-max_iters").value == "120"


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
trial_fields = st.fixed_dictionaries({}, optional={k: json_values for k in
                                                   ("number", "state", "params", "best_val_loss", "steps", "run_dir",
                                                    "pruned_at")})


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=st.fixed_dictionaries({}, optional={"trials": st.lists(trial_fields, max_size=4) | json_values,
                                                  "searched": json_values | st.lists(st.sampled_from(
                                                      ["learning_rate", "[/x]", "state", "dropout"]), max_size=4),
                                                  "best": json_values, "counted": json_values,
                                                  "trials_budget": json_values, "study_name": json_values}))
def test_any_sweep_json_shows_what_of_it_reads(record, tmp_path):
    """A hand-edited or foreign sweep.json never breaks the view the Sweep screen draws from."""
    from tui_trainer.engine.sweep_view import SweepView

    (tmp_path / "sweep.json").write_text(json.dumps(record))
    view = SweepView(tmp_path)
    view.refresh()
    assert view.summary()
    assert len({row.number for row in view.rows}) == len(view.rows)
    assert all(key in ("learning_rate", "dropout") for key in view.searched)
    for row in view.rows:
        for key in view.searched:
            view.differs(row, key, None)


async def test_a_hostile_sweep_json_is_shown_not_obeyed(app_config, tmp_path):
    sweep_dir = tmp_path / "hostile"
    sweep_dir.mkdir()
    (sweep_dir / "sweep.json").write_text(json.dumps({
        "study_name": "[red]x[/red]", "storage": 12, "searched": ["learning_rate", "learning_rate"],
        "trials": [{"number": 0, "state": "[bold]ok\x1b[2J", "params": {"learning_rate": "[/]"}, "pruned_at": "a"},
                   {"number": 0, "state": "complete"}, {"number": "x"}, {"number": 1, "best_val_loss": "low"}]}))
    app = create_app(app_config, sweep=sweep_dir)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.table.row_count == 2)
        screen = app.screen
        assert "[red]x[/red]" in str(screen.query_one("#sweep-title").render())  # the name as written
        await pilot.press("n", "o", "p")  # keys on rows that make no sense say so, and the app stays
        await pilot.pause(0.3)
        assert app.is_running and app.crash is None


async def test_hostile_typing_on_the_sweep_screens_never_breaks_the_app(app_config, monkeypatch):
    """The monkey test's keys and pastes, into every field of the F12 setup and "try next", and
    on the Sweep screen's table."""
    import random

    from tests.test_monkey import SEED, burst, inconsistency

    class Process:
        pid = 0
    monkeypatch.setattr("tui_trainer.engine.launch.launch_sweep", lambda *args, **kwargs: Process())

    rng = random.Random(SEED)
    sweep_dir = fixed_sweep(Path(app_config.out_dir))
    app = create_app(app_config)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f12")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepSetupScreen))
        inputs = [w.id for w in app.screen.query("TextInput")]
        await burst(pilot, rng, inputs, 40)
        app.screen._start()  # whatever the fields hold now: refused with its problems, or started
        await pilot.pause()
        await pilot.press("escape")  # the setup, or the screen of a sweep started from what was typed
        await wait_for(pilot, lambda: app.screen is app.dashboard)
        app.dashboard.choices.open_sweep(sweep_dir)
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen) and app.screen.table.row_count == 5)
        await burst(pilot, rng, [], 20, ["up", "down", "home", "end", "o", "p", "[", "]", "space"])
        await pilot.press("n")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "TryNextScreen")
        await burst(pilot, rng, [w.id for w in app.screen.query("TextInput")], 30)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.dashboard)
        assert inconsistency(app) is None


async def test_every_screens_title_is_whole_at_80_columns(app_config, tmp_path, monkeypatch):
    """The Sweep, Runs and Compare screens' titles wrap rather than lose their end at 80x24: the
    best trial, the folder's own name, the last key that differs."""
    from tui_trainer.ui.compare_screen import CompareScreen
    from tui_trainer.ui.runs_screen import RunsScreen

    monkeypatch.chdir(tmp_path)  # a relative folder: the title's length never depends on the temp path's
    deep = Path("a-folder-name-that-is-long-" * 3) / "runs"
    sweep_dir = fixed_sweep(deep, "sweep-of-the-learning-rate-and-the-dropout")
    screens = {"#sweep-title": lambda: SweepScreen(sweep_dir), "#runs-title": lambda: RunsScreen(deep),
               "#compare-title": lambda: CompareScreen([], [f"key_{i}_of_the_comparison" for i in range(6)])}
    app = create_app(app_config)
    async with app.run_test(size=(80, 24)) as pilot:
        for selector, make in screens.items():
            await app.push_screen(make())
            title = app.screen.query_one(selector)
            # laid out (a region of its own) and, for the sweep, showing its best trial
            await wait_for(pilot, lambda: title.region.width and
                           ("trial 1)" in str(title.render()) or selector != "#sweep-title"))
            await pilot.pause()
            text = str(title.render())
            assert len(text) > 80  # long enough to test the wrap
            shown = "".join(strip.text.strip() for strip in title.render_lines(title.region.reset_offset))
            assert shown.replace(" ", "") == text.replace(" ", ""), selector
            app.pop_screen()
