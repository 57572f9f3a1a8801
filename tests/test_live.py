"""Steering a run while it trains: every live key takes effect at the next step boundary, the
others are refused, and the run's record, checkpoint and resume carry the values in force."""
import json

import pytest
import torch

from tui_trainer.engine.checkpoint import load_checkpoint
from tui_trainer.engine.config import load_config
from tui_trainer.engine.control import TrainingControl
from tui_trainer.engine.errors import ConfigError
from tui_trainer.engine.events import ChangeRefused, EvalResult, HparamsChanged, RunFinished, StepMetrics
from tui_trainer.engine.live import LIVE_KEYS, check_live_change
from tui_trainer.engine.runs import val_curve
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer
from tui_trainer.event_text import event_line

from .conftest import make_config

CHANGE_AT = 5
CHANGES = {"dropout": 0.0, "grad_clip": 1.0, "weight_decay": 0.05, "batch_size": 4, "eval_interval": 3,
           "max_iters": 12, "learning_rate": 1e-3, "sample_interval": 4, "sample_tokens": 3, "sample_prompt": "ab",
           "checkpoint_interval": 10, "log_interval": 2}


def test_every_live_change_takes_effect_at_the_next_step(tiny_config, tmp_path, monkeypatch):
    control = TrainingControl()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, StepMetrics) and event.step == CHANGE_AT:
            control.change(CHANGES, "cli", "req-1")

    config = make_config(tiny_config, max_iters=1000, log_interval=1, eval_interval=100, grad_clip=0.0, dropout=0.1)
    trainer = Trainer(config, on_event=on_event, control=control, run_dir=tmp_path / "run")
    sizes, clipped = [], []
    real_get, real_clip = trainer.batcher.get, torch.nn.utils.clip_grads_with_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grads_with_norm_", lambda *a, **k: clipped.append(trainer.step) or
                        real_clip(*a, **k))
    monkeypatch.setattr(trainer.batcher, "get", lambda split, gen: sizes.append(
        (gen is trainer.random.batches, trainer.batcher.batch_size)) or real_get(split, gen))  # training, not evals
    result = trainer.run()

    change = next(e for e in events if isinstance(e, HparamsChanged))
    assert change.step == CHANGE_AT and change.source == "cli" and change.request == "req-1"
    assert change.changes["batch_size"] == [8, 4] and change.changes["max_iters"] == [1000, 12]
    assert isinstance(result, RunFinished) and result.status == "finished" and result.step == 12  # the new max_iters
    assert [e.step for e in events if isinstance(e, EvalResult)] == [0, 6, 9, 12]  # eval_interval 3 from step 6
    train = [size for training, size in sizes if training]
    assert train == [8] * CHANGE_AT + [4] * (12 - CHANGE_AT)  # tokens per step halved from the change on
    assert trainer.tokens_per_step == 4 * config.context_length
    assert clipped == list(range(CHANGE_AT, 12))  # clipping from the first step after the change
    assert all(m.p == 0.0 for m in trainer.raw_model.modules() if isinstance(m, torch.nn.Dropout))
    assert all(g["weight_decay"] == 0.05 for g in trainer.updater.optimizer.param_groups)
    steps = [e for e in events if isinstance(e, StepMetrics)]
    assert steps[CHANGE_AT - 1].lr == 3e-3 and steps[-1].lr == 1e-3
    assert [e.step for e in steps][CHANGE_AT:] == [6, 8, 10, 12]  # log_interval 2
    # the record, the checkpoint and a resume carry the values in force
    assert load_config(tmp_path / "run" / "config.toml").batch_size == 4
    assert load_checkpoint(tmp_path / "run" / "model.ckpt")["config"]["dropout"] == 0.0
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    record = next(line for line in lines if line["event"] == "hparams")
    assert record["changes"]["learning_rate"] == [3e-3, 1e-3] and record["source"] == "cli"
    assert json.loads((tmp_path / "run" / "run.json").read_text())["max_iters"] == 12
    resumed = Trainer(RunPlan.resume(tmp_path / "run", {"max_iters": 14}))
    assert resumed.config.batch_size == 4 and resumed.config.eval_interval == 3 and resumed.batcher.batch_size == 4


