import ast
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tui_trainer.cli import main

from .conftest import TINY

TINY_SETS = [f"--set={k}={v}" for k, v in TINY.items()]


def gpt_tui(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "tui_trainer", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kwargs)


def loaded(imports: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh Python holds after ``import imports``."""
    code = f"import sys, {imports}; print([m for m in {modules!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(result.stdout)


def test_engine_never_imports_the_ui():
    assert loaded("tui_trainer.engine.trainer, tui_trainer.engine.checkpoint, tui_trainer.cli, tui_trainer.commands",
                  ("textual", "plotext", "textual_plotext", "tui_trainer.ui.app")) == []


def test_the_ui_and_the_engine_import_nothing_from_the_cli():
    assert loaded("tui_trainer.ui.app, tui_trainer.ui.runs_screen, tui_trainer.engine.follow",
                  ("tui_trainer.cli", "tui_trainer.commands", "tui_trainer.console")) == []


def test_help_is_fast_and_does_not_import_torch():
    code = ("import sys, time; t = time.perf_counter(); from tui_trainer.cli import main\n"
            "try: main(['--help'])\nexcept SystemExit: pass\n"
            "print(time.perf_counter() - t, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    seconds, torch_loaded = result.stdout.split()[-2:]
    assert torch_loaded == "False" and float(seconds) < 0.5


def test_train_then_sample(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(corpus), "--out", str(out), *TINY_SETS]) == 0
    printed = capsys.readouterr().out
    assert "eval step 60" in printed and f"saved {out / 'model.ckpt'} at step 60" in printed
    assert main(["sample", str(out), "--prompt", "order", "--max-new-tokens", "20", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("order") and len(text.encode()) >= len("order") + 10


@pytest.mark.parametrize("args, message", [
    (["train", "--set", "d_model=90"], "d_model 90 is not divisible by num_heads 4"),
    (["train", "--set", "max_iters=0"], "max_iters = 0: must be >= 1"),
    (["train", "--set", "d_model=-8"], "d_model = -8: must be >= 1"),
    (["train", "--set", "batch_size=0"], "batch_size = 0: must be >= 1"),
    (["train", "--set", "learning_rate=-0.1"], "learning_rate = -0.1: must be > 0"),
    (["train", "--set", "learning_rate=nan"], "learning_rate = 'nan': must be a finite number"),
    (["train", "--set", "learning_rate=1e400"], "learning_rate = '1e400': must be a finite number"),  # reads as inf
    (["train", "--set", "dropout=" + "9" * 5000], "dropout = '" + "9" * 40 + "'… (5,000 characters): must be a finite"),
    (["train", "--set", "d_model=" + "9" * 5000], "(5,000 characters): must be an integer of at most 4,300 digits"),
    (["train", "--set", "dropout=1"], "dropout = 1.0: must be in [0, 1)"),
    (["train", "--set", "device=tpu"], "device = 'tpu'"),
    (["train", "--set", "d_mode=8"], "unknown key 'd_mode'"),
    (["train", "--set", "max_iters"], "expected KEY=VALUE"),
    (["train", "--set", "batch_size=two"], "batch_size = 'two': must be an integer"),
    (["train", "--config", "no/such.toml"], "config file 'no/such.toml' does not exist"),
    (["train", "--data", "no/such.txt"], "data path 'no/such.txt' does not exist"),
    (["train", "--set", "context_length=100000"], "context_length + 1 = 100001"),
    (["sample", "no/such.ckpt"], "checkpoint 'no/such.ckpt' does not exist"),
])
def test_bad_input_exits_2_with_one_clear_message(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("gpt-tui: error: ")


def _file(name: str, content: bytes):
    def make(tmp_path):
        path = tmp_path / name
        path.write_bytes(content)
        return str(path)
    return make


@pytest.mark.parametrize("flag, make, message", [
    ("--data", _file("empty.txt", b""), "is empty"),
    ("--data", _file("model.bin", bytes(range(256)) * 8), "looks binary"),
    ("--data", lambda tmp_path: (tmp_path / "nothing").mkdir() or str(tmp_path / "nothing"), "holds no text files"),
    ("--data", _file("short.txt", "山禾 燕麦片\n".encode() * 3), "context_length + 1 = 129"),
    ("--config", _file("bad.toml", b"d_model = = 3\n"), "is not valid TOML"),
    ("--config", _file("model.bin", bytes(range(128, 256)) * 8), "is not text (not UTF-8)"),
])
def test_bad_files_exit_2(flag, make, message, tmp_path, capsys):
    assert main(["train", flag, make(tmp_path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command, message", [
    (["runs", "{file}"], "runs folder '{file}': it is a file, not a folder"),
    (["set", "{file}", "learning_rate=1e-3"], "run directory '{file}': it is a file, not a folder"),
    (["train", "--out", "{file}"], "run directory '{file}' cannot be created: it is a file, not a folder"),
    (["train", "--out", "{file}/run"], "cannot be created: '{file}' is a file, not a folder"),
    (["sweep", "{file}/no.toml"], "sweep file '{file}/no.toml' cannot be reached: '{file}' is a file, not a folder"),
    (["train", "--config", "{file}/no.toml"], "config file '{file}/no.toml' cannot be reached: '{file}' is a file"),
    (["train", "--data", "{file}/no.txt"], "data path '{file}/no.txt' cannot be reached: '{file}' is a file"),
    (["sample", "{file}/no.ckpt"], "checkpoint '{file}/no.ckpt' cannot be reached: '{file}' is a file"),
    (["sweep", "no.toml"], "sweep file 'no.toml' does not exist"),
    (["sweep", "sweep.toml", "--out", "{file}/sweep"], "cannot be created: '{file}' is a file, not a folder"),
    (["--out", "{file}"], "run directory '{file}' cannot be created: it is a file, not a folder"),  # the app
    (["--out", "{file}/run"], "run directory '{file}/run' cannot be created: '{file}' is a file"),
    (["sample", "{file}"], "checkpoint '{file}' is not a readable torch file (it is not a pickle)"),
])
def test_a_file_where_a_folder_or_another_kind_of_file_belongs_is_named_as_what_it_is(
        command, message, corpus, tmp_path, monkeypatch, capsys):
    """A message says what is there: a file where a folder belongs "does not exist" misled."""
    monkeypatch.chdir(tmp_path)
    Path("random.bin").write_bytes(bytes(range(256)) * 12)  # no pickle: not one holding code either
    Path("sweep.toml").write_text('trials = 2\n[search]\nlearning_rate = { log_uniform = [1e-4, 1e-2] }\n')
    args = [arg.format(file="random.bin") for arg in command]
    if args[0] == "train":
        args = [*args, "--data", str(corpus), "--set", "max_iters=1"] if "--data" not in args else args
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message.format(file="random.bin") in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_not_a_checkpoint_and_hostile_pickle(tmp_path, capsys):
    text_file = tmp_path / "notes.ckpt"
    text_file.write_text("hello")
    assert main(["sample", str(text_file)]) == 2
    assert "not a readable torch file" in capsys.readouterr().err
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert main(["sample", str(foreign)]) == 2
    assert "not a gpt-tui checkpoint" in capsys.readouterr().err
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    # as torch saves it, and as bare pickles of every protocol: each is said to be refused, a
    # warning about what it holds (torch calls a protocol-4 pickle an "Unsupported operand")
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        hostile = tmp_path / f"evil-{protocol}.ckpt"
        torch.save({"model_state_dict": Evil()}, hostile, pickle_protocol=protocol)
        bare = tmp_path / f"evil-{protocol}.pkl"
        bare.write_bytes(pickle.dumps({"model_state_dict": Evil()}, protocol=protocol))
        for path in (hostile, bare):
            assert main(["sample", str(path)]) == 2
            assert "could run code" in capsys.readouterr().err and not marker.exists(), path


def test_truncated_checkpoint(tiny_config, tmp_path, capsys):
    assert main(["train", "--data", tiny_config.data, "--out", str(tmp_path / "r"), *TINY_SETS,
                 "--set", "max_iters=5"]) == 0
    good = (tmp_path / "r" / "model.ckpt").read_bytes()
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(good[: len(good) // 2])
    capsys.readouterr()
    assert main(["sample", str(cut)]) == 2
    assert "truncated" in capsys.readouterr().err


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_signals_save_a_checkpoint_and_exit(sig, code, corpus, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "tui_trainer", "train", "--data", str(corpus), "--out", str(out),
                             *TINY_SETS, "--set", "max_iters=100000", "--set", "log_interval=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and '"step": 20,' not in (metrics.read_text() if metrics.exists() else ""):
        time.sleep(0.1)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    last_logged = max(l["step"] for l in lines if l["event"] == "step")
    saved = torch.load(out / "model.ckpt", weights_only=True)
    assert saved["step"] >= last_logged >= 20
    assert json.loads((out / "run.json").read_text())["status"] == "stopped"
    assert f"received {signal.Signals(sig).name}" in stdout


def test_runs_lists_every_run_best_first_and_keeps_the_first_start_date(corpus, tmp_path, capsys):
    out = tmp_path / "runs"
    for name, lr in (("slow", "1e-4"), ("fast", "3e-3")):
        assert main(["train", "--data", str(corpus), "--out", str(out / name), *TINY_SETS, "--set=max_iters=20",
                     f"--set=learning_rate={lr}"]) == 0
    started = json.loads((out / "slow" / "run.json").read_text())["started"]
    assert main(["train", "--resume", str(out / "slow"), "--set=max_iters=25"]) == 0
    status = json.loads((out / "slow" / "run.json").read_text())
    assert status["started"] == started and status["resumed"] > started
    capsys.readouterr()
    assert main(["runs", str(out), "--sort", "best"]) == 0
    header, *rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]  # tab-separated on a pipe
    assert header[:4] == ["run", "started", "status", "steps"]
    assert [row[0] for row in rows] == [str(out / "fast"), str(out / "slow")]
    assert rows[1][2:4] == ["finished", "25/25"] and float(rows[0][4]) < float(rows[1][4])
    assert main(["runs", str(tmp_path / "none")]) == 2


@pytest.mark.parametrize("option, value", [("--temperature", "nan"), ("--temperature", "-1"), ("--temperature", "inf"),
                                           ("--top-k", "0"), ("--top-p", "0"), ("--top-p", "1.5"),
                                           ("--max-new-tokens", "0")])
def test_sample_refuses_settings_the_samples_tab_refuses(option, value, tmp_path, capsys):
    assert main(["sample", str(tmp_path), option, value]) == 2  # refused before any checkpoint is read
    assert f"{option} {value}" in capsys.readouterr().err


def test_an_unreadable_file_in_a_data_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import tui_trainer.engine.data as data

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("hello\n" * 100)
    (folder / "locked.txt").write_text("secret\n")
    real_open = open

    def guarded_open(path, *args, **kwargs):  # as a file without read permission behaves (root reads all)
        if str(path).endswith("locked.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(data, "open", guarded_open, raising=False)
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "run"), *TINY_SETS]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "locked.txt" in err and "cannot be read (Permission denied)" in err


@pytest.mark.parametrize("key", ["d_model", "batch_size", "max_iters", "TORCH_SEED"])
def test_integers_too_large_for_the_machine_are_one_line_and_exit_2(key, tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), f"--set={key}={10**30}"]) == 2
    assert f"{key} = 1.000e+30: must be at most 2,147,483,647" in capsys.readouterr().err
