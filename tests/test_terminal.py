"""gpt-tui in a real terminal (tmux): start, read the screen, ctrl+s, resize, quit, hang up."""
from __future__ import annotations

import json
import os
import shlex
import signal
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch

from .conftest import TINY, end_processes_under

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, tmp_path: Path):
        self.socket = f"gpt-tui-test-{uuid.uuid4().hex[:8]}"
        self.session = "app"

    def __call__(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=False).stdout

    def start(self, command: list[str], width: int, height: int, rc_file: Path | None = None) -> None:
        env = f"GPT_TUI_CACHE={shlex.quote(os.environ['GPT_TUI_CACHE'])} TERM=xterm-256color"
        keep_rc = f"; echo $? > {shlex.quote(str(rc_file))}" if rc_file else ""
        self("new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
             f"env {env} {shlex.join(command)}{keep_rc}; sleep 30")

    def screen(self) -> str:
        """The screen's text with wrapped lines joined (-J): a line reads as printed, whatever
        the terminal's width, the temp path's length or the pid's digits."""
        return self("capture-pane", "-p", "-J", "-t", self.session)

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", self.session, *keys)

    def kill(self) -> None:
        self("kill-server")


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def last_step(run_dir: Path) -> int:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return -1
    # only whole lines: the run may be writing the last one as it is read
    lines = path.read_text().split("\n")[:-1]
    steps = [json.loads(line)["step"] for line in lines if '"event": "step"' in line]
    return max(steps, default=-1)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@pytest.fixture
def tmux(tmp_path):
    session = Tmux(tmp_path)
    yield session
    session.kill()
    end_processes_under(tmp_path)  # a detached app outlives its terminal: never the suite


def app_command(corpus: Path, run_dir: Path) -> list[str]:
    sets = [f"--set={k}={v}" for k, v in {**TINY, "max_iters": 1000000, "log_interval": 2}.items()]
    return [sys.executable, "-m", "tui_trainer", "--start", "--data", str(corpus), "--out", str(run_dir), *sets]


def test_real_terminal_start_save_resize_quit(tmux, corpus, tmp_path):
    run_dir = tmp_path / "run"
    tmux.start(app_command(corpus, run_dir), 120, 40)
    wait_until(lambda: last_step(run_dir) >= 10)
    wait_until(lambda: "running" in tmux.screen() and "loss" in tmux.screen())
    assert "Save checkpoint" in tmux.screen()
    tmux.keys("C-s")
    wait_until(lambda: (run_dir / "model.ckpt").exists())
    saved = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert saved["step"] >= 10
    tmux("resize-window", "-t", tmux.session, "-x", "80", "-y", "24")
    time.sleep(0.5)
    screen = tmux.screen()
    assert len(screen.splitlines()[0]) <= 80 and "running" in screen
    step = last_step(run_dir)
    wait_until(lambda: last_step(run_dir) > step + 10)  # training goes on at 80x24
    tmux.keys("C-q")
    wait_until(lambda: "Save a checkpoint before quitting?" in tmux.screen())
    tmux.keys("s")
    wait_until(lambda: json.loads((run_dir / "run.json").read_text())["status"] == "stopped")
    final = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert final["step"] >= last_step(run_dir)
    wait_until(lambda: gone(json.loads((run_dir / "run.json").read_text())["pid"]), timeout=20)


def test_closing_the_terminal_saves(tmux, corpus, tmp_path):
    run_dir = tmp_path / "run"
    tmux.start(app_command(corpus, run_dir), 100, 30)
    wait_until(lambda: last_step(run_dir) >= 10)
    tmux("kill-session", "-t", tmux.session)  # the pty closes: the app gets SIGHUP
    wait_until(lambda: json.loads((run_dir / "run.json").read_text())["status"] == "stopped", timeout=30)
    saved = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert saved["step"] >= last_step(run_dir)
    wait_until(lambda: gone(json.loads((run_dir / "run.json").read_text())["pid"]), timeout=20)  # no orphan left


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_app_stops_saves_and_exits_on_signals(sig, code, tmux, corpus, tmp_path):
    run_dir, rc_file = tmp_path / "run", tmp_path / "rc"
    tmux.start(app_command(corpus, run_dir), 100, 30, rc_file)
    wait_until(lambda: last_step(run_dir) >= 10)
    os.kill(json.loads((run_dir / "run.json").read_text())["pid"], sig)
    wait_until(lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=30)
    assert int(rc_file.read_text()) == code
    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "stopped"
    saved = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert saved["step"] == status["last_step"] >= last_step(run_dir) >= 10
    assert f"received {signal.Signals(sig).name}" in (run_dir / "metrics.jsonl").read_text()


