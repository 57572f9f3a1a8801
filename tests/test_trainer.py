import json
import math
import threading
import time
from pathlib import Path

import pytest
import torch

from tui_trainer.engine import checkpoint as ckpt_mod
from tui_trainer.engine.checkpoint import load_checkpoint, model_from_checkpoint
from tui_trainer.engine.control import SampleRequest, TrainingControl
from tui_trainer.engine.events import CheckpointSaved, EvalResult, RunFailed, RunFinished, StateChanged, StepMetrics
from tui_trainer.engine.schedule import decay_start, learning_rate_at
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config


def run(config, **kwargs):
    events = []
    trainer = Trainer(config, on_event=events.append, **kwargs)
    result = trainer.run()
    return trainer, events, result


def test_loss_falls_and_run_dir_is_complete(tiny_config):
    trainer, events, result = run(tiny_config)
    assert isinstance(result, RunFinished) and result.step == 60
    evals = [e for e in events if isinstance(e, EvalResult)]
    assert [e.step for e in evals] == [0, 20, 40, 60]
    assert evals[-1].val_loss < evals[0].val_loss - 1.0  # from ~log(V) to clearly lower
    run_dir = Path(result.run_dir)
    for name in ("config.toml", "metrics.jsonl", "model.ckpt", "best.ckpt", "run.json"):
        assert (run_dir / name).exists(), name
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [line for line in lines if line["event"] == "step"]
    assert [s["step"] for s in steps] == list(range(5, 61, 5))
    assert all({"loss", "lr", "tokens_per_sec"} <= s.keys() for s in steps)
    assert {"train_loss", "val_loss"} <= next(l for l in lines if l["event"] == "eval").keys()
    assert any(l["event"] == "checkpoint" and l["path"].endswith("model.ckpt") for l in lines)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_checkpoint_loads_with_weights_only_and_has_chapter_keys(tiny_config):
    trainer, _, result = run(tiny_config)
    raw = torch.load(Path(result.run_dir) / "model.ckpt", weights_only=True)
    assert raw["h_params"]["max_token_value"] == trainer.vocab.size
    assert raw["h_params"]["d_model"] == 32 and raw["step"] == 60
    assert set(raw) >= {"model_state_dict", "h_params", "optimizer_state_dict", "step", "config", "tokenizer",
                        "best_val_loss", "format_version"}
    model, config, vocab = model_from_checkpoint(load_checkpoint(Path(result.run_dir) / "model.ckpt"))
    x, y = trainer.batcher.get("val", torch.Generator().manual_seed(3))
    trainer.raw_model.eval()
    assert torch.allclose(model(x, y)[1], trainer.raw_model(x, y)[1])


def test_resume_equals_straight_run(tiny_config, tmp_path):
    cfg = make_config(tiny_config, max_iters=30, eval_interval=7, log_interval=3)
    straight, _, _ = run(cfg, run_dir=tmp_path / "straight")
    first, _, _ = run(make_config(cfg, max_iters=12), run_dir=tmp_path / "split")
    resumed, events, result = run(RunPlan.resume(tmp_path / "split", {"max_iters": 30}))
    assert result.step == 30 and resumed.start_step == 12
    for name, value in straight.raw_model.state_dict().items():
        assert torch.equal(value, resumed.raw_model.state_dict()[name]), name
    lines = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "end" and len([l for l in lines if '"start"' in l]) == 2


def test_resume_refuses_shape_changes(tiny_config, tmp_path):
    run(tiny_config, run_dir=tmp_path / "r")
    from tui_trainer.engine.errors import ConfigError

    with pytest.raises(ConfigError, match="d_model = 64: cannot change when resuming"):
        Trainer(RunPlan.resume(tmp_path / "r", {"d_model": 64}))


def test_nonfinite_loss_stops_before_the_update(tiny_config, monkeypatch):
    trainer = Trainer(make_config(tiny_config, checkpoint_interval=10), on_event=lambda e: None)
    original = trainer.raw_model.forward

    def poisoned_forward(idx, targets=None):
        logits, loss = original(idx, targets)
        if trainer.step == 15 and targets is not None and trainer.raw_model.training:
            loss = loss * float("nan")
        return logits, loss

    monkeypatch.setattr(trainer.raw_model, "forward", poisoned_forward)
    before = {}

    def snapshot(event):
        if isinstance(event, StepMetrics) and event.step == 15:
            before.update({k: v.clone() for k, v in trainer.raw_model.state_dict().items()})
    trainer.listeners.append(snapshot)
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.kind == "nonfinite"
    assert "lower learning_rate or set grad_clip" in result.message
    for name, value in trainer.raw_model.state_dict().items():  # the NaN step changed nothing
        assert torch.equal(value, before[name]), name
    assert all(torch.isfinite(v).all() for v in trainer.raw_model.state_dict().values())
    saved = load_checkpoint(trainer.rundir.latest)
    assert saved["step"] == 10  # the last good periodic checkpoint stays
    assert json.loads((trainer.rundir.path / "run.json").read_text())["status"] == "failed"


