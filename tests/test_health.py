"""Network health and loss spikes: per-step gradient norms and per-block figures, spikes found
against the loss's moving average, warned about or rolled back from an in-memory snapshot."""
from __future__ import annotations

import io
import json
import math

import pytest
from rich.console import Console

from tui_trainer.engine import trainer as trainer_module
from tui_trainer.engine.control import TrainingControl, send_change
from tui_trainer.engine.events import (EvalResult, HparamsChanged, RolledBack, RunFailed, RunFinished, SpikeDetected,
                                       StepMetrics)
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config
from .test_app import wait_for

SPIKE_AT = 120  # the step at which learning_rate becomes 10, well after the moving average's warm-up


def run(config, on_step=None):
    """Train ``config``; ``on_step(event, control, trainer)`` sees each StepMetrics."""
    control, events = TrainingControl(), []
    holder = {}

    def on_event(event):
        events.append(event)
        if on_step and isinstance(event, StepMetrics):
            on_step(event, control, holder["trainer"])

    holder["trainer"] = trainer = Trainer(config, on_event=on_event, control=control)
    result = trainer.run()
    return trainer, events, result


def lr_10_live(event, control, trainer):
    if event.step == SPIKE_AT:
        control.change({"learning_rate": 10.0}, "cli")


def val_at(events, step):
    return next(e.val_loss for e in events if isinstance(e, EvalResult) and e.step == step)


def test_health_figures_are_finite_and_per_block(tiny_config):
    trainer, events, result = run(make_config(tiny_config, max_iters=20, grad_clip=1e-3))
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert isinstance(result, RunFinished) and len(steps) == 4
    for metrics in steps:
        assert metrics.grad_norm > 0 and math.isfinite(metrics.grad_norm)
        assert metrics.clipped == 5  # every step of the interval: grad_clip 1e-3 is far below the norm
        groups = metrics.health["groups"]
        assert [g["name"] for g in groups] == ["embedding", "block 0", "block 1", "head"]
        for group in groups:
            assert 0 < group["grad_norm"] < math.inf and 0 < group["update_ratio"] < 1
        assert metrics.health["embedding_norm"] > 0 and metrics.health["head_norm"] > 0
    lines = [json.loads(line) for line in trainer.rundir.metrics_path.read_text().splitlines()]
    assert all(set(line) >= {"grad_norm", "clipped", "health"} for line in lines if line["event"] == "step")


def test_health_off_reports_no_gradient_figures(tiny_config):
    _, events, _ = run(make_config(tiny_config, max_iters=10, health=False))
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert steps and all(m.grad_norm is None and m.health == {} for m in steps)


def test_a_spike_rolls_back_lr_returns_and_the_run_ends_as_if_it_never_happened(tiny_config):
    config = make_config(tiny_config, max_iters=SPIKE_AT + 100, eval_interval=20, spike_action="rollback")
    _, clean, _ = run(config)
    trainer, events, result = run(config, lr_10_live)
    assert isinstance(result, RunFinished) and result.status == "finished"
    spike = next(e for e in events if isinstance(e, SpikeDetected))
    rollback = next(e for e in events if isinstance(e, RolledBack))
    assert SPIKE_AT < spike.step <= SPIKE_AT + 20 and spike.action == "rollback"
    assert rollback.step == spike.step and rollback.to_step <= SPIKE_AT and rollback.lr_before == 10.0
    assert rollback.lr_after == pytest.approx(3e-3) and trainer.config.learning_rate == pytest.approx(3e-3)
    reverted = [e for e in events if isinstance(e, HparamsChanged)][-1]
    assert reverted.source == "rollback" and reverted.changes["learning_rate"] == [10.0, 3e-3]
    # 100 steps on, the run is where a run without the spike is
    assert abs(val_at(events, SPIKE_AT + 100) / val_at(clean, SPIKE_AT + 100) - 1) < 0.05
    lines = [json.loads(line)["event"] for line in trainer.rundir.metrics_path.read_text().splitlines()]
    assert "spike" in lines and "rollback" in lines


def test_a_spike_asked_for_through_gpt_tui_set_rolls_back_too(tiny_config):
    def set_from_outside(event, control, trainer):
        if event.step == SPIKE_AT:
            send_change(trainer.run_dir, {"learning_rate": 10.0}, "cli")  # what gpt-tui set writes

    config = make_config(tiny_config, max_iters=SPIKE_AT + 300, eval_interval=1000, spike_action="rollback")
    _, events, result = run(config, set_from_outside)
    change = next(e for e in events if isinstance(e, HparamsChanged))
    spike = next(e for e in events if isinstance(e, SpikeDetected))
    assert change.source == "cli" and change.step < spike.step <= change.step + 20
    assert any(isinstance(e, RolledBack) for e in events) and isinstance(result, RunFinished)


