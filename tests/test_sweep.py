"""Sweeps: the sweep file's checks, a sweep that prunes, its records, kill -9 and --resume,
workers sharing a study, and a trial pruned by hand."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hypothesis import given, strategies as st

from tests.conftest import TINY, end_processes_under
from tui_trainer.cli import main
from tui_trainer.engine.checkpoint import load_checkpoint
from tui_trainer.engine.config import load_config
from tui_trainer.engine.control import send_request
from tui_trainer.engine.events import RunStarted, StepMetrics
from tui_trainer.engine.follow import read_status
from tui_trainer.engine.sweep_spec import SweepError, parse_sweep, read_sweep_file
from tui_trainer.engine.sweep_study import create_study, open_storage, read_record, storage_field, within_budget
from tui_trainer.engine.sweep_worker import SweepWorker

TRIAL_KEYS = {"number", "state", "params", "best_val_loss", "steps", "run_dir"}


def sweep_file(tmp_path: Path, corpus: Path, body: str, name: str = "sweep.toml", **fixed) -> Path:
    """A sweep over TINY models on the test corpus; ``body`` adds its own keys and tables."""
    base = tmp_path / "base.toml"
    values = {**TINY, "data": str(corpus), "out_dir": str(tmp_path / "runs"), **fixed}
    base.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()), encoding="utf-8")
    path = tmp_path / name
    path.write_text(f'base = "base.toml"\n{body}', encoding="utf-8")
    return path


SEARCH_LR = "[search]\nlearning_rate = { log_uniform = [1e-5, 3e-2] }\n"


# ---- the sweep file ---------------------------------------------------------------------------------
BAD_FILES = [
    ("trials = 4\ncolour = 1\n" + SEARCH_LR, "'colour': not a sweep key"),
    ("trials = 4\n[search]\nlearnin_rate = { log_uniform = [1e-4, 1e-2] }\n", "search.unknown key 'learnin_rate'"),
    ("trials = 4\n[search]\nlearning_rate = { log_uniform = [1e-2, 1e-4] }\n", "low must be below high"),
    ("trials = 4\n[search]\nlearning_rate = { log_uniform = [0.0, 1e-4] }\n", "search.learning_rate.log_uniform"),
    ("trials = 4\n[search]\nlr_schedule = { choice = [] }\n", "search.lr_schedule.choice: is empty"),
    ("trials = 4\n[search]\nlr_schedule = { choice = [\"constant\", \"linear\"] }\n", "must be one of constant"),
    ("trials = 4\n[search]\nbatch_size = { uniform = [1, 8] }\n", "batch_size is an integer key; use int"),
    ("trials = 4\n[search]\nwarmup_iters = { int = [0.5, 8] }\n", "two whole numbers"),
    ("trials = 4\n[search]\ndropout = { normal = [0, 1] }\n", "search.dropout = "),
    ("trials = 4\n[search]\ndropout = { uniform = [0.0, 1.5] }\n", "search.dropout.uniform: dropout = 1.5"),
    ("trials = 4\n[search]\ndevice = { choice = [\"cpu\"] }\n", "search.device: device is not a hyperparameter"),
    ("trials = 4\n[set]\ndropout = 0.1\n[search]\ndropout = { uniform = [0.0, 0.3] }\n", "both set and searched"),
    ("trials = 4\n[set]\nprocesses = 2\n" + SEARCH_LR, "processes: each trial is one process"),
    ("trials = 4\n[set]\nmax_iter = 2\n" + SEARCH_LR, "set.unknown key 'max_iter'"),
    (SEARCH_LR, "trials, minutes: a sweep needs a budget"),
    ("trials = 0\n" + SEARCH_LR, "trials = 0: must be a whole number"),
    ("minutes = -1\n" + SEARCH_LR, "minutes = -1: must be a positive number"),
    ("trials = 4\nsampler = \"grid\"\n" + SEARCH_LR, "sampler = 'grid': must be one of tpe, random"),
    ("trials = 4\npruner = \"always\"\n" + SEARCH_LR, "pruner = 'always': must be one of"),
    ("trials = 4\nobjective = \"accuracy\"\n" + SEARCH_LR, "objective = 'accuracy'"),
    ("trials = 4\nseed = -3\n" + SEARCH_LR, "seed = -3"),
    ("trials = 4\n[set]\nlr_schedule = \"cosine\"\nmin_lr = 1e-3\n" + SEARCH_LR,
     "search at learning_rate = 1e-05: with the base and [set], min_lr = 0.001: must be <= learning_rate"),
]


@pytest.mark.parametrize("body, message", BAD_FILES, ids=[m[:32] for _, m in BAD_FILES])
def test_bad_sweep_files_exit_2_with_one_line_naming_the_key(body, message, corpus, tmp_path, capsys):
    path = sweep_file(tmp_path, corpus, body)
    assert main(["sweep", str(path), "--out", str(tmp_path / "sw")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "sw").exists()  # nothing is made for a sweep that cannot run


def test_a_fork_sweep_refuses_shape_keys_and_names_each(tiny_config, tmp_path, capsys):
    from tui_trainer.engine.trainer import Trainer

    run = tmp_path / "parent"
    Trainer(tiny_config, run_dir=run).run()
    path = tmp_path / "fork.toml"
    path.write_text(f'fork = "{run}"\ntrials = 2\n[set]\nd_model = 64\n[search]\nnum_blocks = {{ int = [1, 3] }}\n'
                    'learning_rate = { log_uniform = [1e-4, 1e-2] }\n', encoding="utf-8")
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err
    assert "set.d_model: a shape key cannot change" in err and "search.num_blocks: a shape key" in err
    assert "learning_rate" not in err.split("problems:")[1]  # what is fine is not named


def test_a_missing_base_is_named_relative_to_the_sweep_file(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('base = "nowhere.toml"\ntrials = 2\n' + SEARCH_LR, encoding="utf-8")
    assert main(["sweep", str(path)]) == 2
    assert str(tmp_path / "nowhere.toml") in capsys.readouterr().err


values = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=True)
                      | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.sampled_from(["log_uniform", "uniform", "int", "choice", "x"]), inner,
                                        max_size=2), max_leaves=6)
keys = st.sampled_from(["learning_rate", "dropout", "batch_size", "lr_schedule", "health", "data", "d_model",
                        "nope", "device", "warmup_iters"])


@given(search=st.dictionaries(keys, values, max_size=3), fixed=st.dictionaries(keys, values, max_size=2),
       top=st.dictionaries(st.sampled_from(["trials", "minutes", "sampler", "pruner", "seed", "objective", "zz"]),
                           values, max_size=3))
def test_any_sweep_table_is_a_spec_or_a_sweep_error(search, fixed, top):
    """Whatever a sweep file holds, it is read or refused with its problems; never a traceback."""
    raw = {**top, "set": fixed, "search": search}
    try:
        spec = parse_sweep(raw, "drawn.toml", base={})
    except SweepError as exc:
        assert exc.problems and all(isinstance(p, str) and "\n" not in p for p in exc.problems)
        return
    assert set(spec.search) == set(search)
    for name, param in spec.search.items():  # every value it can draw is one a trial's config takes
        trial = optuna.create_study().ask()
        assert load_config(None, spec.trial_values({name: param.suggest(trial)}))


# ---- a sweep, start to end ------------------------------------------------------------------------
def test_a_tiny_sweep_prunes_and_leaves_runs_that_load(corpus, tmp_path, capsys):
    path = sweep_file(tmp_path, corpus, 'trials = 4\nsampler = "random"\nseed = 3\n' + SEARCH_LR,
                      max_iters=60, eval_interval=15)
    out = tmp_path / "sw"
    assert main(["sweep", str(path), "--out", str(out)]) == 0
    record = read_record(out)
    trials = record["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    assert all(TRIAL_KEYS <= set(t) for t in trials)
    states = [t["state"] for t in trials]
    assert "pruned" in states and "complete" in states and set(states) <= {"complete", "pruned"}
    for trial in trials:
        run = Path(trial["run_dir"])
        status = read_status(run)
        assert status["sweep"] == {"dir": str(out.resolve()), "study": record["study_name"], "trial": trial["number"]}
        assert status["status"] == ("finished" if trial["state"] == "complete" else "pruned")
        assert load_checkpoint(run / "model.ckpt")["step"] == trial["steps"]  # a pruned trial saved where it stopped
        assert trial["steps"] == (60 if trial["state"] == "complete" else trial["pruned_at"])
    pruned = next(t for t in trials if t["state"] == "pruned")
    assert read_status(Path(pruned["run_dir"]))["reason"].startswith(f"pruned by asha at step {pruned['pruned_at']}")
    best = min((t for t in trials if t["state"] == "complete"), key=lambda t: t["best_val_loss"])
    assert record["best"]["number"] == best["number"]
    best_config = load_config(out / "best.toml")  # ready for gpt-tui --config
    assert best_config.learning_rate == pytest.approx(best["params"]["learning_rate"])
    assert best_config.max_iters == 60
    # the study opens with Optuna itself from sweep.json's two fields (as optuna-dashboard would)
    study = optuna.load_study(study_name=record["study_name"], storage=open_storage(record["storage"]))
    assert study.best_trial.number == best["number"]
    assert len(study.trials) == 4
    assert f"best: trial {best['number']}" in capsys.readouterr().out
    assert main(["sweep", "--resume", str(out)]) == 0  # the budget is spent: nothing more runs
    assert len(read_record(out)["trials"]) == 4


def study_in_process(tmp_path: Path, corpus: Path, body: str, **fixed):
    """A sweep's spec, folder, storage and study, for a worker of this process: (spec, out, storage, study)."""
    spec = read_sweep_file(sweep_file(tmp_path, corpus, body, **fixed))
    out = tmp_path / "sw"
    out.mkdir()
    storage = storage_field(out, None)
    return spec, out, storage, create_study(spec, "in-process", storage)


