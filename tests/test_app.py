"""Pilot tests of the app, through the same factory the CLI uses."""
from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import torch
from rich.text import Span
from textual import events
from textual.color import Color
from textual.widgets import Button, Input, Static

from tui_trainer.ui.app import create_app
from tui_trainer.ui.sessions.local_run import LocalRun
from tui_trainer.ui.widgets.log_panel import LogPanel
from tui_trainer.ui.widgets.loss_plot import LossPlot

from .conftest import make_config

SIZE = (120, 40)


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def press(pilot, *keys: str) -> None:
    """pilot.press, except while the app's own run trains: then pilot.press would wait for an idle
    CPU that never comes, so each key goes in as the terminal driver delivers it instead."""
    for key in keys:
        if pilot.app.dashboard.state != "running" or not isinstance(pilot.app.dashboard.session, LocalRun):
            await pilot.press(key)
            continue
        pilot.app._driver.send_message(events.Key(key, key if len(key) == 1 else {"space": " ", "enter": "\r"}.get(key)))
        await pilot.pause(0)


def log_text(app) -> str:
    return "\n".join(text for _, text in app.query_one(LogPanel).messages)


async def test_invalid_form_shows_rule_and_disables_start(app_config):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        assert not app.query_one("#start", Button).disabled
        await pilot.click("#f-d_model")
        await press(pilot, "end", "backspace", "backspace", "3", "3")  # d_model 32 -> 33
        await pilot.pause()
        error = app.query_one("#error-d_model", Static)
        assert error.display and "d_model 33 is not divisible by num_heads 2" in str(error.render())
        assert app.query_one("#start", Button).disabled
        await press(pilot, "f5")
        await pilot.pause()
        assert app.dashboard.state == "idle" and app.dashboard.session is None
        app.query_one("#f-d_model", Input).value = "32"
        await pilot.pause()
        assert not app.query_one("#start", Button).disabled and not error.display


async def test_start_trains_and_plot_fills(app_config):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        plot = app.query_one(LossPlot)
        assert plot.raw.total == 8 and len(plot.eval_val) == 3  # log every 5 of 40 steps; evals at 0, 20, 40
        assert plot.eval_val.ys[-1] < plot.eval_val.ys[0]
        run_dir = Path(app.dashboard.run_dir)
        for name in ("config.toml", "metrics.jsonl", "model.ckpt", "best.ckpt"):
            assert (run_dir / name).exists()
        assert "finished at step 40" in log_text(app)
        await pilot.pause(0.3)
        assert "step 40/40" in str(app.query_one("#run-figures", Static).render())


async def test_pause_resume_stop_and_save(app_config):
    app = create_app(make_config(app_config, max_iters=100000, log_interval=1))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.progress.step >= 3)
        assert app.screen.active_bindings["f6"].binding.description == "Pause"
        await press(pilot, "f6")
        await wait_for(pilot, lambda: app.dashboard.state == "paused")
        # the footer and the palette name what F6 does now
        assert app.screen.active_bindings["f6"].binding.description == "Resume"
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Resume training" in titles and "Pause training" not in titles
        step = app.dashboard.progress.step
        await pilot.pause(0.3)
        assert app.dashboard.progress.step == step
        await press(pilot, "ctrl+s")  # saving works while paused
        ckpt = Path(app.dashboard.run_dir) / "model.ckpt"
        await wait_for(pilot, ckpt.exists)
        saved = torch.load(ckpt, weights_only=True)
        assert saved["step"] == step and "model_state_dict" in saved
        await press(pilot, "f6")
        await wait_for(pilot, lambda: app.dashboard.progress.step > step + 2)
        await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        stopped_at = app.dashboard.progress.step
        assert torch.load(ckpt, weights_only=True)["step"] == stopped_at
        figures = app.dashboard.progress._figures
        # the ended run's figures stay, less the time left, which was a countdown to nothing
        await wait_for(pilot, lambda: "elapsed" in str(figures.render()) and "eta" not in str(figures.render()),
                       timeout=10)
        # after a stop the model stays in memory: sampling and saving still work
        await press(pilot, "f8")
        await wait_for(pilot, lambda: app.query_one("#sample-view").pages)
        await press(pilot, "ctrl+s")
        await wait_for(pilot, lambda: log_text(app).count(f"saved {ckpt} at step {stopped_at}") >= 2)


