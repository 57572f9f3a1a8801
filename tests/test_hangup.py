"""A dropped terminal, through a pty pair the test owns: however the app is caught mid-draw,
the run is saved and the process is gone within seconds, every time."""
from __future__ import annotations

import json
import sys
import time

import torch

from .conftest import REPO
from .test_terminal import app_command, last_step, wait_until

sys.path.insert(0, str(REPO / "benchmarks"))
from pty_terminal import PtyApp  # noqa: E402

TRIES = 2


def test_hanging_up_mid_draw_saves_and_exits_within_10_s_every_time(corpus, tmp_path):
    for attempt in range(TRIES):
        run_dir = tmp_path / f"run-{attempt}"
        app = PtyApp(app_command(corpus, run_dir), cols=100, rows=30)
        try:
            wait_until(lambda: last_step(run_dir) >= 10 + 7 * attempt)  # a different moment each time
            app.hang_up()
            started = time.time()
            code = app.wait(10)
            assert code == 129, f"try {attempt}: still running {time.time() - started:.0f} s after the hang-up"
        finally:
            app.kill()
        status = json.loads((run_dir / "run.json").read_text())
        assert status["status"] == "stopped" and "SIGHUP" in status["reason"]
        assert not [log.name for log in run_dir.glob("*.log") if log.stat().st_size == 0]  # tidied, either exit
        assert torch.load(run_dir / "model.ckpt", weights_only=True)["step"] >= last_step(run_dir)
