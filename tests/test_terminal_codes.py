"""Text from a user or a file is data: no prompt, path, run name, config value or log line can
send a control code to the terminal, on the CLI or in the app."""
from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st
from textual.widgets import Input

from tui_trainer.cli import main
from tui_trainer.engine.events import ChangeRefused, LogMessage, RunFailed
from tui_trainer.engine.safe_text import visible
from tui_trainer.event_text import event_line
from tui_trainer.ui.app import create_app
from tui_trainer.ui.runs_screen import RunsScreen

from .test_app import SIZE, press, wait_for

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
EVIL = "\x1b[31mRED\x1b]0;pwned\x07\x9b2J"


@given(st.text())
def test_every_event_line_shows_control_characters_and_never_sends_them(text):
    for event in (LogMessage("error", text), ChangeRefused(3, text, text, text), RunFailed(3, "input", text, text)):
        assert not CONTROL.search(event_line(event))
    assert not CONTROL.search(visible(text)) and visible(visible(text)) == visible(text)


def test_the_cli_refuses_such_a_value_and_names_it_without_the_code(capsys, corpus):
    assert main(["train", "--data", str(corpus), f"--set=sample_prompt={EVIL}"]) == 2
    err = capsys.readouterr().err
    assert "sample_prompt" in err and "control characters" in err and not CONTROL.search(err.replace("\n", ""))


def test_runs_lists_a_run_named_with_codes_as_text(capsys, tmp_path):
    run = tmp_path / f"evil{EVIL}"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"status": EVIL, "device": EVIL, "host": EVIL}))
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "‹1b›[31mRED" in out and not CONTROL.search(out.replace("\n", "").replace("\t", ""))


async def test_the_app_shows_codes_from_fields_files_and_runs_as_text(app_config, tmp_path):
    root = tmp_path / "runs"
    run = root / f"evil{EVIL}"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"status": "finished", "device": EVIL, "host": EVIL}))
    (run / "metrics.jsonl").write_text(json.dumps({"event": "log", "step": 0, "time": 1.0, "level": "warning",
                                                   "text": EVIL}) + "\n")
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        prompt = board.form.query_one("#f-sample_prompt", Input)
        prompt.value = EVIL  # as a preset, a run's config or a paste would put it there
        board.samples.query_one("#sample-prompt", Input).value = EVIL
        app.notify(EVIL, title=EVIL)
        await pilot.pause()
        assert not CONTROL.search(prompt.value) and "sample_prompt" not in board.form.problems
        board.form.load_values({"run_name": EVIL})
        await press(pilot, "f2")
        assert isinstance(app.screen, RunsScreen)
        screens = [app.export_screenshot()]
        await press(pilot, "w")  # the log line from its metrics, its device in the Device tab, its name in the title
        await wait_for(pilot, lambda: board.state == "ended")
        board.tabs.active = "tab-device"
        await pilot.pause()
        screens.append(app.export_screenshot())
        assert any("‹1b›" in text for _, text in board.log_panel.messages)
    for svg in screens:
        assert "‹1b›" in svg and not CONTROL.search(svg.replace("\n", "").replace("\t", ""))
