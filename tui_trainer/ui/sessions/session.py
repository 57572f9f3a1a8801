"""One run the dashboard shows, whatever trains it.

The dashboard holds one session at a time (or none) and never asks which kind it is: it asks
the session what it allows now, sends the user's commands through its ``control`` (the same
commands whether they go to this app's own trainer or, as request files, to another process),
and shows the engine events that the session's worker posts to it.

Kinds: :class:`~.local_run.LocalRun` (this app's own training thread),
:class:`~.watched_run.WatchedRun` (a run another process trains, followed through its files)
and :class:`~.job_run.JobRun` (a torchrun job this app launched, followed the same way).
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from textual.dom import DOMNode

from ...engine.control import SampleRequest
from ...engine.events import Event, RunFailed, RunFinished, RunStarted
from ..state import Allowed


class Control(Protocol):
    """What the user's keys send to a run, at its next step boundary."""

    def stop(self, reason: str = "stopped by user", save: bool = True) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def save_now(self) -> None: ...
    def change(self, changes: dict, source: str = "app", request: str = "") -> None: ...


class RunSession:
    """A run, its control and the worker that brings its events in (see the module docstring)."""

    owned = False  # this app's own run: quitting asks first, and a signal stops and saves it
    in_this_process = False  # trained by this process (else a crash of the app leaves it going on)
    source = "watch"  # how the run's hparams event names a live change sent from this app
    built = False  # the run's model is in this process's memory: it serves save and sample
    recorded_status: dict | None = None  # run.json of a run trained elsewhere: the device panel shows it

    def __init__(self, host: DOMNode, control: Control, run_dir: Path | None) -> None:
        self.host = host  # the dashboard: the session's worker runs on it and posts to it
        self.control = control
        self.run_dir = run_dir
        self.result: RunFinished | RunFailed | None = None  # how the run ended, once it has

    @property
    def title(self) -> str:
        """The dashboard's sub-title while this run is shown."""
        raise NotImplementedError

    def start(self) -> None:
        """Start the worker that trains or follows the run."""
        raise NotImplementedError

    def allows(self, action: str, rules: Allowed) -> bool:
        """Whether ``action`` ("save", "sample" or "detach") reaches the run in a state whose
        rules are ``rules``. Another process's run saves while it runs, and that is all."""
        return action == "save" and rules.save and rules.in_run

    @property
    def detaches_on_hangup(self) -> bool:
        """A closed terminal detaches from the run (its on_hangup), rather than stopping it."""
        return False

    def sample(self, request: SampleRequest) -> None:
        raise NotImplementedError  # allows("sample") is False: the dashboard never asks

    def detach(self) -> None:
        raise NotImplementedError  # allows("detach") is False: the dashboard never asks

    def saw(self, event: Event) -> None:
        """Called by the dashboard for each event of this run, in order."""
        if isinstance(event, RunStarted):
            self.run_dir = Path(event.run_dir)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.result = event

    def leave(self, reason: str) -> None:
        """The dashboard turns to another run, or the app closes: stop following. A run in
        another process goes on."""
        self.host.workers.cancel_group(self.host, "training")
