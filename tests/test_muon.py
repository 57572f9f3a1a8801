"""optimizer = "muon": Muon for the blocks' matrices, AdamW for the rest, both on the schedule."""
from __future__ import annotations

import torch

from tui_trainer.cli import main
from tui_trainer.engine.checkpoint import load_checkpoint
from tui_trainer.engine.events import LogMessage, StepMetrics
from tui_trainer.engine.follow import read_events
from tui_trainer.engine.model import GPT, ModelConfig
from tui_trainer.engine.optimizer import Updater, muon_matrices
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config


def test_muon_takes_the_blocks_matrices_and_adamw_the_rest(tiny_config):
    model = GPT(ModelConfig(vocab_size=50, d_model=32, num_blocks=2, num_heads=2, context_length=16))
    matrices = {id(p) for p in muon_matrices(model)}
    names = {name for name, p in model.named_parameters() if id(p) in matrices}
    assert names == {f"blocks.{i}.{w}" for i in range(2) for w in
                     ("attn.qkv.weight", "attn.proj.weight", "ffn.net.0.weight", "ffn.net.2.weight")}
    updater = Updater(model, make_config(tiny_config, optimizer="muon", learning_rate=1e-3, muon_lr=0.02),
                      torch.device("cpu"), torch.float32)
    updater.set_lr(5e-4)  # half the peak (a schedule's decay, or a rollback's lower scale): Muon's halves too
    assert [g["lr"] for g in updater.optimizer.muon.param_groups] == [0.01]
    assert [g["lr"] for g in updater.optimizer.adamw.param_groups] == [5e-4]
    assert "Muon: the blocks' matrices" in updater.describe()


def test_a_muon_run_learns_saves_both_states_and_resumes_exactly(tiny_config, tmp_path):
    config = make_config(tiny_config, optimizer="muon")
    straight = Trainer(config, run_dir=tmp_path / "straight").run()
    losses = [e.loss for e in read_events(tmp_path / "straight") if isinstance(e, StepMetrics)]
    assert losses[-1] < losses[0]
    health = [e.health for e in read_events(tmp_path / "straight") if isinstance(e, StepMetrics) and e.health]
    assert health and health[-1]["optimizer"].startswith("Muon")  # the Health tab names the groups
    state = load_checkpoint(tmp_path / "straight" / "model.ckpt")["optimizer_state_dict"]
    assert state["optimizer"] == "muon" and state["muon"]["state"] and state["adamw"]["state"]
    # N + M steps equal N+M steps
    Trainer(make_config(config, max_iters=30), run_dir=tmp_path / "half").run()
    resumed = Trainer(RunPlan.resume(tmp_path / "half", {"max_iters": 60})).run()
    assert resumed.best_val_loss == straight.best_val_loss
    a = load_checkpoint(tmp_path / "straight" / "model.ckpt")["model_state_dict"]
    b = load_checkpoint(tmp_path / "half" / "model.ckpt")["model_state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_forking_to_another_optimizer_starts_its_state_afresh_and_says_so(tiny_config, tmp_path):
    Trainer(make_config(tiny_config, max_iters=20), run_dir=tmp_path / "adamw").run()
    Trainer(RunPlan.fork(tmp_path / "adamw", {"optimizer": "muon", "max_iters": 30}, tmp_path / "muon")).run()
    notes = [e.text for e in read_events(tmp_path / "muon") if isinstance(e, LogMessage)]
    assert any("optimizer state is not muon's" in note for note in notes)
    assert load_checkpoint(tmp_path / "muon" / "model.ckpt")["optimizer_state_dict"]["optimizer"] == "muon"


def test_muon_on_a_torch_without_it_is_one_line_naming_the_version(corpus, tmp_path, capsys, monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon")
    code = main(["train", "--data", str(corpus), "--out", str(tmp_path / "run"), "--set=optimizer=muon",
                 "--set=max_iters=2"])
    err = capsys.readouterr().err
    assert code == 2 and "needs torch.optim.Muon, in torch 2.9 and later" in err and torch.__version__ in err