def test_typing_a_bracket_while_training_shows_an_error_and_training_goes_on(tmux, corpus, tmp_path):
    """The first scenario of the crash report: Tab lands on the first live field, `[x=` is typed."""
    run_dir = tmp_path / "run"
    tmux.start(app_command(corpus, run_dir), 120, 40)
    wait_until(lambda: last_step(run_dir) >= 10)
    wait_until(lambda: "running" in tmux.screen())
    tmux.keys("Tab")
    time.sleep(0.5)  # as a person types: the field selects its text when focus lands
    tmux.keys("-l", "[x=")
    wait_until(lambda: "dropout = '[x=': must" in tmux.screen(), timeout=15)  # the field's error line
    step = last_step(run_dir)
    wait_until(lambda: last_step(run_dir) > step + 10)  # training goes on, under a live UI
    assert "running" in tmux.screen() and "dropout = '[x=': must" in tmux.screen()
    tmux.keys("F7")
    wait_until(lambda: json.loads((run_dir / "run.json").read_text())["status"] == "stopped")


CRASHING_APP = """
import sys
from tui_trainer.cli import main
from tui_trainer.ui.dashboard import DashboardScreen

def broken(self):
    raise RuntimeError("a bug in a key handler [x=")

DashboardScreen.action_toggle_log_y = broken  # F9 now raises inside the UI, as any UI bug would
sys.exit(main(sys.argv[1:]))
"""


def test_a_ui_crash_stops_saves_and_exits_1_with_one_line(tmux, corpus, tmp_path):
    """The crash barrier: the run stops at a step boundary and saves, run.json says why, the
    traceback lands in RUN_DIR/error.log, and the terminal gets one line and exit code 1."""
    run_dir, rc_file, script = tmp_path / "run", tmp_path / "rc", tmp_path / "crashing_app.py"
    script.write_text(CRASHING_APP)
    command = [sys.executable, str(script), *app_command(corpus, run_dir)[3:]]
    tmux.start(command, 120, 40, rc_file)
    wait_until(lambda: last_step(run_dir) >= 10)
    tmux.keys("F9")
    wait_until(lambda: rc_file.exists() and rc_file.read_text().strip(), timeout=30)
    assert int(rc_file.read_text()) == 1
    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "stopped" and "dashboard failed" in status["reason"]
    saved = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert saved["step"] == status["last_step"] >= last_step(run_dir) >= 10
    assert "a bug in a key handler" in (run_dir / "error.log").read_text()
    screen = tmux("capture-pane", "-p", "-J", "-t", tmux.session)  # -J: the line as printed, unwrapped
    assert f"traceback in {run_dir / 'error.log'}" in screen and f"gpt-tui train --resume {run_dir}" in screen
    assert "Traceback" not in screen


def pid_of(run_dir: Path) -> int:
    return json.loads((run_dir / "run.json").read_text())["pid"]


def stop_from_a_watcher(run_dir: Path) -> None:
    """What `gpt-tui watch RUN_DIR` then F7 does, through the same app."""
    import asyncio

    from tui_trainer.engine.config import TrainConfig
    from tui_trainer.ui.app import create_app

    async def watch_and_stop() -> None:
        app = create_app(TrainConfig(), watch=run_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.dashboard.state != "running":
                await pilot.pause(0.1)
            assert app.dashboard.plot.raw.total > 0  # the whole history so far, reattached
            await pilot.press("f7")
            while app.dashboard.state != "ended":
                await pilot.pause(0.1)
    asyncio.run(watch_and_stop())


def trains_on_detached(run_dir: Path) -> None:
    """The app's process lives on without its terminal, still training, marked detached."""
    pid = pid_of(run_dir)
    step = last_step(run_dir)
    wait_until(lambda: last_step(run_dir) > step + 4)
    assert not gone(pid) and json.loads((run_dir / "run.json").read_text())["detached"] is True
    stop_from_a_watcher(run_dir)
    wait_until(lambda: gone(pid), timeout=30)  # it exits once its run has ended
    saved = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    assert saved["step"] >= last_step(run_dir)


def test_f10_detaches_and_a_watcher_comes_back_to_the_run(tmux, corpus, tmp_path):
    run_dir = tmp_path / "run"
    tmux.start(app_command(corpus, run_dir), 120, 40)
    wait_until(lambda: last_step(run_dir) >= 10)
    tmux.keys("F10")
    wait_until(lambda: f"come back with: gpt-tui watch {run_dir}" in tmux.screen())
    tmux("kill-session", "-t", tmux.session)  # then log off: the hang-up that follows is ignored
    trains_on_detached(run_dir)
    assert '"event": "detached"' in (run_dir / "metrics.jsonl").read_text()  # part of the run's record


def test_with_on_hangup_detach_a_closed_terminal_leaves_the_run_training(tmux, corpus, tmp_path):
    run_dir = tmp_path / "run"
    tmux.start([*app_command(corpus, run_dir), "--set=on_hangup=detach"], 100, 30)
    wait_until(lambda: last_step(run_dir) >= 10)
    tmux("kill-session", "-t", tmux.session)  # the pty closes: SIGHUP
    trains_on_detached(run_dir)