def test_under_warn_the_run_goes_on_and_the_spike_is_recorded(tiny_config):
    config = make_config(tiny_config, max_iters=SPIKE_AT + 20, spike_action="warn")
    _, events, result = run(config, lr_10_live)
    spikes = [e for e in events if isinstance(e, SpikeDetected)]
    assert spikes and spikes[0].action == "warn" and SPIKE_AT < spikes[0].step <= SPIKE_AT + 20
    assert not any(isinstance(e, RolledBack) for e in events) and isinstance(result, RunFinished)


def test_three_rollbacks_close_together_stop_and_save(tiny_config, monkeypatch):
    monkeypatch.setattr(trainer_module, "LR_CHANGE_WINDOW", -1)  # always halve: 10, 5, 2.5 all spike
    config = make_config(tiny_config, max_iters=SPIKE_AT + 200, spike_action="rollback")
    trainer, events, result = run(config, lr_10_live)
    assert [type(e) for e in events if isinstance(e, RolledBack)] == [RolledBack] * 3
    assert isinstance(result, RunFinished) and result.status == "stopped" and "3 loss spikes" in result.reason
    assert trainer.rundir.latest.exists() and trainer.lr_scale == 0.125


def test_a_non_finite_loss_rolls_back_under_rollback_and_fails_under_warn(tiny_config):
    def poison(trainer):
        forward = trainer.raw_model.forward

        def once_nan(idx, targets=None, last_only=False):
            logits, loss = forward(idx, targets, last_only)
            if targets is not None and trainer.step == 70 and not poisoned:
                poisoned.append(trainer.step)
                loss = loss * math.nan
            return logits, loss
        trainer.raw_model.forward = once_nan

    for action in ("rollback", "warn"):
        poisoned: list[int] = []
        trainer = Trainer(make_config(tiny_config, max_iters=90, spike_action=action), control=TrainingControl())
        events = []
        trainer.listeners.append(events.append)
        poison(trainer)
        result = trainer.run()
        if action == "rollback":
            spike = next(e for e in events if isinstance(e, SpikeDetected))
            assert spike.step == 71 and spike.reason == "the loss is not finite"
            assert isinstance(result, RunFinished) and result.status == "finished"
        else:
            assert isinstance(result, RunFailed) and result.kind == "nonfinite"


