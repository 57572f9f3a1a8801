"""A failed or spiking state never becomes a checkpoint over a good one; out of memory anywhere
stops cleanly and saves; `gpt-tui set` and `gpt-tui sample` answer truly."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tui_trainer.cli import main
from tui_trainer.engine.control import TrainingControl
from tui_trainer.engine.events import (ChangeRefused, CheckpointSaved, LogMessage, RolledBack, RunFailed,
                                       RunFinished, SpikeDetected, StepMetrics)
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config


def break_weights(trainer: Trainer, value: float = math.nan) -> None:
    with torch.no_grad():
        trainer.raw_model.token_embedding.weight[0, 0] = value


def saved_step(run_dir: Path) -> int:
    return torch.load(run_dir / "model.ckpt", weights_only=True)["step"]


def test_a_nan_fails_the_run_truthfully_and_no_save_replaces_the_good_checkpoint(tiny_config, tmp_path):
    run_dir, events = tmp_path / "run", []
    holder: list[Trainer] = []

    def on_event(event):
        events.append(event)
        if isinstance(event, StepMetrics) and event.step == 15:
            break_weights(holder[0])
    holder.append(Trainer(make_config(tiny_config, max_iters=40, checkpoint_interval=10), on_event=on_event,
                          run_dir=run_dir))
    trainer = holder[0]
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.kind == "nonfinite"
    assert "not saved" in result.message and "model.ckpt keeps step 10" in result.message
    assert "update was not applied and the last checkpoint is intact" not in result.message
    assert saved_step(run_dir) == 10
    # ctrl+s after the failure (the app serves saves after a run): refused with one line
    assert trainer.save_checkpoint() is None and saved_step(run_dir) == 10
    refusal = [e.text for e in events if isinstance(e, LogMessage) and e.level == "error"][-1]
    assert "model.ckpt not saved" in refusal and "NaN or inf" in refusal and "keeps step 10" in refusal


def test_a_save_of_non_finite_weights_is_refused(tiny_config, tmp_path):
    trainer = Trainer(make_config(tiny_config, max_iters=4), run_dir=tmp_path / "run")
    assert isinstance(trainer.run(), RunFinished) and saved_step(tmp_path / "run") == 4
    before = {name: (tmp_path / "run" / name).read_bytes() for name in ("model.ckpt", "best.ckpt")}
    trainer.step = 5
    break_weights(trainer, math.inf)
    assert trainer.save_checkpoint() is None and trainer.save_checkpoint("best") is None
    assert {name: (tmp_path / "run" / name).read_bytes() for name in before} == before


@pytest.mark.parametrize("where", ["eval", "sample", "checkpoint"])
def test_under_rollback_a_nan_at_an_eval_sample_or_save_point_rolls_back(where, tiny_config, tmp_path):
    """The steps' losses are finite; the weights break just after step 20's update, so only the
    eval, sample or save due at step 20 meets them."""
    intervals = {"eval": dict(eval_interval=20), "sample": dict(eval_interval=1000, sample_interval=20),
                 "checkpoint": dict(eval_interval=1000, checkpoint_interval=20)}[where]
    events: list = []
    holder: list[Trainer] = []

    def on_event(event):
        events.append(event)
        if isinstance(event, StepMetrics) and event.step == 20 and not any(isinstance(e, RolledBack) for e in events):
            break_weights(holder[0])
    holder.append(Trainer(make_config(tiny_config, max_iters=40, spike_action="rollback", **intervals),
                          on_event=on_event, run_dir=tmp_path / "run"))
    result = holder[0].run()
    assert isinstance(result, RunFinished) and result.step == 40, result
    spikes = [e for e in events if isinstance(e, SpikeDetected)]
    rollbacks = [e for e in events if isinstance(e, RolledBack)]
    assert [e.step for e in spikes] == [20] and [(e.step, e.to_step) for e in rollbacks] == [(20, 15)]
    assert saved_step(tmp_path / "run") == 40
    assert all(torch.isfinite(p).all() for p in holder[0].raw_model.parameters())


OOM_ERRORS = {"cuda": torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
              "cpu": RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: "
                                  "you tried to allocate 1073741824 bytes.")}


@pytest.mark.parametrize("where", ["step", "eval", "sample"])
@pytest.mark.parametrize("device", sorted(OOM_ERRORS))
def test_out_of_memory_anywhere_stops_saves_and_says_what_to_lower(where, device, tiny_config, tmp_path,
                                                                   monkeypatch):
    import tui_trainer.engine.trainer as trainer_module

    calls = {"n": 0}
    target = {"step": (Trainer, "_train_step", 12), "eval": (trainer_module, "estimate_loss", 2),
              "sample": (trainer_module, "generate", 1)}[where]
    real = getattr(target[0], target[1])

    def sometimes_oom(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == target[2]:
            raise OOM_ERRORS[device]
        return real(*args, **kwargs)

    monkeypatch.setattr(target[0], target[1], sometimes_oom)
    events: list = []
    trainer = Trainer(make_config(tiny_config, max_iters=50, sample_interval=10), on_event=events.append,
                      run_dir=tmp_path / "run")
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.kind == "oom"
    assert "lower batch_size (now 8) or context_length (now 32)" in result.message
    saves = [e for e in events if isinstance(e, CheckpointSaved) and e.kind == "latest"]
    assert saves and saves[-1].step == result.step == saved_step(tmp_path / "run")
    assert f"model.ckpt keeps step {result.step}" in result.message
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_a_live_batch_size_that_cannot_fit_is_refused_before_it_applies(tiny_config, tmp_path):
    control, events = TrainingControl(), []
    control.change({"batch_size": 100_000_000}, "cli", "big")
    result = Trainer(make_config(tiny_config, max_iters=10), on_event=events.append, control=control,
                     run_dir=tmp_path / "run").run()
    refused = [e for e in events if isinstance(e, ChangeRefused)]
    assert isinstance(result, RunFinished) and len(refused) == 1 and refused[0].request == "big"
    assert "GiB" in refused[0].reason and "free" in refused[0].reason and "batch_size" in refused[0].reason


def test_sampling_a_checkpoint_with_broken_weights_is_one_line_and_exit_2(tiny_config, tmp_path, capsys):
    Trainer(make_config(tiny_config, max_iters=4), run_dir=tmp_path / "run").run()
    ckpt = torch.load(tmp_path / "run" / "model.ckpt", weights_only=True)
    for name, value in (("nan.ckpt", math.nan), ("huge.ckpt", 1e30)):
        broken = {**ckpt, "model_state_dict": dict(ckpt["model_state_dict"])}
        weights = broken["model_state_dict"]
        if math.isnan(value):
            weights["token_embedding.weight"] = weights["token_embedding.weight"].clone().fill_(value)
        else:  # finite, but the logits overflow: the model's output is NaN
            weights = {k: (v * value if k in ("ln_f.weight", "head.weight") else v) for k, v in weights.items()}
            broken["model_state_dict"] = weights
        torch.save(broken, tmp_path / name)
        assert main(["sample", str(tmp_path / name), "--max-new-tokens", "5"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "NaN or inf" in err[0], err


def test_set_timeout_must_be_positive_and_finite(tmp_path, capsys):
    for bad in ("0", "-1", "nan", "inf", "soon"):
        with pytest.raises(SystemExit) as exit_:
            main(["set", str(tmp_path), "learning_rate=1e-3", "--timeout", bad])
        assert exit_.value.code == 2 and "positive, finite" in capsys.readouterr().err


def test_two_identical_sets_at_once_both_exit_0(tiny_config, tmp_path):
    control = TrainingControl()
    run_dir = tmp_path / "run"
    trainer = Trainer(make_config(tiny_config, max_iters=1_000_000), control=control, run_dir=run_dir)
    training = threading.Thread(target=trainer.run)
    training.start()
    try:
        while json.loads((run_dir / "run.json").read_text() if (run_dir / "run.json").exists() else "{}").get(
                "status") != "running":
            time.sleep(0.05)
        codes: list[int] = []
        clients = [threading.Thread(target=lambda: codes.append(main(["set", str(run_dir), "weight_decay=0.05"])))
                   for _ in range(2)]
        for client in clients:
            client.start()
        for client in clients:
            client.join(60)
        assert codes == [0, 0]
    finally:
        control.stop("test over")
        training.join(60)


@pytest.fixture
def process():
    """A subprocess started by the test, killed in teardown whatever happened."""
    started: list[subprocess.Popen] = []

    def start(argv, **kwargs) -> subprocess.Popen:
        started.append(subprocess.Popen(argv, **kwargs))
        return started[-1]
    yield start
    for proc in started:
        proc.kill()
        proc.wait(10)


def test_sample_streams_and_ctrl_c_keeps_the_text_so_far(tiny_config, tmp_path, process):
    Trainer(make_config(tiny_config, max_iters=4), run_dir=tmp_path / "run").run()
    proc = process([sys.executable, "-m", "tui_trainer", "sample", str(tmp_path / "run"), "--prompt", "ab",
                    "--max-new-tokens", "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    first = proc.stdout.read(20)  # tokens arrive while the sample is far from done
    assert first.startswith(b"ab") and len(first) == 20
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"Traceback" not in err and b"KeyboardInterrupt" not in err
    assert len(first + out) > 20
