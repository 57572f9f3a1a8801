"""One writer per run directory: every writer refuses a run another process holds, changes no
byte of it, and the lock goes with its holder, even through kill -9."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_trainer.cli import main
from tui_trainer.engine.errors import RunDirError
from tui_trainer.engine.launch import fork_args, prepare_run_dir, resume_args
from tui_trainer.engine.runlock import RunLock
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config

HOLD = """
import sys, time
from tui_trainer.engine.runlock import RunLock
locks = [RunLock.acquire(path) for path in sys.argv[1:]]
print("held", flush=True)
time.sleep(600)
"""


def folder_state(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``path`` with its bytes and modification time."""
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture
def hold():
    """Start a process that holds the locks of the folders given; it is killed in teardown."""
    holders: list[subprocess.Popen] = []

    def start(*paths: Path) -> subprocess.Popen:
        holder = subprocess.Popen([sys.executable, "-c", HOLD, *map(str, paths)], stdout=subprocess.PIPE, text=True)
        holders.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder
    yield start
    for holder in holders:
        holder.kill()
        holder.wait(10)


@pytest.fixture
def trained(tiny_config, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    Trainer(make_config(tiny_config, max_iters=10, eval_interval=10), run_dir=run_dir).run()
    return run_dir


def test_every_writer_refuses_a_held_run_and_changes_nothing(trained, tiny_config, tmp_path, hold, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    holder = hold(trained, fresh)
    before, before_fresh = folder_state(trained), folder_state(fresh)
    writers = {
        "train --resume": ["train", "--resume", str(trained), "--set", "max_iters=20"],
        "train --fork --out": ["train", "--fork", str(trained), "--out", str(fresh), "--set", "max_iters=20"],
        "train --out": ["train", "--data", tiny_config.data, "--config", str(trained / "config.toml"),
                        "--out", str(fresh)],
    }
    for name, argv in writers.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"is being written by process {holder.pid}" in err[0], (name, err)
    # torchrun's launchers, for the CLI and the app: refused before any rank starts
    for launch in (lambda: resume_args(trained, trained, {}), lambda: fork_args(trained, {}, fresh),
                   lambda: prepare_run_dir(tiny_config, fresh)):
        with pytest.raises(RunDirError, match=f"process {holder.pid}"):
            launch()
    # the app's own trainer (F5, resume and fork all build one)
    with pytest.raises(RunDirError, match=f"process {holder.pid}"):
        Trainer(RunPlan.resume(trained, {"max_iters": 20}))
    with pytest.raises(RunDirError, match=f"process {holder.pid}"):
        Trainer(RunPlan.fork(trained, {"max_iters": 20}, run_dir=fresh))
    assert folder_state(trained) == before and folder_state(fresh) == before_fresh


def test_kill_9_of_the_holder_frees_the_run(trained, hold):
    holder = hold(trained)
    with pytest.raises(RunDirError):
        RunLock.acquire(trained)
    holder.kill()  # SIGKILL: no handler, no cleanup; the kernel drops the lock
    holder.wait(10)
    assert main(["train", "--resume", str(trained), "--set", "max_iters=14"]) == 0


def test_one_process_resumes_its_own_run_once_the_first_trainer_is_done(trained):
    """The lock goes when run() returns: a later Trainer of this process takes the run at once."""
    started = time.monotonic()
    result = Trainer(RunPlan.resume(trained, {"max_iters": 14})).run()
    assert result.step == 14 and time.monotonic() - started < 30


async def test_the_app_shows_who_holds_the_run_and_keeps_working(trained, tiny_config, hold):
    from tui_trainer.ui.app import create_app

    from .test_app import press, wait_for

    holder = hold(trained)
    before = folder_state(trained)
    app = create_app(tiny_config)
    async with app.run_test(size=(120, 40)) as pilot:
        app.dashboard.choices.resume_run(trained)  # the Runs screen's Resume: it ended, so raise max_iters
        app.dashboard.form.query_one("#f-max_iters").value = "20"
        await pilot.pause()
        await press(pilot, "f5")
        await wait_for(pilot, lambda: any(f"process {holder.pid}" in text for _, text in app.dashboard.log_panel.messages))
        assert app.dashboard.state == "idle"
    assert folder_state(trained) == before