async def test_engine_error_is_shown_and_app_stays_alive(app_config, monkeypatch):
    from tui_trainer.engine import trainer as trainer_mod

    def broken(self, lr, measure):
        raise RuntimeError("simulated kernel failure")

    monkeypatch.setattr(trainer_mod.Trainer, "_train_step", broken)
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        assert "RuntimeError: simulated kernel failure" in log_text(app)
        assert app.is_running
        monkeypatch.undo()
        await press(pilot, "f5")  # the app is usable: a new run works
        await wait_for(pilot, lambda: "finished at step 40" in log_text(app))


async def test_bad_data_in_form_reported_in_app(app_config, tmp_path):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        assert not app.query("#error-data")  # a field's problem line is made when it first has one
        app.query_one("#f-data", Input).value = str(tmp_path / "missing.txt")
        await wait_for(pilot, lambda: app.query("#error-data") and app.query_one("#error-data").display and
                       "does not exist" in str(app.query_one("#error-data").render()))
        await press(pilot, "f5")
        await wait_for(pilot, lambda: "does not exist" in log_text(app))
        assert app.dashboard.state == "idle" and app.is_running
        app.query_one("#f-data", Input).value = ""  # the bundled corpus: the line goes once it is read
        await wait_for(pilot, lambda: not app.query_one("#error-data", Static).display)


async def test_live_learning_rate_change(app_config):
    app = create_app(make_config(app_config, max_iters=100000, log_interval=1))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "running")
        lr_input = app.query_one("#f-learning_rate", Input)
        assert not lr_input.disabled and app.query_one("#f-d_model", Input).disabled
        lr_input.focus()
        await press(pilot, "enter")  # the value in force: nothing to ask the run for
        await pilot.pause(0.3)
        assert "asked for" not in log_text(app)
        lr_input.value = "0.0005"
        lr_input.focus()
        await press(pilot, "enter")
        await wait_for(pilot, lambda: "learning_rate 0.003 → 0.0005 (set in the app)" in log_text(app))
        assert not app.query_one("#field-learning_rate").has_class("pending")  # applied: in force now
        app.query_one("#f-max_iters", Input).value = "1"  # below the step reached: said as typed
        await pilot.pause()
        await wait_for(pilot, lambda: "the run is at step" in app.dashboard.form.problems.get("max_iters", ""), timeout=5)
        await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        lines = [json.loads(l) for l in (Path(app.dashboard.run_dir) / "metrics.jsonl").read_text().splitlines()]
        assert [l["lr"] for l in lines if l["event"] == "step"][-1] == 0.0005
        assert "max_iters" not in app.dashboard.form.problems  # the run has ended: 1 is a valid max_iters again


async def test_command_palette_offers_the_training_actions(app_config):
    app = create_app(app_config)
    async with app.run_test(size=SIZE):
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Start training" in titles and "Toggle log-scale loss axis" in titles
        assert "Save checkpoint" not in titles  # nothing to save before a run
        assert titles.count("Quit") == 1 == titles.count("Keys")  # the app's Quit, which asks to save a run


async def test_keys_typed_together_with_tab_go_to_the_field_tab_moves_to(app_config):
    """A typist's or a laggy SSH link's keys arrive together: each goes where the focus is once
    the keys before it have acted, never into the field that Tab left."""
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        fields = [app.query_one(f"#f-{key}", Input) for key in ("dropout", "batch_size", "max_iters")]
        fields[0].focus()  # which selects its text: the first key typed replaces it
        await pilot.pause()
        # Only keys handled on arrival: a key bound below the app (ctrl+a is the field's "home")
        # bubbles up and acts after the keys behind it, at its own pace, and could still be on its
        # way when the test ends.
        for key, char in [("a", "a"), ("b", "b"), ("tab", "\t"), ("5", "5"), ("tab", "\t"),
                          ("7", "7"), ("shift+tab", None), ("9", "9")]:
            app._driver.send_message(events.Key(key, char))  # all at once, as they come from the terminal
        await wait_for(pilot, lambda: app.focused is fields[1] and fields[1].value == "9", timeout=10)
        assert [field.value for field in fields] == ["ab", "9", "7"]


