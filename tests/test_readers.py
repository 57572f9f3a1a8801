"""Every file gpt-tui reads, fed anything a crash, a hand edit or another version could leave:
one reader per format, and every command and screen that reads it survives.

The formats: run.json (follow.read_status), config.toml (runs.read_run_config for listings,
config.load_config where a run is resumed or forked), metrics.jsonl (follow.MetricsFollower,
the events' codec), keymap.toml (keymap.read_keymap), presets (the form's loader), and the
settings file (settings.with_user_settings). Checkpoints have theirs in test_hardening.py.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_trainer.cli import main
from tui_trainer.engine.config import FIELDS
from tui_trainer.engine.follow import STATUS_FIELDS, RunWatcher, read_events, read_status
from tui_trainer.engine.runs import compare_label, differing_keys, list_runs, read_run_config, summarize, val_curve
from tui_trainer.runs_table import run_cells
from tui_trainer.ui.app import create_app
from tui_trainer.ui.keymap import read_keymap
from tui_trainer.ui.runs_screen import RunsScreen

from .test_app import SIZE, press, wait_for

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                   max_size=4), max_leaves=12)
# run.json objects whose keys are mostly the real ones, so the fields' checks are what is tested
STATUS = st.dictionaries(st.sampled_from(sorted(STATUS_FIELDS)) | st.text(max_size=8), JSON, max_size=8)
TOML_VALUE = st.recursive(st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=True) |
                          st.text(max_size=20),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=8),
                                                                                    inner, max_size=3), max_leaves=8)
CONFIG = st.dictionaries(st.sampled_from(sorted(FIELDS)) | st.text(min_size=1, max_size=8), TOML_VALUE, max_size=8)
VALID_METRICS = b"".join(json.dumps(r).encode() + b"\n" for r in [
    {"event": "start", "step": 0, "time": 1.0, "run_dir": "r", "device": "cpu", "dtype": "float32", "num_params": 10,
     "vocab_size": 5, "train_tokens": 100, "val_tokens": 10, "tokens_per_step": 8, "max_iters": 20},
    {"event": "step", "step": 5, "time": 2.0, "loss": 3.0, "lr": 1e-3, "tokens_per_sec": 100.0, "elapsed": 1.0,
     "eta": 3.0},
    {"event": "eval", "step": 10, "time": 3.0, "train_loss": 2.9, "val_loss": 3.1, "best_val_loss": 3.1},
    {"event": "end", "step": 20, "time": 4.0, "status": "finished", "reason": "", "best_val_loss": 3.1}])
HOSTILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def make_run(root: Path, name: str, status: bytes, config: bytes = b"", metrics: bytes = VALID_METRICS) -> Path:
    run = root / name
    run.mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_bytes(status)
    (run / "config.toml").write_bytes(config)
    (run / "metrics.jsonl").write_bytes(metrics)
    return run


def read_everything(root: Path, capsys) -> None:
    """What each front end reads of a folder of runs: the listing (CLI and Runs screen cells),
    a comparison's labels and curves, a watcher's first poll."""
    runs = list_runs(root)
    for run in runs:
        run_cells(run)
        val_curve(run.path)
        RunWatcher(run.path).poll()
    differing_keys([run.config for run in runs])
    [compare_label(run, sorted(FIELDS)) for run in runs]
    assert main(["runs", str(root)]) == 0
    capsys.readouterr()


@HOSTILE
@given(status=STATUS | JSON)
def test_any_run_json_value_is_read_as_its_fields_with_their_types(tmp_path_factory, capsys, status):
    root = tmp_path_factory.mktemp("runs")
    run = make_run(root, "odd", json.dumps(status).encode())
    fields = read_status(run)
    for key, value in fields.items():
        assert key not in STATUS_FIELDS or isinstance(value, STATUS_FIELDS[key])
    summary = summarize(run)
    assert isinstance(summary.last_step, int) and isinstance(summary.status, str)
    assert math.isinf(summary.best_val_loss) or isinstance(summary.best_val_loss, float)
    read_everything(root, capsys)


@HOSTILE
@given(data=st.binary(max_size=200))
def test_any_bytes_in_run_json_or_metrics_are_survived(tmp_path_factory, capsys, data):
    root = tmp_path_factory.mktemp("runs")
    make_run(root, "bytes", data, metrics=data)
    make_run(root, "torn", data, metrics=VALID_METRICS[:len(data) % len(VALID_METRICS)])
    read_everything(root, capsys)


@HOSTILE
@given(values=CONFIG)
def test_any_config_toml_document_is_read_as_its_valid_keys(tmp_path_factory, capsys, values):
    root = tmp_path_factory.mktemp("runs")
    run = make_run(root, "edited", b'{"status": "finished"}', tomli_w.dumps(values).encode())
    config = read_run_config(run)
    assert set(config) <= set(FIELDS) and all(values[key] == config[key] for key in config)
    read_everything(root, capsys)


@HOSTILE
@given(cut=st.integers(0, len(VALID_METRICS)))
def test_every_truncation_of_metrics_is_read_up_to_the_cut(tmp_path_factory, cut):
    run = make_run(tmp_path_factory.mktemp("runs"), "cut", b'{"status": "running"}', metrics=VALID_METRICS[:cut])
    whole_lines = VALID_METRICS[:cut].count(b"\n")
    assert len(read_events(run)) == whole_lines  # a half line waits; it is never an error


@HOSTILE
@given(keymap=st.dictionaries(st.text(max_size=12), TOML_VALUE, max_size=5))
def test_any_keymap_document_is_read_or_refused_with_a_line(tmp_path_factory, keymap):
    path = tmp_path_factory.mktemp("keys") / "keymap.toml"
    path.write_text(tomli_w.dumps(keymap))
    mapped, problems = read_keymap(path, {"start", "stop", "quit", "runs.back"})
    assert all(isinstance(keys, str) for keys in mapped.values())
    assert all(str(path) in problem for problem in problems)


ODD_STATUSES = [b"[]", b"null", b"7", b'"running"', b'{"status": 5, "last_step": "x", "parent": [1]}',
                b'{"started": "yesterday", "max_iters": true, "best_val_loss": "low"}', b'{"status": "runn',
                b"\xff\xfe", b'{"parent": {"run_dir": 3}}', b'{"status": "running", "pid": -1, "host": ""}']


async def test_f2_lists_compares_and_watches_odd_runs_and_the_app_stays(app_config, tmp_path, capsys):
    root = Path(app_config.out_dir)
    for i, status in enumerate(ODD_STATUSES):
        make_run(root, f"odd-{i}", status, b"learning_rate = [1, 2]\nd_model = 'big'\n")
    make_run(root, "good", json.dumps({"status": "finished", "last_step": 20, "started": 1.0}).encode())
    rows = len(ODD_STATUSES) + 1
    app = create_app(app_config)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f2")
        assert isinstance(app.screen, RunsScreen) and app.screen.table.row_count == rows
        for _ in range(rows):
            await press(pilot, "space", "down")
        await press(pilot, "c")  # every run's val curve, overlaid, and the table of what differs over it
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CompareScreen")
        assert app.screen.table.row_count == rows
        await press(pilot, "escape")
        await wait_for(pilot, lambda: app.screen is app.dashboard and len(app.dashboard.plot.compare) == rows)
        await press(pilot, "f2", "w")  # follow the first: its end is in its metrics, whatever run.json says
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        assert app.is_running
    read_everything(root, capsys)


def test_a_resume_rewrites_an_odd_run_json_and_trains_on(tiny_config, tmp_path, capsys):
    from tui_trainer.engine.trainer import Trainer

    from .conftest import make_config

    run = tmp_path / "run"
    Trainer(make_config(tiny_config, max_iters=4, eval_interval=4), run_dir=run).run()
    for i, status in enumerate(ODD_STATUSES[:6]):
        (run / "run.json").write_bytes(status)
        assert main(["train", "--resume", str(run), f"--set=max_iters={6 + 2 * i}"]) == 0
        assert read_status(run)["status"] == "finished" and read_status(run)["last_step"] == 6 + 2 * i
    capsys.readouterr()


def test_a_finished_run_whose_metrics_were_cut_short_is_followed_to_its_end(tmp_path):
    from tui_trainer.engine.events import LogMessage, RunFinished

    run = make_run(tmp_path, "cut", json.dumps({"status": "stopped", "last_step": 12, "reason": "quit"}).encode(),
                   metrics=VALID_METRICS[:VALID_METRICS.index(b'{"event": "end"')])
    watcher = RunWatcher(run)
    events = watcher.poll()
    assert watcher.done and isinstance(events[-1], RunFinished) and events[-1].status == "stopped"
    assert events[-1].step == 12 and any(isinstance(e, LogMessage) and "ends before" in e.text for e in events)


def test_a_stopped_and_resumed_run_is_followed_past_its_old_end(tmp_path):
    """An end line in the history is not the end: the last record decides."""
    history = VALID_METRICS + VALID_METRICS.replace(b'"event": "end"', b'"event": "log"').split(b"\n", 1)[0] + b"\n"
    run = make_run(tmp_path, "again", json.dumps({"status": "running", "pid": 1, "host": "elsewhere"}).encode(),
                   metrics=history)
    watcher = RunWatcher(run)
    watcher.poll()
    watcher.poll()
    assert not watcher.done


def test_a_job_launched_onto_an_ended_run_is_followed_from_its_own_start(tmp_path):
    run = make_run(tmp_path, "job", json.dumps({"status": "finished", "last_step": 20}).encode())
    watcher = RunWatcher(run, (run / "metrics.jsonl").stat().st_size)  # the old history, run.json's old end: not the job's
    assert watcher.poll() == [] and watcher.poll() == [] and not watcher.done
    start, rest = VALID_METRICS.split(b"\n", 1)
    with open(run / "metrics.jsonl", "ab") as handle:
        handle.write(start + b"\n")  # the job's start line, a moment before it rewrites run.json
    assert [type(e).__name__ for e in watcher.poll()] == ["RunStarted"] and not watcher.done
    (run / "run.json").write_text(json.dumps({"status": "running", "host": "elsewhere"}))
    with open(run / "metrics.jsonl", "ab") as handle:
        handle.write(rest)
    watcher.poll()
    assert watcher.done and watcher.follower.ended


def test_a_resume_after_a_torn_last_line_starts_on_a_line_of_its_own(tiny_config, tmp_path):
    from tui_trainer.engine.run_plan import RunPlan
    from tui_trainer.engine.trainer import Trainer

    from .conftest import make_config

    run = tmp_path / "run"
    Trainer(make_config(tiny_config, max_iters=4, eval_interval=4), run_dir=run).run()
    with open(run / "metrics.jsonl", "ab") as handle:
        handle.write(b'{"event": "step", "st')  # a crash mid-line
    Trainer(RunPlan.resume(run, {"max_iters": 6})).run()
    lines = (run / "metrics.jsonl").read_bytes().splitlines()
    assert lines.count(b'{"event": "step", "st') == 1
    assert [e.step for e in read_events(run) if type(e).__name__ == "RunFinished"] == [4, 6]


def test_a_resume_or_fork_with_nothing_to_train_is_refused_by_name(tiny_config, tmp_path, capsys):
    from tui_trainer.engine.trainer import Trainer

    from .conftest import make_config

    run = tmp_path / "run"
    Trainer(make_config(tiny_config, max_iters=4, eval_interval=4), run_dir=run).run()
    for argv in (["--resume", str(run)], ["--fork", str(run), "--set", "max_iters=3"]):
        assert main(["train", *argv]) == 2
        err = capsys.readouterr().err
        assert "max_iters" in err and "the checkpoint is at step 4 already" in err
    assert json.loads((run / "run.json").read_text())["last_step"] == 4 and not (tmp_path / "runs").exists()
