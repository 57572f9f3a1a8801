"""One record of a run: the event codec, the recorder that writes the run directory from the
events, the clock the speed figures come from, and the shared helpers both front ends use."""
import json
import math
import threading
import time
from pathlib import Path

import pytest

from tui_trainer.engine import clock as clock_module
from tui_trainer.engine.clock import TrainingClock
from tui_trainer.engine.control import SampleRequest, TrainingControl
from tui_trainer.engine.config import load_config
from tui_trainer.engine.events import (TAGS, ChangeRefused, CheckpointSaved, Detached, EvalResult, HparamsChanged, LogMessage,
                                       RecordError, RolledBack, RunFailed, RunFinished, RunStarted, SampleText,
                                       SpikeDetected, StateChanged, StepMetrics, TargetReached, from_record,
                                       to_record)
from tui_trainer.engine.follow import MetricsFollower, read_events
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config

RUN = "/runs/a"
EXAMPLES = {
    RunStarted: RunStarted(RUN, "cpu", "float32", 12345, 100, 9000, 1000, 256, 40, 500, 2, "",
                           {"sweep": {"dir": "/runs/s", "study": "s", "trial": 3}}),
    StateChanged: StateChanged("paused", 7),
    StepMetrics: StepMetrics(10, 3.25, 1e-3, 12345.5, 61.0, 120.5, None, 0.5, 2, {
        "groups": [{"name": "block 0", "grad_norm": 0.5, "update_ratio": None}], "embedding_norm": 3.0,
        "head_norm": 2.0}),
    EvalResult: EvalResult(50, 2.5, 2.75, 2.625, 1.32),
    TargetReached: TargetReached(60, "val_loss", 2.7, 2.69, 12.5),
    CheckpointSaved: CheckpointSaved(50, "/runs/a/best.ckpt", "best"),
    SampleText: SampleText(60, "[bold]", "山禾 \"quoted\"\n[/]", [
        {"text": "‹e7 a6›", "piece": "", "id": 54656, "prob": 0.25, "entropy": 1.5,
         "top": [{"text": "[", "id": 58, "prob": 0.5}]}], "best.ckpt", 7, "60-1"),
    HparamsChanged: HparamsChanged(30, {"learning_rate": [0.001, 0.0005], "sample_prompt": ["a", "[b]"]}, "cli", "f00d"),
    ChangeRefused: ChangeRefused(31, "f00e", "invalid config: batch_size = 0: must be >= 1", "cli"),
    Detached: Detached(44, 4321),
    LogMessage: LogMessage("warning", "a [x= warning"),
    SpikeDetected: SpikeDetected(152, 174.5, 1.1, None, "loss 174.5 is above 3 x [its] average", "rollback"),
    RolledBack: RolledBack(152, 150, 10.0, 0.003, "learning rate halved"),
    RunFinished: RunFinished(500, "stopped", "received SIGHUP", 2.5, RUN),
    RunFailed: RunFailed(3, "error", "ValueError: boom", RUN, "Traceback (most recent call last):\n..."),
}


def through_a_file(event, step=0):
    return json.loads(json.dumps(to_record(event, time.time(), step)))


def test_every_event_type_round_trips_through_its_record():
    assert set(EXAMPLES) == set(TAGS)  # a new event type needs an example here, and a tag
    for event in EXAMPLES.values():
        record = through_a_file(event)
        assert record["event"] == TAGS[type(event)] and "run_dir" not in record and "step" in record
        assert from_record(record, {"run_dir": RUN}) == event


def test_records_keep_the_documented_names_and_nan_is_null():
    record = through_a_file(StepMetrics(4, math.nan, 1e-3, math.inf, 1.0, 2.0, 0.25))
    assert record["event"] == "step" and record["loss"] is None and record["tokens_per_sec"] is None
    back = from_record(record)
    assert math.isnan(back.loss) and math.isnan(back.tokens_per_sec) and back.mfu == 0.25
    assert through_a_file(RunStarted(RUN, "cpu", "float32", 1, 2, 3, 4, 5, 6, 7))["step"] == 6
    assert through_a_file(LogMessage("info", "hi"), step=33)["step"] == 33  # every line has a step


def test_old_and_partial_records_still_read():
    # an "end" line from before best_val_loss was recorded: the reader's best so far fills it in
    old_end = {"event": "end", "step": 20, "time": 1.0, "status": "finished", "reason": ""}
    assert from_record(old_end, {"run_dir": RUN, "best_val_loss": 1.5}) == RunFinished(20, "finished", "", 1.5, RUN)
    start = from_record({"event": "start", "step": 0, "device": "cpu"})
    assert start.processes == 1 and start.max_iters == 0 and start.device == "cpu"
    assert from_record({"event": "a-newer-tag", "step": 3}) is None  # a newer tag: skipped, not an error
    with pytest.raises(RecordError):
        from_record({"event": "step", "step": "three", "loss": 1.0})


