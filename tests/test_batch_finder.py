"""The micro-batch finder: the largest that fits (searched), the fastest on a CPU (timed)."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tui_trainer.engine.batch_finder as batch_finder
from tui_trainer.cli import main
from tui_trainer.engine.batch_finder import _largest_on_gpu, fit_batch, largest, split_step
from tui_trainer.engine.errors import ConfigError
from tui_trainer.engine.probe import build_probe

from .conftest import TINY


@given(threshold=st.integers(0, 5000), limit=st.integers(1, 4096))
def test_the_search_finds_the_largest_size_that_fits_in_few_tries(threshold, limit):
    asked = []
    found = largest(lambda size: asked.append(size) or size <= threshold, limit)
    assert found == (None if threshold < 1 else min(threshold, limit))
    assert len(asked) <= 2 * math.ceil(math.log2(limit + 1)) + 1 and max(asked) <= limit


@given(tokens=st.integers(1, 10**7), found=st.integers(1, 4096), context=st.integers(1, 2048))
def test_a_step_keeps_its_tokens_with_a_micro_batch_no_larger_than_the_one_found(tokens, found, context):
    """F4's "keeping the form's tokens per step": a found micro-batch larger than the whole step
    (batch 8 of 32 tokens, and 128 found) gave 16 times the tokens."""
    batch, accum = split_step(tokens, found, context, 1)
    sequences = -(-tokens // context)  # the target's, rounded up
    assert 1 <= batch <= found and batch * accum * context >= tokens
    assert 2 * batch >= min(found, sequences)  # never a needlessly small micro-batch (977 = 977 x 1)
    exact = [size for size in range(min(found, sequences), 0, -1) if sequences % size == 0][0]
    if 2 * exact >= min(found, sequences):  # a good divisor exists: the step is exactly the target's
        assert (batch, batch * accum) == (exact, sequences)
    assert split_step(None, found, context, 3) == (found, 3)  # no target: the config's own accumulation


def test_a_prime_count_of_sequences_keeps_the_found_micro_batch():
    assert split_step(977 * 1024, 32, 1024, 1) == (32, 31)  # 992 sequences, not 977 micro-batches of 1
    assert split_step(8 * 32, 128, 32, 1) == (8, 1) and split_step(64 * 128, 24, 128, 1) == (16, 4)


def test_on_a_cpu_the_fastest_power_of_two_within_the_memory_budget_wins(tiny_config, monkeypatch):
    found = fit_batch(tiny_config, tokens_per_step=4096)
    sizes = [trial["batch_size"] for trial in found.tried]
    assert sizes == [2 ** i for i in range(len(sizes))] and found.device == "cpu"
    best = max(found.tried, key=lambda trial: trial["tokens_per_sec"])
    assert found.batch_size == min(best["batch_size"], 4096 // 32)
    assert found.batch_size * found.grad_accum_steps * 32 == 4096
    one = batch_finder.estimate_activation_memory(256, 32, 2, 32)  # batch 1's activations (byte vocabulary)
    monkeypatch.setattr(batch_finder, "free_bytes", lambda device: int(one * 4.5 / batch_finder.CPU_SHARE))
    assert max(trial["batch_size"] for trial in fit_batch(tiny_config).tried) == 4  # 8 would pass the budget
    monkeypatch.setattr(batch_finder, "free_bytes", lambda device: 0)
    with pytest.raises(ConfigError, match="not even batch_size 1 fits"):
        fit_batch(tiny_config)
    monkeypatch.setattr(batch_finder, "free_bytes", lambda device: None)  # MPS: unknown, so speed alone decides
    assert fit_batch(tiny_config).batch_size >= 1
    assert fit_batch(tiny_config, cancelled=lambda: True) is None  # stopped: no answer, no error


def test_the_gpu_search_takes_out_of_memory_as_an_answer_and_frees_the_step(tiny_config, monkeypatch):
    probe = build_probe(tiny_config)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: SimpleNamespace(total_memory=10**12))
    for name in ("reset_peak_memory_stats", "synchronize", "empty_cache"):
        monkeypatch.setattr(torch.cuda, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 2**20)
    real = probe.step

    def step(x, y):
        real(x, y)  # the gradients exist when the allocator gives up: they must not stay
        probe.updater.backward(probe.model(x, y)[1])
        if x.shape[0] > 24:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return torch.tensor(0.0)
    probe.step = step
    tried = []
    size, _ = _largest_on_gpu(probe, torch.Generator().manual_seed(0), tried)
    assert size == 24 and [t["batch_size"] for t in tried] == [1, 2, 4, 8, 16, 32, 24, 28, 26, 25]
    assert [t["fits"] for t in tried if t["batch_size"] > 24] == [False] * 4
    assert all(p.grad is None for p in probe.model.parameters())  # dropped after every step, fit or not

    def broken(x, y):
        raise RuntimeError("a bug, not memory")
    probe.step = broken
    with pytest.raises(RuntimeError, match="a bug"):
        _largest_on_gpu(probe, torch.Generator(), [])


def test_fit_batch_prints_one_json_object(corpus, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sets = [f"--set={key}={value}" for key, value in {**TINY, "device": "cpu"}.items()]
    assert main(["fit-batch", "--data", str(corpus), *sets, "--tokens-per-step", "2048", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["batch_size"] * found["grad_accum_steps"] * 32 == 2048
    assert found["batch_size"] in [trial["batch_size"] for trial in found["tried"]] and list(tmp_path.iterdir()) == []


async def test_f4_fills_the_form_keeping_its_tokens_per_step(app_config):
    from textual.widgets import Input

    from tui_trainer.ui.app import create_app
    from tui_trainer.ui.screens import ChoiceScreen

    from .conftest import make_config
    from .test_app import SIZE, press, wait_for

    # 2 x 2 x 32 = 128 tokens: a step smaller than the fastest micro-batch, which it must not grow to
    app = create_app(make_config(app_config, batch_size=2, grad_accum_steps=2))
    async with app.run_test(size=SIZE) as pilot:
        board = app.dashboard
        await press(pilot, "f4")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        assert "tokens per optimizer step, as the form has now" in app.screen.question
        await press(pilot, "a")
        await wait_for(pilot, lambda: not board.fit_batch.running)
        batch = int(board.query_one("#f-batch_size", Input).value)
        accum = int(board.query_one("#f-grad_accum_steps", Input).value)
        assert board.form_config.batch_size == batch and batch * accum * 32 == 128
        assert board.check_action("start", ()) is True and board.state == "idle"
