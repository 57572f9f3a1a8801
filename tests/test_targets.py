"""Bits per byte at every eval, and a run that ends once it reaches a target."""
from __future__ import annotations

import math

from tui_trainer.engine.data import TRAIN_FRACTION, load_tokens, resolve_data_path
from tui_trainer.engine.events import EvalResult, RunFinished, TargetReached
from tui_trainer.engine.follow import read_events, read_status
from tui_trainer.engine.runs import summarize
from tui_trainer.engine.tokenizer import get_tokenizer
from tui_trainer.engine.trainer import Trainer
from tui_trainer.runs_table import run_cells

from .conftest import make_config


def evals(run_dir) -> list[EvalResult]:
    return [e for e in read_events(run_dir) if isinstance(e, EvalResult)]


def test_a_byte_run_reports_its_val_loss_over_ln2_as_bits_per_byte_exactly(tiny_config, tmp_path):
    Trainer(tiny_config, run_dir=tmp_path / "run").run()
    found = evals(tmp_path / "run")
    assert found and all(e.val_bpb == e.val_loss / math.log(2) for e in found)  # one byte per token, exactly
    best = min(found, key=lambda e: e.val_loss)
    assert read_status(tmp_path / "run")["best_val_bpb"] == best.val_bpb
    assert run_cells(summarize(tmp_path / "run"))[4] == f"{best.val_bpb:.3f}"  # the runs table's bpb


def test_a_cl100k_run_divides_by_the_val_splits_own_bytes_per_token(tiny_config, tmp_path):
    config = make_config(tiny_config, tokenizer="cl100k_base", max_iters=10, eval_interval=10)
    Trainer(config, run_dir=tmp_path / "run").run()
    # the val split's text, as the tokenizer's ids: its UTF-8 bytes over its tokens
    tokenizer = get_tokenizer("cl100k_base")
    tokens = load_tokens(resolve_data_path(config.data), tokenizer)
    val = tokens[int(TRAIN_FRACTION * len(tokens)):]
    per_token = sum(len(tokenizer.token_bytes(int(t))) for t in val) / len(val)
    assert per_token > 1.5  # words, not bytes
    for e in evals(tmp_path / "run"):
        assert math.isclose(e.val_bpb, e.val_loss / math.log(2) / per_token, rel_tol=1e-12)


def test_a_run_that_reaches_its_target_ends_finished_and_saved_there(tiny_config, tmp_path):
    first = Trainer(make_config(tiny_config, eval_interval=10), run_dir=tmp_path / "free")
    first.run()
    curve = [e.val_loss for e in evals(tmp_path / "free")]
    target = round((curve[1] + curve[-1]) / 2, 4)  # reached between the first eval after 0 and the end
    reached_at = next(e.step for e in evals(tmp_path / "free") if e.val_loss <= target)
    run = tmp_path / "target"
    result = Trainer(make_config(tiny_config, eval_interval=10, target_val_loss=target), run_dir=run).run()
    assert isinstance(result, RunFinished) and result.status == "finished" and result.step == reached_at < 60
    assert result.reason == f"target val loss {target:g} reached at step {reached_at}"
    hit = [e for e in read_events(run) if isinstance(e, TargetReached)]
    assert len(hit) == 1 and hit[0].step == reached_at and hit[0].value <= target
    status = read_status(run)
    assert status["status"] == "finished" and status["target"]["step"] == reached_at
    assert (run / "model.ckpt").is_file()
    assert f"target at {reached_at:,} in " in run_cells(summarize(run))[1]


def test_a_bits_per_byte_target_stops_too(tiny_config, tmp_path):
    result = Trainer(make_config(tiny_config, target_val_bpb=100.0), run_dir=tmp_path / "run").run()
    assert result.status == "finished" and result.step == 0  # the first eval is below 100 bits per byte
    assert "target val bits per byte 100 reached at step 0" == result.reason