async def test_f1_shows_every_key_escape_hides_it_and_ctrl_c_says_how_to_quit(app_config):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        app.set_focus(None)  # in a field, ctrl+c copies its text
        await pilot.press("ctrl+c")
        assert [n.message for n in app._notifications] == ["^q quits (during a run it asks to save first)"]
        for key, panels in [("f1", 1), ("f1", 0), ("f1", 1), ("escape", 0)]:
            await pilot.press(key)
            assert len(app.screen.query("HelpPanel")) == panels, key
        await pilot.press("f2")  # on another screen too
        await wait_for(pilot, lambda: app.screen is not app.dashboard)
        await pilot.press("f1")
        assert len(app.screen.query("HelpPanel")) == 1


async def test_a_users_keymap_remaps_keys_by_binding_id(app_config, tmp_path, monkeypatch):
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('start = "f11"\nstrat = "f3"\nsamples.entropy = "x"\n'
                      'stop = "ctrl+q"\npause = "not a key!!"\nruns.back = "f4"\nsave = "s"\n'
                      'log-y = "minus"\nquit = "enter"\n')
    monkeypatch.setenv("GPT_TUI_KEYMAP", str(keymap))
    app = create_app(make_config(app_config, max_iters=4))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f11")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        notes = [note.message for note in app._notifications]
        assert any("'strat' is not a binding id" in note and str(keymap) in note for note in notes)
        assert not any("'samples" in note for note in notes)  # a dotted id is a TOML table: read back as the id
        # a key with two actions at once, or no key at all, is refused by name; the defaults stay
        assert any("stop = 'ctrl+q' gives 'ctrl+q' two actions" in note for note in notes)
        assert any("pause = 'not a key!!'" in note for note in notes)
        assert any("save = 's' would act on that key typed into any field" in note for note in notes)
        assert any("quit = 'enter' would act on that key typed into any field" in note for note in notes)
        assert not any("log-y = " in note for note in notes)  # "minus" is Textual's name for the - key
        assert not any("runs.back = " in note for note in notes)  # f4 on the Runs screen: fit-batch is not live there
        assert "f7" in app.get_key_display(next(b for b in app.dashboard.BINDINGS if b.id == "stop")).lower()
        view = app.query_one("#sample-view")
        view.focus()
        await pilot.press("x")
        assert view.by == "entropy"


async def test_corpus_figures_from_the_cli_are_not_read_again(app_config):
    app = create_app(app_config, corpus_figures=(12345, 67))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        assert "12,345 tokens, vocab 67" in str(app.query_one("#derived").render())
        assert not [w for w in app.workers if w.group == "corpus"]
        app.query_one("#f-vocab").value = "max"  # a real change reads the corpus in the background
        await wait_for(pilot, lambda: "12,345 tokens" not in str(app.query_one("#derived").render()))


async def test_tokenizing_progress_shows_until_the_corpus_is_cached(app_config):
    from tui_trainer.ui.messages import TokenizeProgress

    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        # the form's own corpus read first: its last progress message would clear the line this test posts
        await wait_for(pilot, lambda: "tokens, vocab" in str(app.dashboard.query_one("#derived").render()))
        app.dashboard.post_message(TokenizeProgress(5 << 20, 40 << 20))
        await wait_for(pilot, lambda: "tokenizing the corpus into the cache: 5/40 MB" in
                       str(app.query_one("#run-figures").render()))
        app.dashboard.post_message(TokenizeProgress(40 << 20, 40 << 20))
        await wait_for(pilot, lambda: "tokenizing" not in str(app.query_one("#run-figures").render()))


