"""Notifications: the user's notify_command gets each notable event as JSON, never slows or fails
the run, and never comes from a run's files; the app rings the terminal when its run ends."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import tui_trainer.engine.notify as notify
from tui_trainer.cli import main
from tui_trainer.engine.events import LogMessage, RunFinished
from tui_trainer.engine.notify import notable
from tui_trainer.engine.trainer import Trainer
from tui_trainer.ui.terminal_notify import notification_sequences

from .conftest import REPO, make_config

sys.path.insert(0, str(REPO / "benchmarks"))
from pty_terminal import PtyApp  # noqa: E402


def lines(path: Path, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            break
        time.sleep(0.05)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_headless_run_gives_its_end_to_the_command_as_json(tiny_config, tmp_path):
    got = tmp_path / "got.jsonl"
    trainer = Trainer(make_config(tiny_config, max_iters=10, notify_command=f"cat >> {got}"),
                      run_dir=tmp_path / "run")
    result = trainer.run()
    assert isinstance(result, RunFinished)
    [record] = lines(got, 1)
    assert record["event"] == "end" and record["status"] == "finished" and record["step"] == 10
    assert record["run_dir"] == str(tmp_path / "run") and record["run_name"] == tiny_config.run_name
    assert "notify_command" not in (tmp_path / "run" / "config.toml").read_text()  # never stored


def test_notify_levels():
    from tui_trainer.engine.events import RolledBack, RunFailed, SpikeDetected, StepMetrics

    end, failed = RunFinished(1, "finished", "", 1.0, "r"), RunFailed(1, "oom", "m", "r")
    rolled, warned = RolledBack(3, 1, 1e-3, 5e-4, "halved"), SpikeDetected(3, 9.0, 2.0, None, "x", "warn")
    step = StepMetrics(1, 1.0, 1e-3, 1.0, 1.0, 1.0)
    assert [notable(e, "end") for e in (end, failed, rolled, warned, step)] == [True, True, False, False, False]
    assert [notable(e, "all") for e in (end, failed, rolled, warned, step)] == [True, True, True, True, False]
    assert not any(notable(e, "off") for e in (end, failed, rolled, warned))


def test_a_slow_command_never_delays_the_run_and_a_failing_one_is_logged(tiny_config, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "COMMAND_TIMEOUT", 1.0)
    events: list = []
    slow = Trainer(make_config(tiny_config, max_iters=5, notify_command="sleep 30"), on_event=events.append,
                   run_dir=tmp_path / "slow")
    started = time.monotonic()
    assert isinstance(slow.run(), RunFinished) and time.monotonic() - started < 20  # the run does not wait
    notifier = slow.listeners[-1]
    notifier.wait(5)
    assert time.monotonic() - started < 25 and not any(t.is_alive() for t in notifier.threads)
    failing = Trainer(make_config(tiny_config, max_iters=5, notify_command="echo no route to host >&2; exit 3"),
                      on_event=events.append, run_dir=tmp_path / "failing")
    failing.run()
    failing.listeners[-1].wait(5)
    warnings = [e.text for e in events if isinstance(e, LogMessage) and e.level == "warning"]
    assert any("did not end within 1 s" in text for text in warnings)
    assert any("exited with 3: no route to host" in text for text in warnings)
    recorded = [json.loads(line) for line in (tmp_path / "failing" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["event"] == "log" and "exited with 3" in r["text"] for r in recorded)  # after the end line


def test_a_stored_command_never_runs_on_resume_fork_or_watch(tiny_config, tmp_path, capsys):
    """A run folder copied from someone else must not run a command here."""
    import torch

    run_dir, pwned = tmp_path / "run", tmp_path / "pwned"
    Trainer(make_config(tiny_config, max_iters=5), run_dir=run_dir).run()
    # The folder's files name a command, as a hand-edited or hostile copy would.
    config = (run_dir / "config.toml").read_text() + f'notify_command = "touch {pwned}"\n'
    (run_dir / "config.toml").write_text(config)
    ckpt = torch.load(run_dir / "model.ckpt", weights_only=True)
    ckpt["config"]["notify_command"] = f"touch {pwned}"
    torch.save(ckpt, run_dir / "model.ckpt")
    assert main(["train", "--resume", str(run_dir), "--set", "max_iters=8"]) == 0
    assert main(["train", "--fork", str(run_dir), "--out", str(tmp_path / "fork"), "--set", "max_iters=10"]) == 0
    from tui_trainer.engine.runs import read_run_config

    assert "notify_command" not in read_run_config(run_dir)  # what watch and the Runs screen read
    time.sleep(0.5)
    assert not pwned.exists()
    # the user's own settings file does name one: that runs
    got = tmp_path / "mine.jsonl"
    settings = Path(__import__("os").environ["GPT_TUI_SETTINGS"])
    settings.write_text(f'notify_command = "cat >> {got}"\n')
    try:
        assert main(["train", "--resume", str(run_dir), "--set", "max_iters=10"]) == 0
        assert lines(got, 1)[0]["event"] == "end" and not pwned.exists()
    finally:
        settings.unlink()


def test_the_escape_sequences_are_osc_9_and_777_and_wrapped_for_tmux():
    plain = notification_sequences("run; done", "step 5\x1b[31m")
    assert plain == "\x1b]9;run, done: step 5‹1b›[31m\x07\x1b]777;notify;run, done;step 5‹1b›[31m\x07"
    wrapped = notification_sequences("t", "b", tmux=True)
    assert wrapped.startswith("\x1bPtmux;\x1b\x1b]9;t: b\x07\x1b\\") and wrapped.count("\x1bPtmux;") == 2


@pytest.mark.parametrize("level", ["end", "off"])
def test_the_app_notifies_the_terminal_when_its_run_ends(level, corpus, tmp_path):
    """Read from a pty this test owns: OSC 9 and the bell once the run ends, not with notify off."""
    run_dir = tmp_path / "run"
    app = PtyApp([sys.executable, "-m", "tui_trainer", "--start", "--data", str(corpus), "--out", str(run_dir),
                  "--config", str(REPO / "configs" / "tiny.toml"), "--set", "max_iters=20", "--set", "num_threads=1",
                  "--set", f"notify={level}"])
    try:
        deadline = time.monotonic() + 60
        while '"event": "end"' not in ((run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl")
                                       .exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # the app's next redraws carry what it wrote after the end
        seen = app.tail
        app.press("ctrl+q")
        assert app.wait(30) == 0
    finally:
        app.kill()
    assert (b"\x1b]9;run finished: step 20" in seen) == (level == "end")
    assert (b"\x1b]777;notify;run finished;" in seen) == (level == "end")


def test_nothing_reaches_the_terminal_after_the_app_detached(corpus, tmp_path):
    run_dir = tmp_path / "run"
    app = PtyApp([sys.executable, "-m", "tui_trainer", "--start", "--data", str(corpus), "--out", str(run_dir),
                  "--config", str(REPO / "configs" / "tiny.toml"), "--set", "max_iters=600", "--set", "num_threads=1",
                  "--set", "log_interval=5"])
    try:
        deadline = time.monotonic() + 60
        while '"event": "step"' not in ((run_dir / "metrics.jsonl").read_text() if (run_dir / "metrics.jsonl")
                                        .exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
        import os

        os.write(app.fd, b"\x1b[21~")  # F10: detach
        assert app.wait(120) == 0  # the process ends with its run, which it trained detached
        seen = app.tail
    finally:
        app.kill()
    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "finished" and status["detached"] is True
    after = seen.split(b"gpt-tui: detached")[-1]
    assert b"gpt-tui: detached" in seen and b"\x1b]9;" not in after and b"\x07" not in after