def test_a_record_of_the_wrong_shape_is_skipped_with_a_warning(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"event": "eval", "step": 2, "val_loss": "low"}\n'
                                            '{"event": "eval", "step": 4, "train_loss": 2.0, "val_loss": 2.5}\n')
    events = MetricsFollower(tmp_path).poll()
    assert isinstance(events[0], LogMessage) and "skipped" in events[0].text
    assert isinstance(events[1], EvalResult) and events[1].val_loss == 2.5


def test_the_recorder_writes_every_event_and_the_replay_is_the_run(tiny_config, tmp_path):
    seen = []
    control = TrainingControl()
    control.change({"learning_rate": 5e-4, "batch_size": 0})  # refused: recorded like the rest
    control.change({"learning_rate": 5e-4})
    trainer = Trainer(make_config(tiny_config, max_iters=20, sample_interval=10, checkpoint_interval=10),
                      on_event=seen.append, control=control, run_dir=tmp_path / "run")
    result = trainer.run()
    live = [e for e in seen if not isinstance(e, StateChanged)]  # a state lives in run.json, not the history
    assert {type(e) for e in live} >= {RunStarted, StepMetrics, EvalResult, CheckpointSaved, SampleText,
                                       ChangeRefused, HparamsChanged, RunFinished}
    assert read_events(tmp_path / "run") == live
    assert load_config(tmp_path / "run" / "config.toml").learning_rate == 5e-4  # the values in force
    status = json.loads((tmp_path / "run" / "run.json").read_text())
    assert status["status"] == "finished" and status["last_step"] == 20 == result.step
    assert (tmp_path / "run" / "samples.txt").read_text().count("--- step ") == 2
    assert trainer.rundir._metrics is None  # closed once the run ended


def test_serving_after_the_run_records_and_closes_again(tiny_config, tmp_path):
    control = TrainingControl()
    trainer = Trainer(make_config(tiny_config, max_iters=4), control=control, run_dir=tmp_path / "run")
    trainer.run()
    server = threading.Thread(target=trainer.serve_after_run)
    server.start()
    control.request_sample(SampleRequest("ab", 3, 1.0, None))
    deadline = time.time() + 30
    while not any(isinstance(e, SampleText) for e in read_events(tmp_path / "run")) and time.time() < deadline:
        time.sleep(0.05)
    control.save_now()
    while not any(isinstance(e, CheckpointSaved) and e.kind == "latest" and e.step == 4
                  for e in read_events(tmp_path / "run")[-1:]) and time.time() < deadline:
        time.sleep(0.05)
    control.close()
    server.join(10)
    assert not server.is_alive()  # closing the control ends the serving thread
    assert trainer.rundir._metrics is None
    kinds = [type(e) for e in read_events(tmp_path / "run")]
    assert kinds[-3:] == [RunFinished, SampleText, CheckpointSaved]


def test_a_bug_in_the_loop_leaves_its_traceback_in_error_log(tiny_config, tmp_path, monkeypatch):
    trainer = Trainer(make_config(tiny_config, max_iters=10), run_dir=tmp_path / "run")

    def broken(*args, **kwargs):
        raise ValueError("a bug")
    monkeypatch.setattr(trainer, "_train_step", broken)
    result = trainer.run()
    assert isinstance(result, RunFailed) and result.kind == "error" and "error.log" in result.message
    assert "ValueError: a bug" in (tmp_path / "run" / "error.log").read_text()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


def test_the_clock_leaves_side_work_out_of_tokens_per_second_and_pauses_out_of_elapsed(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(clock_module.time, "perf_counter", lambda: now[0])
    clock = TrainingClock(elapsed_before=50.0)
    now[0] += 2.0  # two seconds of steps
    with clock.aside():
        now[0] += 3.0  # an eval
        with clock.paused():
            now[0] += 10.0  # a pause
    now[0] += 2.0  # two more seconds of steps
    rate, eta = clock.lap(tokens=4000, steps_done=4, steps_left=8)
    assert rate == 1000.0  # 4000 tokens over 4 s of steps
    assert clock.elapsed() == 50.0 + 7.0  # resumed at 50 s; the eval counts, the pause does not
    assert eta == 7.0 / 4 * 8


def test_engine_messages_name_no_ui_keys():
    """The engine speaks to every front end: a key like F2 means something in the app only."""
    import re

    engine = Path(__file__).parent.parent / "tui_trainer" / "engine"
    keys = re.compile(r"\b(F\d{1,2}|ctrl\+\w)\b")
    found = [f"{path.name}: {m.group(0)}" for path in engine.glob("*.py") for m in keys.finditer(path.read_text())]
    assert not found