def test_progress_figures_drop_the_least_important_to_fit():
    from tui_trainer.ui.widgets.progress_panel import fit_lines

    parts = [(0, "step 50/400"), (7, "elapsed 0:00:08"), (4, "eta 0:00:58"), (3, "25,164 tok/s"), (5, "MFU 53.6%"),
             (6, "lr 9.8e-04"), (1, "loss 4.3680"), (2, "val 4.1815"), (8, "best 4.1815")]
    wide = fit_lines(parts, 200, 2)
    assert wide.count("\n") == 0 and "best 4.1815" in wide
    narrow = fit_lines(parts, 48, 2).splitlines()
    assert len(narrow) == 2 and all(len(line) <= 48 for line in narrow)
    text = " ".join(narrow)
    assert "loss 4.3680" in text and "val 4.1815" in text and "best" not in text and "elapsed" not in text


async def test_legend_line_names_what_the_plot_draws(app_config):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        assert app.dashboard.plot_legend.text.plain == ""
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        legend = app.dashboard.plot_legend
        # on a loaded machine the legend can first show after the run has ended: its width is
        # known only once the layout that follows has run
        await wait_for(pilot, lambda: legend.text.plain.startswith("• train") and legend.content_size.width and
                       f"× best {app.dashboard.plot.best[1]:.3f}" in legend.text.plain)
        items = app.dashboard.plot.legend()
        assert [(mark, name) for mark, name, _ in items[:4]] == [("•", "train"), ("━", "EMA"), ("━", "eval train"),
                                                               ("━", "eval val")]
        assert items[4] == ("×", f"best {app.dashboard.plot.best[1]:.3f}", "red")
        shown = legend.text
        assert shown.spans[0] == Span(0, 2, "grey62")  # the mark alone, in the curve's colour
        assert all(len(line) <= legend.content_size.width for line in shown.plain.splitlines())


async def test_close_markers_keep_their_lines_and_never_overlap_labels(app_config):
    from tui_trainer.engine.events import HparamsChanged, StepMetrics

    app = create_app(app_config)
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.dashboard.plot
        for step in range(1, 400, 10):
            plot.add_event(StepMetrics(step, 4 - step / 200, 1e-3, 1.0, 1.0, 1.0))
            if step in (101, 131, 161):  # three columns apart: their labels would run into each other
                plot.add_event(HparamsChanged(step, {"learning_rate": [1e-3, 5e-4]}, "app"))
        plot.refresh()
        await pilot.pause()
        drawn = "\n".join(line.text for line in plot.render_lines(plot.region.reset_offset))
        assert drawn.count("learning_rate") == 1 and drawn.count("lea") == 1 and len(plot.markers) == 3


async def test_typing_a_data_path_reads_only_the_path_typed_once_typing_pauses(app_config, monkeypatch):
    """Every prefix used to be read: "." and "./" each tokenized the whole working folder."""
    import tui_trainer.engine.data as data

    read: list[str] = []
    real = data.build_corpus
    monkeypatch.setattr(data, "build_corpus", lambda path, *a, **k: (read.append(path), real(path, *a, **k))[1])
    app = create_app(app_config, corpus_figures=(1, 1))
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one("#f-data", Input)
        for text in (".", "./", app_config.data[:5], app_config.data):
            field.value = text
            await pilot.pause(0.1)
        await wait_for(pilot, lambda: read and "tokens" in str(app.query_one("#derived").render()))
        await pilot.pause(1.0)
    assert read == [app_config.data]


async def test_runs_screen_lists_the_folder_of_the_apps_out(app_config, tmp_path):
    from tui_trainer.ui.runs_screen import RunsScreen

    app = create_app(app_config, run_dir=tmp_path / "elsewhere" / "my-run")
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f2")
        assert isinstance(app.screen, RunsScreen) and app.screen.out_dir == tmp_path / "elsewhere"
        await press(pilot, "c")  # no run to compare: it says so and stays, nothing is "cleared"
        assert isinstance(app.screen, RunsScreen) and "no run to compare" in list(app._notifications)[-1].message
        assert "comparison cleared" not in log_text(app)


