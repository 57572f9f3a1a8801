"""Runs that other processes train: following metrics.jsonl, `gpt-tui watch`, the Runs screen
(listing, resuming, comparing) and optional W&B logging."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch
from textual.widgets import DataTable

from tui_trainer.cli import main
from tui_trainer.engine.events import (EvalResult, LogMessage, RunFailed, RunFinished, RunStarted, SampleText,
                                       StateChanged, StepMetrics)
from tui_trainer.engine.follow import MetricsFollower, RunWatcher, effective_status
from tui_trainer.engine.rundir import RunDir
from tui_trainer.engine.runs import compare_label, differing_keys, list_runs
from tui_trainer.engine.run_plan import RunPlan
from tui_trainer.engine.trainer import Trainer
from tui_trainer.ui.app import create_app
from tui_trainer.ui.runs_screen import RunsScreen
from tui_trainer.ui.sessions.job_run import JobRun

from .conftest import TINY, make_config
from .test_app import SIZE, log_text, press, wait_for

TINY_SETS = [f"--set={k}={v}" for k, v in TINY.items()]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def finished_run(config, run_dir: Path) -> Path:
    result = Trainer(config, run_dir=run_dir).run()
    assert isinstance(result, RunFinished)
    return run_dir


# ---- reading a run's files --------------------------------------------------------------------
def test_follower_reads_a_growing_file_line_by_line(tmp_path):
    rundir = RunDir(tmp_path / "run")
    follower = MetricsFollower(rundir.path)
    assert follower.poll() == []
    rundir.append(dict(event="start", step=0, max_iters=10, num_params=5, device="cpu", vocab_size=7))
    rundir.append(dict(event="step", step=2, loss=3.5, lr=1e-3, tokens_per_sec=100.0, elapsed=1.0, eta=4.0))
    first = follower.poll()
    assert [type(e) for e in first] == [RunStarted, StepMetrics]
    assert first[0].max_iters == 10 and first[1].loss == 3.5 and first[1].eta == 4.0
    with open(rundir.metrics_path, "a") as handle:  # a line caught half-written
        handle.write('{"event": "eval", "step": 2, "train_loss": 3.0, ')
    assert follower.poll() == []
    with open(rundir.metrics_path, "a") as handle:
        handle.write('"val_loss": 3.25}\nnot json\n')
    rundir.append(dict(event="step", step=4, loss=None, lr=1e-3, tokens_per_sec=100.0, elapsed=2.0, eta=3.0))  # NaN is written as null
    rundir.append(dict(event="end", step=4, status="stopped", reason="stop requested"))
    events = follower.poll()
    assert [type(e) for e in events] == [EvalResult, LogMessage, StepMetrics, RunFinished]  # "not json": a warning
    assert events[0].val_loss == 3.25 and events[2].loss != events[2].loss
    assert events[3].status == "stopped" and events[3].best_val_loss == 3.25 and follower.ended


def test_a_run_whose_process_is_gone_reads_as_interrupted(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    rundir = RunDir(tmp_path / "run")
    rundir.update_status(status="running", pid=int(dead.stdout))
    rundir.append(dict(event="step", step=30, loss=2.0, lr=1e-3, tokens_per_sec=1.0, elapsed=1.0, eta=1.0))
    assert effective_status(rundir.status) == "interrupted"
    events = RunWatcher(rundir.path).poll()
    assert isinstance(events[-1], RunFailed) and events[-1].kind == "interrupted" and "--resume" in events[-1].message
    rundir.update_status(pid=os.getpid())
    assert effective_status(rundir.status) == "running"
    watcher = RunWatcher(rundir.path)
    assert [type(e) for e in watcher.poll()] == [StepMetrics, StateChanged] and not watcher.done


def test_trainer_log_replays_as_the_same_events(tiny_config, tmp_path):
    seen = []
    config = make_config(tiny_config, max_iters=20, sample_interval=10)
    Trainer(config, on_event=seen.append, run_dir=tmp_path / "run").run()
    replayed = MetricsFollower(tmp_path / "run").poll()
    kinds = (RunStarted, StepMetrics, EvalResult, SampleText, RunFinished)
    live = [e for e in seen if isinstance(e, kinds)]
    assert [e for e in replayed if isinstance(e, kinds)] == live  # every field, floats included


# ---- gpt-tui watch ----------------------------------------------------------------------------
def start_cli_run(corpus: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui_trainer", "train", "--data", str(corpus), "--out",
                             str(run_dir), *TINY_SETS, "--set", "max_iters=1000000", "--set", "log_interval=2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def gpt_tui_set(run_dir: Path, *changes: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_trainer", "set", str(run_dir), *changes], capture_output=True,
                          text=True, timeout=60)


async def test_watch_follows_a_cli_run_and_its_save_and_stop_reach_it(tiny_config, corpus, tmp_path, capsys):
    run_dir = tmp_path / "run"
    proc = start_cli_run(corpus, run_dir)
    try:
        deadline = time.time() + 60
        while not (run_dir / "run.json").exists() or effective_status(json.loads(
                (run_dir / "run.json").read_text())) != "running":
            assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
            await asyncio.sleep(0.1)
        # gpt-tui set refuses with exit 2 and one line: a locked key, an unknown key, a bad value
        for change, problem in (("d_model=64", "cannot change while the run trains"), ("nope=1", "unknown key"),
                                ("batch_size=0", "batch_size")):
            assert main(["set", str(run_dir), change]) == 2
            err = capsys.readouterr().err
            assert problem in err and err.count("\n") == 1, err
        app = create_app(tiny_config, watch=run_dir)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.dashboard.state == "running" and app.dashboard.plot.raw.total > 3)
            first = app.dashboard.plot.raw.total
            await wait_for(pilot, lambda: app.dashboard.plot.raw.total > first + 3)  # it follows the growing file
            assert app.dashboard.progress.step > 0 and "watching" in app.dashboard.sub_title
            # live keys change from the watcher's form; the others are locked, and say how to fork
            assert app.query_one("#f-d_model").disabled and "fork" in str(app.query_one("#f-d_model").tooltip)
            lr = app.query_one("#f-learning_rate")
            lr.value = "0.0007"
            lr.focus()
            await press(pilot, "enter")
            await wait_for(pilot, lambda: any(r["event"] == "hparams" and r["source"] == "watch" and
                                              r["changes"] == {"learning_rate": [3e-3, 7e-4]} for r in records(run_dir)))
            # gpt-tui set applies a change and exits 0 once the run has; the watcher sees it too
            applied = await asyncio.to_thread(gpt_tui_set, run_dir, "eval_iters=3")
            assert applied.returncode == 0 and "eval_iters 4 → 3 (set in the cli)" in applied.stdout
            await wait_for(pilot, lambda: app.query_one("#f-eval_iters").value == "3")  # the watcher sees it too
            await press(pilot, "ctrl+s")
            await wait_for(pilot, lambda: any(r["event"] == "checkpoint" and r["kind"] == "latest"
                                              for r in records(run_dir)))
            await press(pilot, "f7")
            await wait_for(pilot, lambda: app.dashboard.state == "ended")
            assert "stopped at step" in log_text(app)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    saved = torch.load(run_dir / "model.ckpt", weights_only=True)
    assert saved["step"] >= max(r["step"] for r in records(run_dir) if r["event"] == "step")
    assert saved["config"]["learning_rate"] == 7e-4 and saved["config"]["eval_iters"] == 3
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"
    assert main(["set", str(run_dir), "eval_iters=5"]) == 2
    assert "is not training (stopped)" in capsys.readouterr().err


async def test_watch_of_an_ended_run_shows_it_ended(tiny_config, tmp_path):
    run_dir = finished_run(make_config(tiny_config, max_iters=20), tmp_path / "run")
    app = create_app(tiny_config, watch=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        assert app.dashboard.plot.raw.total == 4 and app.dashboard.plot.eval_val.total == 2
        assert app.dashboard.progress.step == 20 and "finished at step 20" in log_text(app)
        assert app.dashboard.check_action("save", ()) is None  # nobody is left to ask


def test_watch_command_rejects_what_is_not_a_run(tmp_path, capsys):
    assert main(["watch", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["watch", str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err


# ---- the Runs screen --------------------------------------------------------------------------
async def test_runs_screen_lists_resumes_and_compares(tiny_config, tmp_path):
    runs_dir = Path(tiny_config.out_dir)
    short = make_config(tiny_config, max_iters=20)
    finished_run(short, runs_dir / "a-finished")
    finished_run(make_config(short, learning_rate=1e-3), runs_dir / "b-other-lr")
    assert {r.name for r in list_runs(runs_dir)} == {"a-finished", "b-other-lr"}
    assert differing_keys([r.config for r in list_runs(runs_dir)]) == ["learning_rate"]

    app = create_app(tiny_config)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f2")
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(2)]  # cells are plain Text
        assert {row[1] for row in rows} == {"a-finished", "b-other-lr"}
        assert all(row[3] == "finished" and row[4] == "20/20" for row in rows)
        # compare: mark both, overlay their val curves labelled by the key that differs
        await press(pilot, "space", "down", "space", "c")
        await pilot.pause()
        assert not isinstance(app.screen, RunsScreen)
        labels = [label for label, _ in app.dashboard.plot.compare]
        assert sorted(labels) == ["a-finished learning_rate=0.003", "b-other-lr learning_rate=0.001"]
        assert all(series.total == 2 for _, series in app.dashboard.plot.compare)
        # and the table of what differs (the Sweep screen's): one column for the one key, the best starred
        compare = app.screen
        assert compare.__class__.__name__ == "CompareScreen"
        assert [str(c.label) for c in compare.table.columns.values()][2] == "learning_rate"
        cells = [[str(cell) for cell in compare.table.get_row_at(i)] for i in range(2)]
        best = min(list_runs(runs_dir), key=lambda r: r.best_val_loss).name
        assert [row[0] for row in cells if row[0].startswith("★")] == [f"★{best}"]
        await press(pilot, "escape")
        assert app.screen is app.dashboard
        # resume a finished run: it waits for a larger max_iters, then F5 continues it
        await press(pilot, "f2")
        target = Path(app.screen.table.ordered_rows[0].key.value)
        await press(pilot, "enter")
        await pilot.pause()
        assert app.dashboard.choices.chosen == ("resume", target) and app.dashboard.state == "idle"
        assert app.dashboard.plot.raw.total == 4  # its history is in the plot already
        app.dashboard.form.query_one("#f-max_iters").value = "30"
        await pilot.pause()
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        assert app.dashboard.plot.raw.total == 6 and app.dashboard.plot.raw.xs[0] == 5  # whole history, then the new steps
        # fork the other run: its config in the form, F5 trains it on in a folder of its own
        await press(pilot, "f2")
        await pilot.pause()
        paths = [Path(row.key.value) for row in app.screen.table.ordered_rows]
        other = next(path for path in paths if path != target)  # the one still at step 20
        app.screen.table.move_cursor(row=paths.index(other))
        await press(pilot, "f")
        await pilot.pause()
        assert app.dashboard.choices.chosen == ("fork", other) and app.dashboard.plot.fork_parent[0] == other.name  # its curve, dimmed, behind
        app.dashboard.form.query_one("#f-max_iters").value = "25"
        app.dashboard.form.query_one("#f-learning_rate").value = "0.002"
        await pilot.pause()
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        child = Path(app.dashboard.run_dir)
        assert child.parent == other.parent and child != other and app.dashboard.plot.fork_parent[0] == other.name
    assert json.loads((child / "run.json").read_text())["parent"] == {"run_dir": str(other), "step": 20}
    assert [r["step"] for r in records(child) if r["event"] in ("start", "step")] == [20, 25]
    assert torch.load(child / "model.ckpt", weights_only=True)["config"]["learning_rate"] == 0.002
    assert torch.load(other / "model.ckpt", weights_only=True)["step"] == 20  # the parent is untouched
    starts = [r for r in records(target) if r["event"] == "start"]
    assert [s["step"] for s in starts] == [0, 20]  # appended to the same metrics.jsonl
    assert torch.load(target / "model.ckpt", weights_only=True)["step"] == 30
    assert json.loads((target / "run.json").read_text())["last_step"] == 30


async def test_runs_screen_resumes_a_stopped_run_at_once(tiny_config, tmp_path):
    run_dir = tmp_path / "runs" / "stopped"
    trainer = Trainer(make_config(tiny_config, max_iters=40), run_dir=run_dir)
    trainer.control.stop("test")  # stops before the first step, after the step-0 eval
    trainer.run()
    app = create_app(tiny_config)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f2", "enter")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
        assert app.dashboard.progress.step == 40 and "resuming" in log_text(app)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_compare_label_names_the_differing_values(tiny_config, tmp_path):
    runs = [finished_run(make_config(tiny_config, max_iters=5, eval_interval=5, d_model=d), tmp_path / f"r{d}")
            for d in (16, 32)]
    summaries = list_runs(tmp_path)
    keys = differing_keys([s.config for s in summaries])
    assert keys == ["d_model"]
    assert sorted(compare_label(s, keys) for s in summaries) == ["r16 d_model=16", "r32 d_model=32"]
    assert len(runs) == 2


# ---- Weights & Biases -------------------------------------------------------------------------
class FakeWandb(types.ModuleType):
    def __init__(self, fail: bool = False):
        super().__init__("wandb")
        self.fail = fail
        self.inits, self.logs, self.finished = [], [], []

    def init(self, **kwargs):
        if self.fail:
            raise RuntimeError("api key not configured")
        self.inits.append(kwargs)
        return types.SimpleNamespace(log=lambda data, step: self.logs.append((step, data)),
                                     finish=lambda exit_code: self.finished.append(exit_code))


def test_wandb_logs_config_losses_lr_and_speed(tiny_config, tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    result = Trainer(make_config(tiny_config, max_iters=20, wandb=True, wandb_project="p"),
                     run_dir=tmp_path / "run").run()
    assert isinstance(result, RunFinished)
    (init,) = fake.inits
    assert init["project"] == "p" and init["config"]["learning_rate"] == tiny_config.learning_rate
    steps = {step for step, data in fake.logs if "train/loss" in data}
    assert steps == {5, 10, 15, 20}
    assert all({"lr", "tokens_per_sec", "health/grad_norm", "health/block 1/update_ratio"} <= set(data)
               for _, data in fake.logs if "train/loss" in data)
    assert [step for step, data in fake.logs if "eval/val_loss" in data] == [0, 20]
    assert fake.finished == [0]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["wandb_id"] == init["id"]


@pytest.mark.parametrize("module", [None, FakeWandb(fail=True)], ids=["not-installed", "cannot-start"])
def test_wandb_missing_or_failing_only_warns(module, tiny_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", module)  # None: `import wandb` raises ImportError
    seen = []
    result = Trainer(make_config(tiny_config, max_iters=10, wandb=True), on_event=seen.append,
                     run_dir=tmp_path / "run").run()
    assert isinstance(result, RunFinished) and result.step == 10
    warnings = [e.text for e in seen if isinstance(e, LogMessage) and e.level == "warning"]
    assert len(warnings) == 1 and "training goes on" in warnings[0].lower()
    assert ("pip install" in warnings[0]) == (module is None)


def test_wandb_off_never_imports_it(tiny_config, tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    Trainer(make_config(tiny_config, max_iters=5, eval_interval=5), run_dir=tmp_path / "run").run()
    assert fake.inits == [] and fake.logs == []


# ---- processes > 1 from the app ---------------------------------------------------------------
async def test_app_launches_torchrun_and_follows_it(tiny_config, tmp_path):
    config = make_config(tiny_config, processes=2, device="cpu", max_iters=1000000, log_interval=2)
    run_dir = tmp_path / "job"
    app = create_app(config, run_dir=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.dashboard.state == "running" and app.dashboard.plot.raw.total > 3, timeout=90)
        assert isinstance(app.dashboard.session, JobRun) and "torchrun" in log_text(app)
        await press(pilot, "ctrl+s")
        await wait_for(pilot, lambda: any(r["event"] == "checkpoint" and r["kind"] == "latest"
                                          for r in records(run_dir)))
        await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == "ended", timeout=60)
        job = app.dashboard.session.job
    assert job.wait(timeout=30) == 0
    status = json.loads((run_dir / "run.json").read_text())
    assert status["status"] == "stopped" and status["processes"] == 2
    assert torch.load(run_dir / "model.ckpt", weights_only=True)["step"] == status["last_step"]


async def test_runs_screen_watches_a_run_another_process_trains(tiny_config, corpus, tmp_path):
    run_dir = Path(tiny_config.out_dir) / "elsewhere"
    proc = start_cli_run(corpus, run_dir)
    try:
        deadline = time.time() + 60
        while effective_status(json.loads((run_dir / "run.json").read_text())
                               if (run_dir / "run.json").exists() else {}) != "running":
            assert proc.poll() is None and time.time() < deadline
            await asyncio.sleep(0.1)
        app = create_app(tiny_config)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, "f2")
            assert str(app.screen.table.get_row_at(0)[3]) == "running"  # cells are plain Text
            await press(pilot, "enter")  # resume of a running run follows it instead of training it twice
            await wait_for(pilot, lambda: app.dashboard.run_dir == run_dir and app.dashboard.state == "running")
            await wait_for(pilot, lambda: app.dashboard.plot.raw.total > 2)
            await press(pilot, "ctrl+q")  # leaves the run going
        assert proc.poll() is None
    finally:
        proc.terminate()
    assert proc.wait(timeout=30) == 143
    assert json.loads((run_dir / "run.json").read_text())["status"] == "stopped"


# ---- a run directory is never trained over ------------------------------------------------------
def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def test_cli_refuses_an_out_that_holds_a_run_and_changes_nothing(tiny_config, corpus, tmp_path, capsys):
    run_dir = finished_run(make_config(tiny_config, max_iters=20, eval_interval=10), tmp_path / "good")
    before = snapshot(run_dir)
    sets = [f"--set={k}={v}" for k, v in {**TINY, "max_iters": 5}.items()]
    assert main(["train", "--data", str(corpus), "--out", str(run_dir), *sets]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run" in err and f"--resume {run_dir}" in err
    assert snapshot(run_dir) == before


async def test_app_asks_before_training_into_a_run_and_new_keeps_the_old_one(tiny_config, tmp_path):
    run_dir = finished_run(make_config(tiny_config, max_iters=20, eval_interval=10), tmp_path / "good")
    before = snapshot(run_dir)
    app = create_app(make_config(tiny_config, max_iters=10), run_dir=run_dir)
    async with app.run_test(size=SIZE) as pilot:
        await press(pilot, "f5")
        await pilot.pause()
        assert "already holds a run (finished, step 20)" in app.screen.question
        await press(pilot, "f5", "escape")  # a second F5 asks nothing more; escape changes nothing
        await pilot.pause()
        assert app.dashboard.state == "idle" and snapshot(run_dir) == before
        await press(pilot, "f5", "n")
        await wait_for(pilot, lambda: app.dashboard.state == "ended")
    assert app.dashboard.run_dir == tmp_path / "good-2" and (tmp_path / "good-2" / "model.ckpt").exists()
    assert snapshot(run_dir) == before


def test_requests_left_by_an_earlier_process_never_act_on_a_resume(tiny_config, tmp_path):
    from tui_trainer.engine.control import REQUESTS_DIR

    run_dir = finished_run(make_config(tiny_config, max_iters=10, eval_interval=10), tmp_path / "run")
    (run_dir / REQUESTS_DIR).mkdir(exist_ok=True)
    for name in ("1.stop", "2.pause"):  # a stop sent after the process died, a pause never resumed
        (run_dir / REQUESTS_DIR / name).write_text("")
    result = Trainer(RunPlan.resume(run_dir, {"max_iters": 20})).run()
    assert isinstance(result, RunFinished) and result.step == 20 and result.status == "finished"


def test_a_line_that_is_not_a_record_is_skipped_with_a_warning_and_following_goes_on(tmp_path):
    rundir = RunDir(tmp_path / "run")
    follower = MetricsFollower(rundir.path)
    rundir.append(dict(event="step", step=1, loss=2.0, lr=1e-3, tokens_per_sec=1.0, elapsed=1.0, eta=1.0))
    with open(rundir.metrics_path, "a") as handle:
        handle.write("garbage from a disk error\n[1, 2]\n")
    rundir.append(dict(event="step", step=2, loss=1.5, lr=1e-3, tokens_per_sec=1.0, elapsed=2.0, eta=1.0))
    events = follower.poll()
    warnings = [e for e in events if isinstance(e, LogMessage)]
    assert len(warnings) == 2 and all(w.level == "warning" and "skipped" in w.text for w in warnings)
    assert [e.step for e in events if isinstance(e, StepMetrics)] == [1, 2]


def fake_run(path: Path, **status) -> Path:
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": "running", "started": time.time() - 5, **status}))
    (path / "metrics.jsonl").write_text("")
    return path


def test_stale_runs_are_interrupted_and_other_hosts_are_said_to_be_unknowable(tmp_path):
    from tui_trainer.engine.runs import summarize

    here = __import__("socket").gethostname()
    alive = fake_run(tmp_path / "alive", pid=os.getpid(), host=here, started=time.time())
    reused = fake_run(tmp_path / "reused", pid=os.getpid(), host=here, started=1000.0)  # pid now someone else's
    dead = fake_run(tmp_path / "dead", pid=2**22 + 12345, host=here)
    remote = fake_run(tmp_path / "remote", pid=os.getpid(), host="gpu-box-7")
    detached = fake_run(tmp_path / "detached", pid=os.getpid(), host=here, started=time.time(), detached=True)
    assert summarize(alive).status == "running" and summarize(detached).status == "running, detached"
    assert summarize(reused).status == "interrupted"
    assert summarize(dead).status == "interrupted"
    assert summarize(remote).status == "running on gpu-box-7?"
    said = [e for e in RunWatcher(remote).poll() if isinstance(e, LogMessage)]
    assert len(said) == 1 and "cannot tell" in said[0].text


async def test_a_watcher_of_a_dead_run_ends_and_its_stop_never_hangs(tiny_config, tmp_path):
    dead = fake_run(tmp_path / "dead", pid=2**22 + 12345, host=__import__("socket").gethostname())
    app = create_app(tiny_config)
    async with app.run_test(size=SIZE) as pilot:
        app.dashboard.choices.watch_run(dead)
        await press(pilot, "f7")
        await wait_for(pilot, lambda: app.dashboard.state == "ended", timeout=10)
        assert app.dashboard.check_action("runs", ()) is True  # F2 works again


async def test_a_ui_crash_while_watching_leaves_the_watched_run_untouched(tiny_config, corpus, tmp_path,
                                                                          monkeypatch):
    from tui_trainer.engine.control import REQUESTS_DIR
    from tui_trainer.ui.dashboard import DashboardScreen
    from tui_trainer.ui.crash import report_crash

    def broken(self):
        raise RuntimeError("a bug in a key handler")

    monkeypatch.setattr(DashboardScreen, "action_toggle_log_y", broken)
    run_dir = tmp_path / "run"
    proc = start_cli_run(corpus, run_dir)
    try:
        deadline = time.time() + 60
        while not (run_dir / "metrics.jsonl").exists() or '"step"' not in (run_dir / "metrics.jsonl").read_text():
            assert proc.poll() is None and time.time() < deadline
            await asyncio.sleep(0.1)
        app = create_app(tiny_config)
        with pytest.raises(RuntimeError, match="a bug in a key handler"):
            async with app.run_test(size=SIZE) as pilot:
                app.dashboard.choices.watch_run(run_dir)
                await wait_for(pilot, lambda: app.dashboard.state == "running")
                await press(pilot, "f9")
                await pilot.pause()
        code, line = report_crash(app)
        assert code == 1 and f"the run goes on; follow it again with: gpt-tui watch {run_dir}" in line
        assert "a bug in a key handler" in (run_dir / "watch-error.log").read_text()
        assert not any((run_dir / REQUESTS_DIR).glob("*"))  # no stop, no save was sent to it
        time.sleep(1.0)
        assert proc.poll() is None  # still training
    finally:
        proc.terminate()
    assert proc.wait(timeout=30) == 143