def test_a_trial_pruned_by_hand_stops_saved_and_counts_as_pruned(corpus, tmp_path):
    spec, out, storage, study = study_in_process(tmp_path, corpus, 'trials = 1\npruner = "none"\n' + SEARCH_LR,
                                                 max_iters=400)
    sent = []

    def prune_at_first_step(event) -> None:
        if isinstance(event, RunStarted):
            sent.append(Path(event.run_dir))
        elif isinstance(event, StepMetrics) and len(sent) == 1:
            send_request(sent[0], "prune")  # what the Sweep screen's prune key sends
            sent.append(event.step)
    ended = SweepWorker(study, spec, out, storage, say=lambda line: None, on_event=prune_at_first_step).run()
    assert [e.state for e in ended] == ["pruned"]
    status = read_status(sent[0])
    assert status["status"] == "pruned" and status["last_step"] < 400
    assert study.trials[0].state == optuna.trial.TrialState.PRUNED
    assert load_checkpoint(sent[0] / "model.ckpt")["step"] == status["last_step"]


def test_two_workers_that_ask_at_once_meet_the_budget_exactly():
    study = optuna.create_study()
    first, second = study.ask(), study.ask()  # both asked for the budget's last trial
    assert within_budget(study, first.number, 1)
    assert not within_budget(study, second.number, 1)


