"""torchrun with 2 gloo processes on CPU: one writer, agreed stops, checkpoints that load alone."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tui_trainer.cli import main
from tui_trainer.engine.checkpoint import load_checkpoint, model_from_checkpoint
from tui_trainer.engine.control import send_request
from tui_trainer.engine.events import RunFinished
from tui_trainer.engine.mfu import flops_per_token, gpu_peak_flops
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer

from .conftest import TINY

SETS = [f"--set={k}={v}" for k, v in {**TINY, "device": "cpu", "log_interval": 1}.items()]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_gloo_processes_train_and_the_checkpoint_works_alone(corpus, tmp_path, capsys):
    """With Muon: its all-reduced gradients, and a checkpoint of both optimizers (AdamW's DDP
    runs in the stop tests below)."""
    run_dir = tmp_path / "ddp"
    # `processes = 2` makes `gpt-tui train` start torchrun itself
    done = subprocess.run([sys.executable, "-m", "tui_trainer", "train", "--data", str(corpus), "--out", str(run_dir),
                           *SETS, "--set=max_iters=20", "--set=eval_interval=10", "--set=grad_accum_steps=2",
                           "--set=processes=2", "--set=optimizer=muon"], capture_output=True, text=True, timeout=240)
    # On failure show the ranks' own lines (they come first) as well as torchrun's summary at the end.
    assert done.returncode == 0, done.stderr[:3000] + "\n[...]\n" + done.stderr[-1500:]
    assert done.stdout.count("finished at step 20") == 1  # rank 0 alone reports
    lines = records(run_dir)
    steps = [r for r in lines if r["event"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, 21))  # once per step, from one writer
    assert all(math.isfinite(r["loss"]) for r in steps)
    (start,) = [r for r in lines if r["event"] == "start"]
    assert start["processes"] == 2 and start["tokens_per_step"] == 2 * 2 * TINY["batch_size"] * TINY["context_length"]
    evals = [r["val_loss"] for r in lines if r["event"] == "eval"]
    assert evals[-1] < evals[0]
    assert json.loads((run_dir / "run.json").read_text())["processes"] == 2

    # saved from the unwrapped model: loads and samples in one process
    ckpt = load_checkpoint(run_dir / "model.ckpt")
    assert ckpt["step"] == 20 and not any(k.startswith("module.") for k in ckpt["model_state_dict"])
    assert set(ckpt["optimizer_state_dict"]) == {"optimizer", "muon", "adamw"}
    model_from_checkpoint(ckpt, run_dir / "model.ckpt")
    capsys.readouterr()
    assert main(["sample", str(run_dir), "--max-new-tokens", "16", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip()

    # and resumes on a different number of processes
    result = Trainer(RunPlan.resume(run_dir, {"max_iters": 26, "processes": 1})).run()
    assert isinstance(result, RunFinished) and result.step == 26
    assert [r["step"] for r in records(run_dir) if r["event"] == "step"][-6:] == list(range(21, 27))


@pytest.mark.parametrize("how", ["gpt-tui set max_iters", "ctrl-c"])
def test_a_stop_stops_every_rank_after_saving(how, corpus, tmp_path):
    """Ranks stop together: on a Ctrl+C, and at a max_iters lowered by `gpt-tui set`, which rank 0
    reads and every rank applies at the same step (or the job would hang in its collectives). The
    same `set` makes learning_rate 1000, far past where any model's loss stays within spike_factor
    of its average (10 was not: at times the loss rose only 2.9x): every rank finds the spike and
    rolls back at the same step."""
    run_dir = tmp_path / "ddp"
    job = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            "-m", "tui_trainer", "train", "--data", str(corpus), "--out", str(run_dir), *SETS,
                            "--set=max_iters=1000000", "--set=spike_action=rollback"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        deadline = time.time() + 120
        warm = 60 if how.startswith("gpt-tui") else 10  # past the spike check's 50 steps of warm-up
        while not (run_dir / "metrics.jsonl").exists() or not any(
                r["event"] == "step" and r["step"] >= warm for r in records(run_dir)):
            assert time.time() < deadline and job.poll() is None, job.stderr.read()[-2000:] if job.poll() else "slow"
            time.sleep(0.2)
        if how == "gpt-tui set max_iters":
            send_request(run_dir, "pause")  # changes apply while paused too: the step stays put meanwhile
            while json.loads((run_dir / "run.json").read_text())["status"] != "paused":
                assert time.time() < deadline
                time.sleep(0.1)
            target = max(r["step"] for r in records(run_dir) if r["event"] == "step") + 8
            assert main(["set", str(run_dir), f"max_iters={target}", "learning_rate=1000"]) == 0
            send_request(run_dir, "resume")
            assert job.wait(timeout=60) == 0
        else:  # a terminal's Ctrl+C reaches torchrun and every rank at once
            os.killpg(job.pid, signal.SIGINT)
            job.wait(timeout=60)
    finally:
        job.kill()
    status = json.loads((run_dir / "run.json").read_text())
    last_logged = max(r["step"] for r in records(run_dir) if r["event"] == "step")
    assert status["status"] == ("finished" if how.startswith("gpt-tui") else "stopped")
    if how.startswith("gpt-tui"):
        assert last_logged == target == status["last_step"]
        spike, rollback = [r for r in records(run_dir) if r["event"] in ("spike", "rollback")]
        assert spike["step"] == rollback["step"] and rollback["lr_after"] < 1000
    assert torch.load(run_dir / "model.ckpt", weights_only=True)["step"] == status["last_step"] >= last_logged


def test_mfu_estimate_and_peak_table():
    # nanoGPT's estimate: 6N + 12·L·H·Q·T
    assert flops_per_token(1_000, 2, 4, 8, 16) == 6_000 + 12 * 2 * 4 * 8 * 16
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3", torch.bfloat16) == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe", torch.bfloat16) == 756e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-40GB", torch.float32) == 156e12  # TF32: half the bf16 rate
    assert gpu_peak_flops("Some Future GPU", torch.bfloat16) is None  # shown as "unknown"


def test_cpu_run_reports_mfu_against_a_measured_matmul(tiny_config, tmp_path):
    seen = []
    from .conftest import make_config

    Trainer(make_config(tiny_config, max_iters=10, eval_interval=10), on_event=seen.append,
            run_dir=tmp_path / "run").run()
    mfus = [e.mfu for e in seen if type(e).__name__ == "StepMetrics"]
    assert mfus and all(0 < m < 1 for m in mfus)


def test_info_reports_the_machine_and_a_measured_cpu_peak(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "cpu_matmul_gflops" in out
    gflops = float(out.split("cpu_matmul_gflops")[1].split()[0].replace(",", ""))
    assert gflops > 0.1
