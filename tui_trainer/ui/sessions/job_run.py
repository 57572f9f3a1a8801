"""A torchrun job this app launched (``processes`` > 1): followed through its run directory
like a watched run, but it is this app's own, so quitting asks first and a signal stops it."""
from __future__ import annotations

import subprocess
from pathlib import Path

from ...engine.events import RunFailed
from .watched_run import WatchedRun


def last_line(path: Path) -> str:
    """Where a failed job says why: its last error line, else its last line of words."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if any(c.isalnum() for c in line)]
    except OSError:
        return "no output"
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


class JobRun(WatchedRun):
    owned = True

    def __init__(self, host, run_dir: Path, job: subprocess.Popen, start_offset: int) -> None:
        """``start_offset``: metrics.jsonl's size before the job was launched. A resumed job's
        folder holds the history (drawn already) and the run.json of its last run."""
        super().__init__(host, run_dir)
        self.job = job
        self.start_offset = start_offset

    @property
    def title(self) -> str:
        return f"torchrun {self.run_dir.name}"

    def exited(self) -> bool:
        return self.job.poll() is not None

    def exit_failure(self, step: int) -> RunFailed:
        """The job exited before its run wrote an end: it failed, and its log says why."""
        log = self.run_dir / "torchrun.log"
        return RunFailed(step, "job", f"torchrun exited with code {self.job.returncode} before the run ended: "
                         f"{last_line(log)} (all output in {log})", str(self.run_dir))
