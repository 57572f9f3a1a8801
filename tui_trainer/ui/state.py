"""The app's states, and what each one allows, in one table.

Every decision the app takes by state (may F5 start? does ctrl+q ask first? does a signal stop
and save?) reads a column of :data:`RULES`. A new state without a row fails at import, so it
can never fall through an ``in (...)`` test that forgot it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class AppState(str, Enum):
    """A str enum: ``app.state == "running"`` reads as before, and the engine's StateChanged
    strings ("compiling", "running", "paused") convert with ``AppState(text)``."""

    IDLE = "idle"            # nothing trained yet, or a run chosen to resume
    STARTING = "starting"    # reading the corpus and building the model (or a followed run not yet reporting)
    COMPILING = "compiling"  # torch.compile before the first step
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"    # asked to stop: finishing the step and saving
    ENDED = "ended"          # finished, stopped or failed; the model stays for save and sample


@dataclass(frozen=True)
class Allowed:
    start: bool        # F5 starts a new run
    steer: bool        # pause/resume and stop reach the run
    save: bool         # ctrl+s writes a checkpoint (now or at the next step)
    sample: bool       # F8 samples the model
    runs: bool         # F2 opens the Runs screen
    in_run: bool       # a run is going on: quit asks first, a signal stops and saves, the form locks


RULES: dict[AppState, Allowed] = {
    AppState.IDLE: Allowed(start=True, steer=False, save=False, sample=False, runs=True, in_run=False),
    AppState.STARTING: Allowed(start=False, steer=False, save=False, sample=False, runs=False, in_run=True),
    AppState.COMPILING: Allowed(start=False, steer=True, save=True, sample=True, runs=False, in_run=True),
    AppState.RUNNING: Allowed(start=False, steer=True, save=True, sample=True, runs=False, in_run=True),
    AppState.PAUSED: Allowed(start=False, steer=True, save=True, sample=True, runs=False, in_run=True),
    AppState.STOPPING: Allowed(start=False, steer=False, save=False, sample=False, runs=False, in_run=True),
    AppState.ENDED: Allowed(start=True, steer=False, save=True, sample=True, runs=True, in_run=False),
}
if set(RULES) != set(AppState):  # pragma: no cover - a state added without its row
    raise RuntimeError(f"ui/state.py: no rules for {set(AppState) - set(RULES)}")


def allowed(state: AppState) -> Allowed:
    return RULES[state]