def test_locked_unknown_and_bad_changes_are_refused_and_training_goes_on(tiny_config, tmp_path):
    control = TrainingControl()
    for change in ({"d_model": 64}, {"nope": 1}, {"batch_size": 0}):
        control.change(change, "app")
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, StepMetrics) and event.step == 5:
            control.change({"max_iters": 3}, "app")  # below the step reached
    result = Trainer(make_config(tiny_config, max_iters=10), on_event=on_event, control=control,
                     run_dir=tmp_path / "run").run()
    refusals = [event_line(e) for e in events if isinstance(e, ChangeRefused)]
    assert len(refusals) == 4 and all(text.startswith("change from the app not applied") for text in refusals)
    assert "d_model cannot change while the run trains: fork the run" in refusals[0]
    assert "unknown key 'nope'" in refusals[1] and "batch_size" in refusals[2]
    assert "the run is at step 5 already" in refusals[3]
    assert not any(isinstance(e, HparamsChanged) for e in events)
    assert isinstance(result, RunFinished) and result.step == 10


def test_the_live_check_names_every_problem_at_once(tiny_config):
    with pytest.raises(ConfigError) as caught:
        check_live_change(tiny_config, {"d_model": 64, "vocab": "max", "learning_rate": -1.0}, 0)
    assert len(caught.value.problems) == 3
    assert check_live_change(tiny_config, {"learning_rate": 3e-3, "eval_iters": 7}, 0) == {"eval_iters": [4, 7]}
    assert check_live_change(tiny_config, {"learning_rate": 1}, 0) == {"learning_rate": [3e-3, 1.0]}
    assert "data" not in LIVE_KEYS and "compile" not in LIVE_KEYS


def test_a_fork_starts_from_the_parents_checkpoint_in_a_folder_of_its_own(tiny_config, tmp_path, capsys):
    parent = tmp_path / "runs" / "parent"
    Trainer(make_config(tiny_config, max_iters=20), run_dir=parent).run()
    saved = load_checkpoint(parent / "model.ckpt")
    events = []
    child = Trainer(RunPlan.fork(parent, {"max_iters": 24, "log_interval": 1, "learning_rate": 1e-3, "batch_size": 4},
                                 tmp_path / "runs" / "child"), on_event=events.append)
    assert all(torch.equal(tensor, saved["model_state_dict"][name])  # equal weights at the fork
               for name, tensor in child.raw_model.state_dict().items())
    result = child.run()
    assert [e.step for e in events if isinstance(e, StepMetrics)][0] == 21 and result.step == 24
    assert json.loads((tmp_path / "runs" / "child" / "run.json").read_text())["parent"] == {"run_dir": str(parent),
                                                                                           "step": 20}
    assert load_checkpoint(tmp_path / "runs" / "child" / "model.ckpt")["config"]["batch_size"] == 4
    assert load_checkpoint(parent / "model.ckpt")["step"] == 20  # the parent's run is untouched
    assert val_curve(tmp_path / "runs" / "child")[0] == [20, 24]  # an overlay branches from the parent at the fork
    with pytest.raises(ConfigError, match="d_model = 64: cannot change when forking"):
        Trainer(RunPlan.fork(parent, {"d_model": 64}))
    # the command line: --fork, a refused shape key, and the runs table naming the parent
    from tui_trainer.cli import main

    assert main(["train", "--fork", str(parent), "--set", "num_heads=4"]) == 2
    assert "num_heads = 4: cannot change when forking" in capsys.readouterr().err
    assert main(["train", "--fork", str(parent), "--set", "max_iters=22", "--out", str(tmp_path / "runs" / "cli")]) == 0
    assert main(["runs", str(tmp_path / "runs")]) == 0
    table = capsys.readouterr().out
    assert table.count("parent@20") == 2  # child and cli, each forked at step 20
