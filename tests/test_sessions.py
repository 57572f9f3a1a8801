"""One run, one object: the dashboard shows any session kind through one interface, its keys
live only on the dashboard, and engine events reach it however they are batched."""
from __future__ import annotations

import threading
from pathlib import Path

from textual.widgets import Input

from tui_trainer.engine.events import RunFinished, RunStarted, StateChanged, StepMetrics
from tui_trainer.engine.follow import read_events, read_status
from tui_trainer.ui.app import create_app
from tui_trainer.ui.event_batches import EventBatches
from tui_trainer.ui.messages import EngineEvents
from tui_trainer.ui.runs_screen import RunsScreen
from tui_trainer.ui.sessions.session import RunSession

from .test_app import SIZE, log_text, press, wait_for


class RecordingControl:
    """A control that only remembers what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    def stop(self, reason: str = "", save: bool = True) -> None:
        self.sent.append(("stop", save))

    def pause(self) -> None:
        self.sent.append(("pause",))

    def resume(self) -> None:
        self.sent.append(("resume",))

    def save_now(self) -> None:
        self.sent.append(("save",))

    def change(self, changes: dict, source: str = "app", request: str = "") -> None:
        self.sent.append(("change", changes, source))


class ListedRun(RunSession):
    """A kind of run the app has never heard of (as a sweep trial will be): it plays a list of
    engine events, and its run is its own, so quitting asks first."""

    owned = True
    title = "a listed run"

    def __init__(self, host, run_dir: Path) -> None:
        super().__init__(host, RecordingControl(), run_dir)

    def start(self) -> None:
        self.host.post_message(EngineEvents([
            RunStarted(str(self.run_dir), "cpu", "float32", 1000, 64, 5000, 500, 256, 0, 10),
            StateChanged("running", 0),
            *[StepMetrics(step, 4.0 - step / 10, 1e-3, 1000.0, step, 10 - step) for step in range(1, 6)]]))


async def test_a_new_kind_of_session_is_shown_and_steered_without_touching_the_app(app_config, tmp_path):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        session = ListedRun(board, tmp_path / "listed")
        board.show(session)
        await wait_for(pilot, lambda: board.state == "running" and board.progress.step == 5)
        assert board.plot.raw.total == 5 and board.sub_title == "a listed run" and board.run_dir == tmp_path / "listed"
        await press(pilot, "f6")  # its own control gets the commands
        await press(pilot, "ctrl+s")
        assert session.control.sent == [("pause",), ("save",)]
        await press(pilot, "ctrl+q")  # its own run: quitting asks, and "quit without saving" says so
        await press(pilot, "q")
        assert session.control.sent[-1] == ("stop", False) and board.state == "stopping"
        board.post_message(EngineEvents([RunFinished(5, "stopped", "quit", 3.5, str(session.run_dir))]))
        await wait_for(pilot, lambda: not app.is_running)
    assert session.result is not None and session.result.status == "stopped"


async def test_the_dashboards_keys_are_not_live_under_the_runs_screen(app_config, tmp_path):
    """F5 (and every other run key) pressed on the Runs screen does nothing behind it."""
    app = create_app(app_config, run_dir=tmp_path / "runs" / "first")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f2")
        assert isinstance(app.screen, RunsScreen)
        for key in ("f5", "f6", "f7", "ctrl+s", "f8", "f9", "f10", "ctrl+t"):
            await press(pilot, key)
        await pilot.pause(0.3)
        assert isinstance(app.screen, RunsScreen) and app.dashboard.state == "idle"
        assert app.dashboard.session is None and "loss axis" not in log_text(app)
        await press(pilot, "escape", "f9")  # back on the dashboard, its keys work again
        await wait_for(pilot, lambda: "loss axis: log" in log_text(app))
    assert not (tmp_path / "runs" / "first").exists()


def test_a_held_step_reaches_the_app_without_a_later_event():
    """Frequent events are held for at most the interval: a timer posts them when nothing
    follows (an eval, a slow step), instead of waiting for the next event."""
    posted: list[list] = []
    arrived = threading.Event()

    def post(events: list) -> None:
        posted.append(events)
        if len(posted) == 2:
            arrived.set()
    batches = EventBatches(post, interval=0.05)
    first, held = StepMetrics(1, 4.0, 1e-3, 1.0, 1.0, 9.0), StepMetrics(2, 3.9, 1e-3, 1.0, 2.0, 8.0)
    batches(first)  # the first goes at once
    batches(held)  # within the interval: held, until the timer fires
    assert arrived.wait(timeout=10), "the held step was never posted"
    assert posted == [[first], [held]]


async def test_a_key_that_cannot_act_now_says_why(app_config, tmp_path):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        await press(pilot, "ctrl+s", "f8")
        board.show(ListedRun(board, tmp_path / "listed"))
        await wait_for(pilot, lambda: board.state == "running")
        await press(pilot, "f2", "f10", "f5")
        await pilot.pause()
        said = [(note.title, note.message) for note in app._notifications]
    assert said == [("Save ckpt", "no model yet: start a run first"), ("Sample", "no model yet: start a run first"),
                    ("Runs", "a run is going on: the Runs screen opens once it has stopped (F7)"),
                    ("Detach", "only a run this app trains itself, while it trains, can be detached"),
                    ("Start", "a run is going on: F7 stops it first")]


async def test_f5_after_a_watched_run_ended_offers_to_resume_it(app_config, tmp_path):
    from tui_trainer.engine.trainer import Trainer
    from tui_trainer.ui.screens import ChoiceScreen

    from .conftest import make_config

    run = Path(app_config.out_dir) / "watched"
    Trainer(make_config(app_config, max_iters=4, eval_interval=4), run_dir=run).run()
    app = create_app(app_config, watch=run)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        await press(pilot, "f5")
        assert isinstance(app.screen, ChoiceScreen) and "watched has ended" in app.screen.question
        await press(pilot, "r")  # it reached its max_iters: the form waits for a larger one
        assert app.dashboard.choices.chosen == ("resume", run) and app.dashboard.state == "ended"
        app.dashboard.form.query_one("#f-max_iters", Input).value = "8"
        await pilot.pause()
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended" and app.dashboard.progress.step == 8)
    assert read_status(run)["last_step"] == 8 and [e.step for e in read_events(run) if isinstance(e, RunStarted)] == [0, 4]


RUN_KEYS = ("f5", "f6", "f7", "ctrl+s", "f8", "f2", "f9", "f10", "ctrl+t")


async def test_no_run_key_acts_under_a_dialog(app_config, tmp_path):
    """Under the quit question (a run of the app's own goes on) and the existing-run question,
    every dashboard key is dead: the run trains on untouched, the question stays asked."""
    from tui_trainer.ui.screens import ChoiceScreen, QuitScreen

    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        session = ListedRun(board, tmp_path / "listed")
        board.show(session)
        await wait_for(pilot, lambda: board.state == "running")
        await press(pilot, "ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        for key in RUN_KEYS:
            await press(pilot, key)
        assert isinstance(app.screen, QuitScreen) and session.control.sent == [] and board.state == "running"
        await press(pilot, "escape")  # back: nothing was sent, the run goes on
        assert app.screen is board and session.control.sent == []
        board.post_message(EngineEvents([RunFinished(5, "stopped", "", 3.5, str(session.run_dir))]))
        await wait_for(pilot, lambda: board.state == "ended")
        (tmp_path / "listed").mkdir()
        (tmp_path / "listed" / "run.json").write_text('{"status": "finished"}')
        board.choices.out = tmp_path / "listed"  # as --out naming a folder that holds a run
        await press(pilot, "f5")
        assert isinstance(app.screen, ChoiceScreen)
        for key in RUN_KEYS:
            await press(pilot, key)
        assert isinstance(app.screen, ChoiceScreen) and board.session is session and "loss axis" not in log_text(app)
