"""Shared fixtures: a private token cache, small corpora and tiny configs that train in seconds."""
from __future__ import annotations

import asyncio
import functools
import os
import time
from pathlib import Path

import psutil
import pytest
import textual.app
import textual.pilot
from hypothesis import settings

from tui_trainer.engine.config import TrainConfig, config_from_dict

REPO = Path(__file__).resolve().parent.parent

TINY = dict(d_model=32, num_blocks=2, num_heads=2, context_length=32, dropout=0.0, batch_size=8,
            max_iters=60, eval_interval=20, eval_iters=4, log_interval=5, tokenizer="byte",
            learning_rate=3e-3, num_threads=1)  # one core per test: pytest -n 2 runs two at once


# Property tests draw the same examples on every run: a failure found once is found again.
settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.load_profile("deterministic")


@pytest.fixture(autouse=True, scope="session")
def _token_cache(tmp_path_factory) -> None:
    os.environ["GPT_TUI_CACHE"] = str(tmp_path_factory.mktemp("token-cache"))
    os.environ["GPT_TUI_PRESETS"] = str(tmp_path_factory.mktemp("presets"))  # never the user's own
    os.environ["GPT_TUI_KEYMAP"] = str(tmp_path_factory.mktemp("keys") / "keymap.toml")
    os.environ["GPT_TUI_SETTINGS"] = str(tmp_path_factory.mktemp("settings") / "settings.toml")


@pytest.fixture(autouse=True, scope="session")
def _pilot_idle_wait_bounded():
    """Textual's pilot.press waits after each key, twice, until the process's CPU goes idle, for
    up to 1 s each time. While the app trains in its own thread the CPU never goes idle, so every
    key that started or resumed a run cost 2 s of training that no test asked for (54 keys and
    64 s in one suite run). That the key has been handled when press returns is the next
    fixture's wait, which does not depend on the CPU."""
    patch = pytest.MonkeyPatch()
    for module in (textual.app, textual.pilot):
        patch.setattr(module, "wait_for_idle", functools.partial(module.wait_for_idle, max_sleep=0.2))
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _pilot_press_waits_for_the_keys_effects():
    """Textual's pilot.press waits for the messages each widget had queued when it looked. A key
    goes from the app to the focused widget and bubbles up through its parents' queues, so on a
    loaded machine press could return before the key's binding ran, or before the screen it pushed
    had mounted (a Runs table with 0 of its 2 rows). So press goes on waiting until the key's route
    (the app, the focused widget and its parents) holds no message and the screen on top has
    mounted, after each key: for 1 s at the most, as an app that trains is never quite quiet."""
    press_keys = textual.app.App._press_keys

    def busy(app) -> bool:
        if not app.is_running or not app._screen_stack:
            return False
        route = [app, app.screen, *(app.focused.ancestors_with_self if app.focused else ())]
        return not app.screen.is_mounted or any(pump._message_queue.qsize() for pump in route)

    async def press_and_wait(app, keys) -> None:
        for key in keys:  # F2 then space: the space goes to the Runs screen once it has mounted
            await press_keys(app, [key])
            deadline = time.monotonic() + 1
            while busy(app) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    patch = pytest.MonkeyPatch()
    patch.setattr(textual.app.App, "_press_keys", press_and_wait)
    yield
    patch.undo()


def processes_under(path: Path) -> list[psutil.Process]:
    """The live processes whose command line names ``path`` or a path below it: the runs, apps
    and terminals a test started there (every test's files live under its own tmp_path)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.pid != os.getpid() and process.info["status"] != psutil.STATUS_ZOMBIE and any(
                    str(path) in arg for arg in process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


def end_processes_under(path: Path, grace: float = 5.0) -> list[str]:
    """End what a test left running under ``path`` (SIGTERM, then SIGKILL); the command lines
    of those that had to be ended."""
    left = processes_under(path)
    said = []
    for process in left:
        try:
            said.append(" ".join(process.cmdline())[:200])
            process.terminate()
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(left, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    return said


@pytest.fixture(autouse=True, scope="session")
def _nothing_left_running(tmp_path_factory):
    """The suite fails if a process it started outlives it (each is ended here either way)."""
    yield
    left = end_processes_under(tmp_path_factory.getbasetemp(), grace=10)
    if left:
        pytest.fail("processes the tests started were still running at the end:\n  " + "\n  ".join(left))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A few KB slice of the bundled order names: enough to learn from in 60 steps."""
    path = tmp_path_factory.mktemp("data") / "orders.txt"
    lines = (REPO / "data" / "orders.txt").read_text(encoding="utf-8").splitlines()[:400]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(corpus, tmp_path) -> TrainConfig:
    return config_from_dict({**TINY, "data": str(corpus), "out_dir": str(tmp_path / "runs")})


def make_config(base: TrainConfig, **changes) -> TrainConfig:
    return config_from_dict({**base.to_dict(), **changes})


@pytest.fixture
def app_config(tiny_config) -> TrainConfig:
    """A run the app trains in a few seconds."""
    return make_config(tiny_config, max_iters=40, checkpoint_interval=0)
