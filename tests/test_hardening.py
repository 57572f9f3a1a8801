"""Random input never raises; injected faults (OOM) are reported and the state is kept."""
from __future__ import annotations

import json
import string
from pathlib import Path

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_trainer.engine.config import FIELDS, TrainConfig, config_from_dict, find_problems, parse_overrides
from tui_trainer.engine.errors import ConfigError
from tui_trainer.engine.events import RunFailed
from tui_trainer.engine.trainer import Trainer
from tui_trainer.ui.app import create_app

from .conftest import make_config
from .test_app import press

values = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                   st.text(max_size=12), st.none(), st.lists(st.integers(), max_size=2))
keys = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(string.ascii_letters + "_", min_size=1, max_size=10))
texts = st.text(alphabet=string.printable, max_size=16)


@settings(deadline=None)  # the first example pays for imports
@given(st.dictionaries(keys, values, max_size=8))
def test_config_dict_is_accepted_or_rejected_with_messages(raw):
    try:
        config = config_from_dict(raw)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert set(find_problems(raw)) <= set(raw) | {"d_model", "min_lr"}
    else:
        assert isinstance(config, TrainConfig)


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(FIELDS)), texts).map(lambda kv: f"{kv[0]}={kv[1]}") | texts,
                max_size=6))
def test_set_overrides_are_accepted_or_rejected_with_messages(items):
    try:
        config_from_dict(parse_overrides(items))
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


def test_out_of_memory_is_reported_and_state_kept(tiny_config, monkeypatch):
    trainer = Trainer(make_config(tiny_config, max_iters=50), on_event=lambda e: None)
    real = Trainer._train_step
    calls = {"n": 0}

    def sometimes_oom(self, lr, measure):
        calls["n"] += 1
        if calls["n"] == 12:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, lr, measure)

    monkeypatch.setattr(Trainer, "_train_step", sometimes_oom)
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.kind == "oom"
    assert "lower batch_size (now 8) or context_length (now 32)" in result.message
    assert trainer.step == 11 and all(p.grad is None for p in trainer.raw_model.parameters())
    assert trainer.save_checkpoint() is not None  # the model in memory is intact and saves
    assert torch.load(trainer.rundir.latest, weights_only=True)["step"] == 11


async def test_bad_sample_settings_are_refused_where_typed_and_never_fail_the_run(tiny_config):
    """temperature nan used to reach torch.multinomial and fail the whole run."""
    from textual.widgets import Input

    from .test_app import wait_for

    app = create_app(make_config(tiny_config, max_iters=100_000))
    async with app.run_test(size=(120, 40)) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "running")
        for temperature, top_k, top_p in (("nan", "", ""), ("-1", "", ""), ("inf", "", ""), ("1", "0", ""),
                                          ("1", "", "0"), ("1", "", "1.5"), ("x", "", "")):
            app.query_one("#sample-temperature", Input).value = temperature
            app.query_one("#sample-top-k", Input).value = top_k
            app.query_one("#sample-top-p", Input).value = top_p
            await pilot.pause(0.05)  # a fixed wait: pilot's default waits for an idle CPU, never idle here
            assert app.query_one("#sample-problem").display, (temperature, top_k, top_p)
            assert app.dashboard.samples.request() is None
        # a 5,100-character paste is named by its start and length: the problem stays one line
        app.query_one("#sample-temperature", Input).value = "[a]" * 1700
        await pilot.pause(0.05)
        problem = str(app.query_one("#sample-problem").render())
        assert "(5,100 characters)" in problem and len(problem) < 150
        # a tiny temperature is valid: greedy in effect, never NaN
        app.query_one("#sample-temperature", Input).value = "1e-50"
        app.query_one("#sample-top-k", Input).value = ""
        app.query_one("#sample-top-p", Input).value = ""
        await pilot.pause(0.05)
        assert not app.query_one("#sample-problem").display
        await press(pilot, "f8")
        await wait_for(pilot, lambda: app.dashboard.samples.query_one("#sample-view").pages)
        assert app.dashboard.state == "running"
        await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
    status = json.loads((Path(app.dashboard.run_dir) / "run.json").read_text())
    assert status["status"] == "stopped" and (Path(app.dashboard.run_dir) / "model.ckpt").exists()


def test_a_failing_sample_is_an_error_of_that_sample_and_training_goes_on(tiny_config, monkeypatch):
    from tui_trainer.engine.control import SampleRequest
    from tui_trainer.engine.events import LogMessage, RunFinished

    def broken(*args, **kwargs):
        raise RuntimeError("probability tensor contains inf/nan")

    monkeypatch.setattr("tui_trainer.engine.trainer.generate", broken)
    events = []
    trainer = Trainer(make_config(tiny_config, max_iters=30, sample_interval=10), on_event=events.append)
    trainer.control.request_sample(SampleRequest("x", 5, 1.0, None))
    result = trainer.run()
    assert isinstance(result, RunFinished) and result.step == 30
    errors = [e.text for e in events if isinstance(e, LogMessage) and e.level == "error"]
    assert len(errors) == 4 and all("sample failed" in text and "training goes on" in text for text in errors)


async def test_the_form_keeps_every_float_exactly_as_set_does(tiny_config):
    """The form showed floats with 6 digits: 0.00031415926 trained as 0.000314159 from the app."""
    import random

    from tui_trainer.engine.config import load_config

    rng = random.Random(3)
    floats = [10 ** rng.uniform(-8, -1) for _ in range(12)] + [0.00031415926, 1 / 3, 2e-5]
    app = create_app(tiny_config)
    async with app.run_test(size=(120, 40)) as pilot:
        for value in floats:
            from_cli = load_config(None, {**tiny_config.to_dict(),
                                          **parse_overrides([f"learning_rate={value!r}", f"weight_decay={value!r}"])})
            app.dashboard.form.load(from_cli)
            await pilot.pause()
            assert app.dashboard.form.validate() == from_cli  # loaded and read back: the very same floats
            app.query_one("#f-learning_rate").value = repr(value * 3)  # typed, as a user would
            await pilot.pause()
            assert app.dashboard.form_config.learning_rate == value * 3