def shown_text(renderable) -> str:
    """A renderable as the terminal shows it, as text."""
    console = Console(width=100, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


async def test_the_dashboard_shows_health_the_grad_norm_and_marks_spikes(tiny_config):
    from tui_trainer.ui.app import create_app
    from tui_trainer.ui.messages import EngineEvents

    groups = [{"name": "embedding", "grad_norm": 0.1, "update_ratio": 1e-4},
              {"name": "block 0", "grad_norm": 2.5, "update_ratio": 2e-3},
              {"name": "block 1", "grad_norm": 0.3, "update_ratio": 3e-2},
              {"name": "head", "grad_norm": None, "update_ratio": 1e-3}]
    steps = [StepMetrics(step, 2.0, 1e-3, 1000.0, 1.0, 9.0, None, 0.75, 3,
                         {"groups": groups, "embedding_norm": 12.5, "head_norm": 4.25}) for step in (10, 20)]
    spike = SpikeDetected(23, 9.5, 2.0, 4.0, "loss 9.5000 is above 3 x its average 2.0000", "warn")
    app = create_app(tiny_config)
    async with app.run_test(size=(120, 40)) as pilot:
        app.dashboard.post_message(EngineEvents([*steps, spike]))
        await pilot.press("ctrl+t")  # Log -> Samples -> Health, keyboard only
        assert app.dashboard.tabs.active == "tab-samples" and app.focused.id == "sample-view"
        await pilot.press("ctrl+t")
        assert app.dashboard.tabs.active == "tab-health"
        panel = app.dashboard.health_panel
        await wait_for(pilot, lambda: panel.last_spike and app._notifications)
        # filled while its tab was hidden (no layout passes then), laid out when shown
        await wait_for(pilot, lambda: panel.size.height >= 2 + len(groups)
                       and "step 20" in panel.render_line(0).text)
        assert list(panel.grads["block 0"]) == [2.5, 2.5] and list(panel.grads["head"]) == []  # null: no point
        text = shown_text(panel.render())
        assert "block 1" in text and "grad 0.75 (clipped 3)" in text and "head norm 4.25" in text
        assert "loss spike at step 23" in text and "2.5" in text and "0.03" in text
        assert (23, "spike", "spike") in app.dashboard.plot.markers
        assert ("│", "loss spike", "red") in app.dashboard.plot.legend()
        assert any(n.title == "Loss spike" for n in app._notifications)
        figures = app.query_one("#run-figures")
        await wait_for(pilot, lambda: "grad 0.75 (clipped 3)" in str(figures.render()))  # at the UI's next tick


@pytest.mark.parametrize("tab", ["tab-log", "tab-health"])
async def test_a_training_runs_events_never_touch_a_widget_in_a_hidden_tab(tiny_config, monkeypatch, tab):
    """Refreshing a hidden widget makes Textual rebuild its map of every widget at the next size
    query, on the UI thread that the training thread needs the GIL from: steps, evals, log lines
    and samples leave the hidden tabs alone (the Device panel's poll too), and each tab shows
    what came meanwhile once it is opened."""
    from textual.widget import Widget
    from textual.widgets import TabPane

    from tui_trainer.engine.events import LogMessage, SampleText
    from tui_trainer.ui.app import create_app
    from tui_trainer.ui.messages import EngineEvents

    health = {"groups": [{"name": "block 0", "grad_norm": 2.5, "update_ratio": 2e-3}], "embedding_norm": 1.0,
              "head_norm": 1.0}
    app = create_app(tiny_config)
    async with app.run_test(size=(120, 40)) as pilot:
        board = app.dashboard
        board.tabs.active = tab
        await pilot.pause()
        hidden = {widget for pane in board.tabs.query(TabPane) if pane.id != tab for widget in pane.walk_children()}
        touched: list[Widget] = []
        refresh = Widget.refresh

        def spy(self, *args, **kwargs):
            touched.append(self)
            return refresh(self, *args, **kwargs)

        monkeypatch.setattr(Widget, "refresh", spy)
        for step in range(10, 110, 10):
            board.post_message(EngineEvents([
                StepMetrics(step, 2.0, 1e-3, 1000.0, 1.0, 9.0, None, 0.75, 0, health),
                EvalResult(step, 2.0, 2.1, 2.1), LogMessage("info", f"note at step {step}"),
                SampleText(step, "", f"sample at step {step}")]))
            await pilot.pause()
        board.device_panel.poll()
        await wait_for(pilot, lambda: board.progress.step == 100)
        await pilot.pause(0.3)
        assert not hidden & set(touched), sorted(str(widget) for widget in hidden & set(touched))
        assert set(touched) - hidden  # the shown tab and the progress line did redraw
        for pane, shown in (("tab-health", lambda: "step 100" in board.health_panel.render_line(0).text),
                            ("tab-log", lambda: "note at step 100" in "".join(
                                strip.text for strip in board.log_panel.lines)),
                            ("tab-samples", lambda: "step 100" in shown_text(board.samples.query_one(
                                "SampleView").render()))):
            board.tabs.active = pane
            await wait_for(pilot, shown, timeout=5)


def test_under_float16_scaling_an_overflowing_gradient_is_no_spike():
    from tui_trainer.engine.spikes import SpikeGuard

    guard = SpikeGuard()
    losses, norms = [2.0] * 60, [0.5] * 59 + [math.inf]
    assert guard.check(0, losses, norms, 3.0, gradients=False) is None
    assert SpikeGuard().check(0, losses, norms, 3.0).reason == "the gradient is not finite"


def test_a_runs_history_draws_its_spikes_as_the_live_run_did():
    """The plot draws events one way, whether they come live, from a watched run or from the
    history a resume starts with (which lacked spike markers before)."""
    from tui_trainer.engine.events import EvalResult
    from tui_trainer.ui.widgets.loss_plot import LossPlot

    plot = LossPlot()
    for event in (StepMetrics(10, 2.0, 1e-3, 1.0, 1.0, 1.0), EvalResult(10, 2.0, 2.1, 2.1),
                  HparamsChanged(12, {"learning_rate": [1e-3, 10.0]}, "cli"),
                  SpikeDetected(14, 9.0, 2.0, None, "loss 9.0000 is above 3 x its average 2.0000", "rollback")):
        plot.add_event(event)
    assert plot.raw.total == 1 and plot.best == (10, 2.1)
    assert plot.markers == [(12, "learning_rate", "hparams"), (14, "spike", "spike")]