def test_controls_stop_save_pause_lr_and_sample(tiny_config):
    control = TrainingControl()
    events = []
    seen_pause = threading.Event()

    def on_event(event):
        events.append(event)
        if isinstance(event, StepMetrics) and event.step == 10:
            control.save_now()
            control.change({"learning_rate": 5e-4})
            control.request_sample(SampleRequest("山禾", 8, 1.0, 5))
            control.pause()
        if isinstance(event, StateChanged) and event.state == "paused":
            seen_pause.set()
        if isinstance(event, StepMetrics) and event.step == 25:
            control.stop("test stop")

    trainer = Trainer(make_config(tiny_config, max_iters=1000), on_event=on_event, control=control)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert seen_pause.wait(30)
    step_at_pause = trainer.step
    threading.Event().wait(0.3)
    assert trainer.step == step_at_pause == 10  # nothing trains while paused
    control.resume()
    thread.join(60)
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "stopped" and finished.reason == "test stop"
    assert finished.step == 25
    saved = [e for e in events if isinstance(e, CheckpointSaved) and e.kind == "latest"]
    assert [e.step for e in saved] == [10, 25]
    assert [e.lr for e in events if isinstance(e, StepMetrics)][-1] == 5e-4
    assert (trainer.rundir.path / "samples.txt").read_text().count("山禾") == 1
    # stopped, the model stays in memory: saving and sampling still work
    assert trainer.sample(SampleRequest("x", 4, 1.0, None)).startswith("x")
    assert trainer.save_checkpoint() == trainer.rundir.latest


def test_failed_save_keeps_previous_checkpoint(tiny_config, monkeypatch):
    trainer, events, _ = run(make_config(tiny_config, max_iters=20))
    good = trainer.rundir.latest.read_bytes()

    def half_write(payload, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_mod.torch, "save", half_write)
    logged = []
    trainer.listeners.append(logged.append)
    assert trainer.save_checkpoint() is None
    assert trainer.rundir.latest.read_bytes() == good
    assert not [p for p in trainer.rundir.path.iterdir() if p.name.endswith(".tmp")]
    assert "No space left on device" in logged[0].text and "previous checkpoint is intact" in logged[0].text


def test_cosine_schedule_warms_up_and_decays(tiny_config):
    cfg = make_config(tiny_config, lr_schedule="cosine", warmup_iters=10, max_iters=110, learning_rate=1e-3,
                      min_lr=1e-4)
    lrs = [learning_rate_at(cfg, s) for s in range(111)]
    assert lrs[0] < lrs[5] < lrs[9] < 1e-3
    assert math.isclose(lrs[10], 1e-3) and math.isclose(lrs[110], 1e-4)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


def test_sampling_a_prompt_the_corpus_never_had(tiny_config, tmp_path):
    cfg = make_config(tiny_config, tokenizer="cl100k_base", max_iters=5)
    trainer, _, _ = run(cfg)
    unseen = "🚀 Zürich ünïcödé"
    assert (trainer.vocab.to_model(trainer.tokenizer.encode(unseen)) == trainer.vocab.unknown_id).any()
    text = trainer.sample(SampleRequest(unseen, 10, 1.0, 5))
    assert text.startswith(unseen) and len(text) > len(unseen)


def test_requests_from_another_process_save_pause_and_stop(tiny_config):
    from tui_trainer.engine.control import send_request

    trainer = Trainer(make_config(tiny_config, max_iters=10**6, log_interval=1), on_event=lambda e: None)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    deadline = time.time() + 30
    while trainer.step < 5 and time.time() < deadline:
        time.sleep(0.05)
    send_request(trainer.rundir.path, "save")
    while not trainer.rundir.latest.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert load_checkpoint(trainer.rundir.latest)["step"] >= 5
    send_request(trainer.rundir.path, "pause")
    while not trainer.control.paused and time.time() < deadline:
        time.sleep(0.05)
    step = trainer.step
    time.sleep(0.3)
    assert trainer.step == step
    send_request(trainer.rundir.path, "stop")
    thread.join(30)
    assert not thread.is_alive()
    assert json.loads((trainer.rundir.path / "run.json").read_text())["status"] == "stopped"
    assert load_checkpoint(trainer.rundir.latest)["step"] == trainer.step == step
    assert not list((trainer.rundir.path / "requests").iterdir())


def test_wsd_warms_up_holds_then_decays_linearly_over_its_last_fraction(tiny_config):
    cfg = make_config(tiny_config, lr_schedule="wsd", warmup_iters=10, max_iters=100, decay_fraction=0.2,
                      learning_rate=1e-3, min_lr=1e-4)
    lrs = [learning_rate_at(cfg, s) for s in range(101)]
    assert decay_start(cfg) == 80 and lrs[0] < lrs[9] < 1e-3
    assert all(lr == 1e-3 for lr in lrs[10:81])  # the stable phase, to the decay's start
    assert math.isclose(lrs[90], 5.5e-4) and math.isclose(lrs[100], 1e-4)  # linear, to min_lr at max_iters
    assert decay_start(make_config(cfg, max_iters=200)) == 160  # the decay moves with max_iters


def test_a_wsd_run_extended_before_its_decay_ends_as_a_run_of_the_longer_length(tiny_config, tmp_path):
    """WSD's point: fork a checkpoint of the stable phase with twice the max_iters, and the run
    decays at the new end with no second warmup, exactly as one planned that long from the start."""
    wsd = dict(lr_schedule="wsd", warmup_iters=4, decay_fraction=0.25, min_lr=1e-4, eval_interval=10,
               checkpoint_interval=10, keep_checkpoints=8)
    short = make_config(tiny_config, max_iters=40, **wsd)  # decays from step 30
    Trainer(short, run_dir=tmp_path / "short").run()
    checkpoint = tmp_path / "short" / "ckpt-00000020.ckpt"  # kept at step 20, before the decay
    assert torch.load(checkpoint, weights_only=True)["step"] == 20
    extended = Trainer(RunPlan.fork(checkpoint, {"max_iters": 80}, tmp_path / "extended"))
    extended.run()
    straight = Trainer(make_config(short, max_iters=80), run_dir=tmp_path / "straight")
    straight.run()
    for name, tensor in straight.raw_model.state_dict().items():
        assert torch.equal(tensor, extended.raw_model.state_dict()[name]), name