async def test_presets_never_overwrite_shipped_ones_ask_before_mine_and_load_invalid_ones_safely(
        app_config, tmp_path, monkeypatch):
    from textual.widgets import Select

    from tui_trainer.engine.presets import shipped_presets

    monkeypatch.setenv("GPT_TUI_PRESETS", str(tmp_path / "presets"))
    shipped = {name: path.read_bytes() for name, path in shipped_presets().items()}
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        name_field = app.query_one("#preset-name", Input)
        for name in ("", "tiny", "default", "a/b"):  # empty, shipped, shipped, not a name
            name_field.value = name
            app.query_one("#save-preset", Button).press()
            await pilot.pause()
        assert not (tmp_path / "presets").exists()
        name_field.value = "mine"
        name_field.focus()
        await press(pilot, "enter")  # Enter in the name saves, as the button does
        await wait_for(pilot, lambda: (tmp_path / "presets" / "mine.toml").exists())
        picker = app.query_one("#preset", Select)
        assert str(tmp_path / "presets" / "mine.toml") in [value for _, value in picker._options]  # at once
        app.query_one("#save-preset", Button).press()  # again: asks first
        await pilot.pause()
        assert "exists" in app.screen.question
        await press(pilot, "escape")
        # an invalid preset loads into the form with its problems shown, and nothing crashes
        (tmp_path / "presets" / "broken.toml").write_text('d_model = 33\nnum_heads = 2\nlearning_rate = "fast"\n')
        app.dashboard.form.set_presets([("broken", tmp_path / "presets" / "broken.toml")])
        picker.value = str(tmp_path / "presets" / "broken.toml")
        await pilot.pause()
        assert set(app.dashboard.form.problems) == {"d_model", "learning_rate"} and app.dashboard.form_config is None
        picker.clear()  # back to the blank "Load preset…": nothing loads, nothing breaks
        await pilot.pause()
        assert set(app.dashboard.form.problems) == {"d_model", "learning_rate"} and app.is_running
    assert {name: path.read_bytes() for name, path in shipped_presets().items()} == shipped


async def test_a_large_data_folder_is_read_only_when_asked(app_config, tmp_path, monkeypatch):
    import tui_trainer.ui.widgets.corpus_figures as corpus_figures

    monkeypatch.setattr(corpus_figures, "ASK_ABOVE_BYTES", 1000)
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "a.txt").write_text("an order of tea\n" * 200)
    app = create_app(app_config, corpus_figures=(1, 1))
    async with app.run_test(size=SIZE) as pilot:
        field = app.query_one("#f-data", Input)
        field.value = str(folder)
        await wait_for(pilot, lambda: "press Enter in the data field" in str(app.query_one("#derived").render()))
        under_field = app.query_one("#error-data", Static)  # the question, under the field too: asked, not a fault
        colour = {name: Color.parse(app.get_css_variables()[name]) for name in ("warning", "error")}
        assert under_field.display and under_field.styles.color == colour["warning"]
        field.focus()
        await press(pilot, "enter")
        await wait_for(pilot, lambda: "3,200 tokens" in str(app.query_one("#derived").render()))
        assert not under_field.display
        field.value = str(tmp_path / "missing")  # a fault after the question: the line turns to one
        await wait_for(pilot, lambda: under_field.display and "does not exist" in str(under_field.render()))
        assert under_field.styles.color == colour["error"]