# ---- processes: kill -9, --resume, --workers ------------------------------------------------------
@pytest.fixture
def processes(tmp_path):
    """Processes a test starts; each is ended after it, whatever the test did."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    end_processes_under(tmp_path)


def gpt_tui(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tui_trainer", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kwargs)


def wait_for(predicate, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def test_two_workers_share_the_journal_and_a_sweep_killed_mid_trial_resumes_to_its_budget(corpus, tmp_path,
                                                                                        processes, capsys):
    """--workers 2 on the embedded storage: two trials run at once, in two processes; then
    kill -9 of all three processes mid-trial, and --resume runs the budget out, losing nothing."""
    path = sweep_file(tmp_path, corpus, 'trials = 4\npruner = "none"\nsampler = "random"\nseed = 1\n' + SEARCH_LR,
                      max_iters=200, eval_interval=40)
    out = tmp_path / "sw"
    sweep = gpt_tui("sweep", str(path), "--out", str(out), "--workers", "2")
    processes.append(sweep)

    def states() -> list[str]:
        return [t["state"] for t in read_record(out).get("trials", [])]
    # two running at once, after at least one completed: each worker has a trial of its own
    wait_for(lambda: "complete" in states() and states().count("running") == 2)
    running = [Path(t["run_dir"]) for t in read_record(out)["trials"] if t["state"] == "running"]
    wait_for(lambda: all(read_status(run).get("last_step", 0) >= 40 for run in running))  # mid-trial
    pids = {read_status(run)["pid"] for run in running}
    assert len(pids) == 2 and sweep.pid not in pids  # the supervisor trains nothing itself
    import psutil

    family = [psutil.Process(sweep.pid), *psutil.Process(sweep.pid).children(recursive=True)]
    for process in family:
        process.kill()
    psutil.wait_procs(family, timeout=30)
    before = read_record(out)["trials"]
    complete_before = [t for t in before if t["state"] == "complete"]
    assert main(["sweep", "--resume", str(out)]) == 0  # in this process: the kill needed one of its own
    output = capsys.readouterr().out
    trials = read_record(out)["trials"]
    assert all(t in trials for t in complete_before)  # nothing completed is lost
    interrupted = [t for t in trials if t["state"] == "interrupted"]
    assert len(interrupted) == 2 and all(f"trial {t['number']} was interrupted" in output for t in interrupted)
    for lost in interrupted:  # each run again, once, with the same values
        (retry,) = [t for t in trials if t.get("retry_of") == lost["number"]]
        assert retry["params"] == lost["params"] and retry["state"] == "complete"
    assert [t["state"] for t in trials].count("complete") == 4
    assert len({t["run_dir"] for t in trials}) == len(trials)


POSTGRES = os.environ.get("GPT_TUI_TEST_POSTGRES", "")


@pytest.mark.skipif(not POSTGRES, reason="no PostgreSQL server: .ci/run starts one (.ci/postgres start DIR) and "
                    "sets GPT_TUI_TEST_POSTGRES to its URL")
def test_workers_of_two_processes_share_a_postgresql_study(corpus, tmp_path, processes):
    import uuid

    path = sweep_file(tmp_path, corpus, 'trials = 4\npruner = "none"\n' + SEARCH_LR, max_iters=150)
    name = f"here-{uuid.uuid4().hex[:8]}"  # the study is named after its folder: one of its own in a shared server
    first_dir, second_dir = tmp_path / name, tmp_path / "there"
    first = gpt_tui("sweep", str(path), "--out", str(first_dir), "--storage", POSTGRES)
    processes.append(first)
    # the joiner starts at once, beside it (so that both take trials), and again until the study exists
    deadline = time.monotonic() + 90
    while True:
        second = gpt_tui("sweep", "--join", POSTGRES, "--study", name, "--out", str(second_dir))
        processes.append(second)
        joined = second.communicate(timeout=180)[0]
        not_yet = "is not in storage" in joined or "carries no sweep spec" in joined  # made, its spec not yet set
        if second.returncode == 0 or not not_yet or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    outputs = [first.communicate(timeout=180)[0], joined]
    assert first.returncode == 0 and second.returncode == 0, outputs
    assert read_record(first_dir)["storage"] == POSTGRES and read_record(first_dir)["study_name"] == name
    study = optuna.load_study(study_name=name, storage=POSTGRES)
    states = [t.state for t in study.trials if not t.user_attrs.get("surplus")]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    dirs = [Path(t.user_attrs["run_dir"]).parent for t in study.trials if t.state.is_finished()
            and not t.user_attrs.get("surplus")]
    assert set(dirs) == {first_dir.resolve(), second_dir.resolve()}  # both machines' workers ran trials
    optuna.delete_study(study_name=name, storage=POSTGRES)


def test_a_trial_stopped_in_the_dashboard_counts_as_pruned_and_the_sweep_goes_on(corpus, tmp_path):
    spec, out, storage, study = study_in_process(tmp_path, corpus, 'trials = 2\npruner = "none"\n' + SEARCH_LR,
                                                 max_iters=300)  # long enough for a request's poll
    runs = []

    def stop_the_first(event) -> None:
        if isinstance(event, RunStarted):
            runs.append(Path(event.run_dir))
        elif isinstance(event, StepMetrics) and len(runs) == 1 and not (runs[0] / "requests").exists():
            send_request(runs[0], "stop")  # what F7 on a watched trial sends
    ended = SweepWorker(study, spec, out, storage, say=lambda line: None, on_event=stop_the_first).run()
    assert [e.state for e in ended] == ["pruned", "complete"]  # cut short by hand; the worker went on
    assert not any(t.get("retry_of") is not None for t in read_record(out)["trials"])


def test_two_workers_that_find_the_same_dead_trial_queue_it_once(tmp_path):
    from tui_trainer.engine.sweep_study import rerun_interrupted

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    storage = storage_field(tmp_path, None)
    spec = parse_sweep({"trials": 2, "search": {"learning_rate": {"log_uniform": [1e-4, 1e-2]}}}, "t", base={})
    study = create_study(spec, "dead", storage)
    trial = study.ask()
    trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    import socket
    for key, value in (("host", socket.gethostname()), ("pid", int(dead.stdout)), ("started", time.time())):
        trial.set_user_attr(key, value)
    views = [optuna.load_study(study_name="dead", storage=open_storage(storage)) for _ in range(2)]
    for view in views:
        view.get_trials()  # each worker's own view of the journal, taken before either marks the trial
    assert sum(len(rerun_interrupted(view)) for view in views) >= 1
    fresh = optuna.load_study(study_name="dead", storage=open_storage(storage))
    retries = [t for t in fresh.trials if t.user_attrs.get("retry_of") == 0]
    assert len(retries) == 1 and retries[0].state == optuna.trial.TrialState.WAITING


def test_a_copied_sweep_folder_uses_its_own_journal(corpus, tmp_path):
    import shutil

    from tui_trainer.engine.sweep_study import local_storage

    path = sweep_file(tmp_path, corpus, 'trials = 1\npruner = "none"\n' + SEARCH_LR, max_iters=20)
    assert main(["sweep", str(path), "--out", str(tmp_path / "first")]) == 0
    shutil.copytree(tmp_path / "first", tmp_path / "copy")
    record = read_record(tmp_path / "copy")
    assert local_storage(tmp_path / "copy", record["storage"]) == {"journal": str((tmp_path / "copy" / "study.journal").resolve())}
    before = (tmp_path / "first" / "study.journal").read_bytes()
    assert main(["sweep", "--resume", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "first" / "study.journal").read_bytes() == before  # the original is untouched
