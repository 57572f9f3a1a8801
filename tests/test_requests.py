"""Request files are data from outside: whatever their name, body or file type, they are read
without blocking, obeyed or refused with a line, and the run goes on."""
from __future__ import annotations

import json
import os
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui_trainer.engine.config import FIELDS, TrainConfig
from tui_trainer.engine.control import (FILE_COMMANDS, MAX_REQUEST_BYTES, REQUESTS_DIR, FileRequests, RunDirControl,
                                        TrainingControl)
from tui_trainer.engine.errors import ConfigError
from tui_trainer.engine.events import ChangeRefused, HparamsChanged, LogMessage, RunFinished, StepMetrics
from tui_trainer.engine.live import check_live_change
from tui_trainer.engine.trainer import Trainer

from .conftest import make_config

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                     max_size=3), max_leaves=8)
names = st.one_of(st.sampled_from([f"x.{command}" for command in FILE_COMMANDS]),
                  st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12)
                  .filter(lambda name: not name.startswith(".")))  # dot files: requests still being written


def fresh_requests(tmp_path) -> FileRequests:
    folder = tmp_path / REQUESTS_DIR
    folder.mkdir(exist_ok=True)
    for name in os.listdir(folder):
        os.unlink(folder / name)
    return FileRequests(tmp_path, interval=0)


def the_changes_check(control: TrainingControl) -> None:
    """Every change a request carried reaches the trainer's one check, which answers or refuses."""
    for changes, source, request in control.take_changes():
        assert isinstance(changes, dict) and isinstance(source, str) and isinstance(request, str)
        try:
            check_live_change(TrainConfig(), changes, 10)
        except ConfigError as exc:
            assert exc.problems and all(isinstance(p, str) and len(p) < 2000 for p in exc.problems)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=names, body=st.binary(max_size=200))
def test_any_name_and_bytes_are_obeyed_or_refused(tmp_path, name, body):
    requests = fresh_requests(tmp_path)
    (requests.folder / name).write_bytes(body)
    control = TrainingControl()
    refused = requests.poll(control)
    assert not (requests.folder / name).exists()  # taken either way: never obeyed twice
    assert all(r.name == name and r.reason for r in refused)
    the_changes_check(control)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, st.fixed_dictionaries({"changes": json_values}),
                      st.fixed_dictionaries({"changes": st.dictionaries(st.sampled_from(sorted(FIELDS)), json_values,
                                                                        max_size=4),
                                             "source": json_values, "request": json_values})))
def test_any_json_in_a_set_request_is_refused_or_checked(tmp_path, body):
    requests = fresh_requests(tmp_path)
    (requests.folder / "x.set").write_text(json.dumps(body), encoding="utf-8")
    control = TrainingControl()
    refused = requests.poll(control)
    changes = control.take_changes()
    assert len(refused) + len(changes) == 1
    control.change(*changes[0]) if changes else None
    the_changes_check(control)


def test_files_that_are_not_plain_are_refused_unread_without_blocking(tmp_path):
    requests = fresh_requests(tmp_path)
    folder = requests.folder
    os.mkfifo(folder / "fifo.stop")  # opening it for reading would wait for a writer forever
    (folder / "folder.save").mkdir()
    os.symlink("/dev/zero", folder / "endless.set")  # reading it would never end
    os.symlink(folder / "fifo.stop", folder / "link.pause")
    (folder / "huge.set").write_bytes(b" " * (MAX_REQUEST_BYTES + 1))
    control = TrainingControl()
    refused = {r.name: r.reason for r in requests.poll(control)}
    assert set(refused) == {"fifo.stop", "folder.save", "endless.set", "link.pause", "huge.set"}
    assert control.stop_reason is None and not control.paused and not control.take_save()
    assert requests.poll(control) == []  # a folder left behind is refused once, not at every poll
    assert os.listdir(folder) == ["folder.save"]


def test_a_run_refuses_bad_requests_with_a_line_and_trains_on(tiny_config, tmp_path):
    run_dir = tmp_path / "run"
    bodies = {"a.set": b'{"changes": [[1, 2]]}',  # the body that killed a run
              "b.set": b"\xff\xfe not text",
              "c.set": json.dumps({"changes": {"learning_rate": "fast"}, "request": "r-1", "source": "cli"}).encode(),
              "d.set": json.dumps({"changes": {"learning_rate": tiny_config.learning_rate}, "request": "r-2",
                                "source": "cli"}).encode(),
              "e.frobnicate": b"", "f": b""}
    seen = []

    def on_event(event):
        seen.append(event)
        if not (isinstance(event, StepMetrics) and event.step == 5):
            return
        for name, body in bodies.items():
            (run_dir / REQUESTS_DIR / name).write_bytes(body)
        os.mkfifo(run_dir / REQUESTS_DIR / "g.stop")
    trainer = Trainer(make_config(tiny_config, max_iters=20, log_interval=5), on_event=on_event, run_dir=run_dir)
    (run_dir / REQUESTS_DIR).mkdir()
    trainer.file_requests.interval = 0
    result = trainer.run()
    assert isinstance(result, RunFinished) and result.step == 20 and result.status == "finished"
    warnings = [e.text for e in seen if isinstance(e, LogMessage) and e.level == "warning"]
    assert len(warnings) == 5 and all("refused" in text and "the run goes on" in text for text in warnings)
    refused = [e for e in seen if isinstance(e, ChangeRefused)]
    assert [(e.request, e.source) for e in refused] == [("r-1", "cli")] and "learning_rate" in refused[0].reason
    answered = [e for e in seen if isinstance(e, HparamsChanged)]
    assert [(e.request, e.changes) for e in answered] == [("r-2", {})]  # in force already: answered all the same
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


@pytest.mark.parametrize("save", [True, False])
def test_a_stop_request_from_another_process_saves_only_when_asked(tiny_config, tmp_path, save):
    """The app's "Quit without saving" on a torchrun job (RunDirControl.stop(save=False))."""
    run_dir = tmp_path / "run"

    def on_event(event):
        if isinstance(event, StepMetrics) and event.step == 5:
            RunDirControl(run_dir).stop("quit", save=save)
    trainer = Trainer(make_config(tiny_config, max_iters=1000, log_interval=5, checkpoint_interval=0),
                      on_event=on_event, run_dir=run_dir)
    trainer.file_requests.interval = 0
    result = trainer.run()
    assert isinstance(result, RunFinished) and result.status == "stopped" and result.step < 1000
    assert (run_dir / "model.ckpt").exists() == save