async def test_quit_during_a_run_asks_once_and_saves(app_config):
    from tui_trainer.ui.screens import QuitScreen

    app = create_app(make_config(app_config, max_iters=100_000, log_interval=1))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "running")
        await press(pilot, "ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitScreen))
        assert "Training is running." in app.screen.question
        await press(pilot, "escape")  # cancelled: the run goes on
        await wait_for(pilot, lambda: not isinstance(app.screen, QuitScreen))
        await press(pilot, "f6")
        await wait_for(pilot, lambda: app.dashboard.state == "paused")
        await press(pilot, "ctrl+q", "ctrl+q", "ctrl+q")
        assert sum(isinstance(screen, QuitScreen) for screen in app.screen_stack) == 1
        assert "Training is paused." in app.screen.question
        await press(pilot, "s")
        await wait_for(pilot, lambda: not app.is_running)
    saved = torch.load(Path(app.dashboard.run_dir) / "model.ckpt", weights_only=True)
    assert saved["step"] == app.dashboard.progress.step


async def test_ctrl_s_then_f5_after_a_run_keeps_the_save(app_config):
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        first = Path(app.dashboard.run_dir)
        (first / "model.ckpt").unlink()
        await press(pilot, "ctrl+s", "f5")  # the save must not be lost to the new run
        await wait_for(pilot, lambda: (first / "model.ckpt").exists())
        await wait_for(pilot, lambda: app.dashboard.state == "ended" and app.dashboard.run_dir != first)
        assert "Error" not in log_text(app) and "AttributeError" not in log_text(app)
    assert torch.load(first / "model.ckpt", weights_only=True)["step"] == 40


async def test_a_wsd_run_marks_where_its_decay_starts(app_config):
    app = create_app(make_config(app_config, lr_schedule="wsd", max_iters=40, decay_fraction=0.25, min_lr=1e-4))
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        plot = app.dashboard.plot
        assert plot.decay_start == 30 and ("┊", "decay from step 30", "green") in plot.legend()
        app.dashboard.form.load(make_config(app_config))  # a constant schedule: nothing to mark
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended" and app.dashboard.plot.raw.total > 0)
        assert plot.decay_start is None and not any(name.startswith("decay") for _, name, _ in plot.legend())


async def test_the_log_wraps_at_its_panes_width_and_again_when_it_changes(app_config):
    """At 80x24 the Log pane is about 48 columns: lines wrapped at 78 hid their middle, and a
    resize left them wrapped as they were. Also for a line that came while another tab showed."""
    long = "learning rate range test: 94 rates tried; the loss diverged at lr 3.27 (4 x its lowest) " * 2
    app = create_app(app_config)
    async with app.run_test(size=(80, 24)) as pilot:
        log = app.query_one(LogPanel)
        log.add(long)
        await press(pilot, "ctrl+t")  # Samples: the Log is hidden
        log.add("came while hidden " + long)
        await pilot.resize_terminal(120, 30)  # and resized while hidden
        await pilot.pause(0.2)
        await press(pilot, "ctrl+t", "ctrl+t", "ctrl+t")  # Health, Device, and the Log again
        for size in [(80, 24), (200, 50), (80, 24)]:
            await pilot.resize_terminal(*size)
            await pilot.pause(0.2)
            width = log.scrollable_content_region.width
            rows = [strip.text.rstrip() for strip in log.lines]
            assert all(len(row) <= width for row in rows), size
            joined = " ".join(rows)
            assert " ".join(long.split()) in joined and "came while hidden" in joined
            assert len(rows) <= 2 * len(" ".join(long.split())) // width + 4  # wrapped at this width, not a narrower one


async def test_at_80_columns_every_field_name_and_choice_shows_whole_or_says_it_is_cut(app_config):
    """The form's 32 columns at 80x24, read from the screen as drawn: a name or a choice that does
    not fit ends in '…', and the short choices ("constant", "bfloat16", "rollback") fit whole."""
    from tui_trainer.engine.config import FIELDS

    app = create_app(app_config)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.dashboard.form

        def row(name: str) -> tuple[str, str]:
            """(name, value) as the screen shows the field's row."""
            y = form.query_one(f"#field-{name}").region.y
            line = app.screen._compositor.render_strips()[y].text[form.region.x:form.region.right]
            label, _, value = line.strip().partition(" ")
            return label, value.strip().rstrip("▎▇▼ ").strip()

        def fits(choice: str, value: str) -> bool:
            return value == choice or (len(choice) > 10 and value.endswith("…") and choice.startswith(value[:-1]))

        for name in FIELDS:
            field = form.query_one(f"#field-{name}")
            if not form.region.contains_region(field.region):
                field.scroll_visible(animate=False, top=True)
                await wait_for(pilot, lambda: form.region.contains_region(field.region))
            label, _ = row(name)
            assert label == name or (label.endswith("…") and name.startswith(label[:-1]) and len(label) > 8), label
            for choice in FIELDS[name].metadata["choices"] or ():
                form.query_one(f"#f-{name}").value = choice
                with contextlib.suppress(AssertionError):  # drawn, or the assert below says what is
                    await wait_for(pilot, lambda: fits(choice, row(name)[1]), timeout=5)
                assert fits(choice, row(name)[1]), (name, choice, row(name)[1])
