"""A seeded monkey: random keys and hostile pastes into every input, on every screen, in every
state of a run. After each burst the app must still be up, uncrashed, and consistent."""
from __future__ import annotations

import asyncio
import random

from textual import events
from textual.widgets import Button

from tui_trainer.engine.live import LIVE_KEYS
from tui_trainer.ui.app import create_app
from tui_trainer.ui.screens import QuitScreen
from tui_trainer.ui.state import AppState

from .conftest import make_config
from .test_app import press, wait_for

SEED = 20261126
PASTES = ["[", "]", "[/]", "\\", "[bold]", "[x=", "[/b", "[link=x]y", "[@click=app.quit]q[/]", "\x00\x1b[2J\x07\t",
          "🚀🔥💥", "中文字符テスト", "1e-3", "-0", "nan", "inf", "9" * 40, "9" * 400, "x" * 10_000]
# Keys that edit and move, never keys that leave a phase (those are pressed on purpose below).
KEYS = ["tab", "shift+tab", "up", "down", "left", "right", "home", "end", "backspace", "delete", "f9",
        "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "a", "[", "]", "\\", "0", "1", ".", "e", "-", "space"]
BUTTON_ACTIONS = {"start": "start", "pause": "toggle_pause", "stop": "stop", "save": "save"}
KEY_NAMES = {"[": "left_square_bracket", "]": "right_square_bracket", "\\": "backslash", ".": "full_stop",
             "-": "minus", "space": "space"}
SETTLE = 5.0  # seconds the app may take to catch up with a burst while a run loads the CPU


def key_event(key: str) -> events.Key:
    """The event a terminal sends for ``key``."""
    if key == "space":
        return events.Key("space", " ")
    return events.Key(KEY_NAMES.get(key, key), key if len(key) == 1 else None)


def inconsistency(app) -> str | None:
    """What must hold whatever was typed: the app is up, never crashed, and what it shows agrees
    with its state. Returns what does not, or None."""
    if not app.is_running or app.crash is not None:
        return f"app down: {app.crash!r}"
    if not isinstance(app.dashboard.state, AppState):
        return f"state {app.dashboard.state!r}"
    for button_id, action in BUTTON_ACTIONS.items():
        if app.query_one(f"#{button_id}", Button).disabled != (app.dashboard.check_action(action, ()) is not True):
            return f"button {button_id} in state {app.dashboard.state}"
    form = app.dashboard.form
    for name, problem in form.problems.items():
        if not (problem and form.query_one(f"#error-{name}").display):
            return f"problem of {name} not shown"
    if (app.dashboard.form_config is None) != bool(form.problems):
        return f"form config {app.dashboard.form_config!r} with problems {form.problems}"
    return None


async def burst(pilot, rng: random.Random, inputs: list[str], count: int, keys: list[str] = KEYS) -> None:
    """``count`` random actions: focus an input, press a key, or paste a hostile string; then the
    app must settle into a consistent state. Keys are posted as the terminal driver posts them:
    pilot.press waits for the CPU to idle, which it never does while a run trains."""
    app = pilot.app
    for _ in range(count):
        roll = rng.random()
        if roll < 0.2 and inputs:
            widget = app.screen.query_one(f"#{rng.choice(inputs)}")
            if not widget.disabled:
                widget.focus()
        elif roll < 0.45:
            focused = app.focused
            if focused is not None:
                focused.post_message(events.Paste(rng.choice(PASTES)))
        else:
            app.post_message(key_event(rng.choice(keys)))
        await asyncio.sleep(0.01)
    await settled(app)


async def settled(app) -> None:
    """The app settles into a consistent state within SETTLE seconds: a button may follow its
    state one message later, on a loaded machine later still, but it must follow."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while (problem := inconsistency(app)) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert problem is None, problem


async def test_random_typing_never_kills_the_app_in_any_state(tiny_config):
    rng = random.Random(SEED)
    config = make_config(tiny_config, max_iters=100_000, log_interval=5, eval_interval=50)
    app = create_app(config)
    async with app.run_test(size=(100, 32)) as pilot:
        form_inputs = [w.id for w in app.query("#form Input")]
        sample_inputs = ["sample-prompt", "sample-temperature", "sample-top-k"]
        # idle: every form field and the Samples inputs
        await burst(pilot, rng, form_inputs + sample_inputs, 40)
        # the preset picker, opened and typed at, then closed
        app.dashboard.form.query_one("#preset").focus()
        await press(pilot, "enter")
        await burst(pilot, rng, [], 10, ["up", "down", "a", "[", "]", "\\", "end", "home"])
        await press(pilot, "escape")
        # the Runs screen, empty or not
        await press(pilot, "f2")
        await burst(pilot, rng, [], 10, ["up", "down", "space", "[", "]", "a"])
        await press(pilot, "escape")
        await pilot.pause()
        # running: back to a valid form (the idle burst may have broken it), then start
        app.dashboard.form.load(config)
        await pilot.pause()
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == AppState.RUNNING, timeout=60)
        live_inputs = [f"f-{key}" for key in LIVE_KEYS if f"f-{key}" in form_inputs]
        await burst(pilot, rng, live_inputs + sample_inputs, 30, KEYS + ["enter"])
        # the quit dialog over a running run: typed at, then cancelled
        if app.dashboard.state != AppState.RUNNING:  # a live change typed above may have ended the run (a low max_iters)
            app.dashboard.form.load(config)
            await press(pilot, "f5")
            await wait_for(pilot, lambda: app.dashboard.state == AppState.RUNNING, timeout=60)
        await press(pilot, "ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        await burst(pilot, rng, [], 8, ["tab", "left", "right", "[", "]", "a", "up"])
        await press(pilot, "escape")
        await pilot.pause()
        # paused (unless a typed learning rate already made the run fail: then it has ended)
        if app.dashboard.state == AppState.RUNNING:
            await press(pilot, "f6")
            await wait_for(pilot, lambda: app.dashboard.state in (AppState.PAUSED, AppState.ENDED))
        await burst(pilot, rng, live_inputs + sample_inputs, 15)
        # ended: stop, then everything again, the Runs screen listing the run
        if app.dashboard.state in (AppState.RUNNING, AppState.PAUSED):
            await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == AppState.ENDED, timeout=60)
        await burst(pilot, rng, form_inputs + sample_inputs, 25)
        await press(pilot, "f2")
        await burst(pilot, rng, [], 8, ["up", "down", "space", "[", "]"])
        await press(pilot, "escape")
        await settled(app)


async def test_mashing_every_run_key_50_times_makes_one_run(tiny_config, tmp_path):
    rng = random.Random(SEED)
    config = make_config(tiny_config, max_iters=100_000, out_dir=str(tmp_path / "runs"))
    app = create_app(config)
    async with app.run_test(size=(100, 32)) as pilot:
        for _ in range(50):
            app.post_message(key_event(rng.choice(["f5", "f6", "f7", "ctrl+s", "f8"])))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        if app.dashboard.state != AppState.ENDED:
            await press(pilot, "f6") if app.dashboard.state == AppState.PAUSED else None
            await wait_for(pilot, lambda: app.dashboard.state in (AppState.RUNNING, AppState.ENDED))
            await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == AppState.ENDED, timeout=60)
        await settled(app)
    assert len(list((tmp_path / "runs").iterdir())) == 1
