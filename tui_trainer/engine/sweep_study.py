"""A sweep's Optuna study: its storage, sampler and pruner, its budget, and the record of its
trials that scripts read (``sweep.json``, ``best.toml``).

The study lives in a journal file in the sweep folder by default (Optuna's storage for several
processes on one machine; SQLite is not safe there), or in an RDB such as PostgreSQL, where
workers on other machines join it. Each trial carries, as user attributes, its run directory
and where it runs (host, pid, a heartbeat), so an interrupted trial is told from a running one.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import FrozenTrial, TrialState

from .atomic import write_text_atomic
from .config import config_from_dict, to_toml
from .errors import GptTuiError
from .follow import process_alive
from .sweep_spec import SweepSpec

JOURNAL = "study.journal"
SWEEP_JSON = "sweep.json"
BEST_TOML = "best.toml"
STOP_FILE = "stop"  # left in the sweep folder: no new trial starts (the Sweep screen's stop)
HEARTBEAT_SECONDS = 30.0
STALE_AFTER = 10 * 60.0  # a trial on another machine that sent no heartbeat this long is taken as interrupted
STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed",
          TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}

optuna.logging.set_verbosity(optuna.logging.WARNING)  # gpt-tui says what happens, one line per trial
# multivariate TPE, its constant liar and PED-ANOVA are marked experimental: their interface may change
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


class SweepStorageError(GptTuiError):
    """A storage that cannot be opened, or a study that is not in it."""


def journal_path(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / JOURNAL


def storage_field(sweep_dir: Path, url: str | None) -> str | dict[str, str]:
    """sweep.json's ``storage``: the RDB URL, or ``{"journal": PATH}``."""
    return url if url else {"journal": str(journal_path(sweep_dir).resolve())}


def local_storage(sweep_dir: Path, recorded: Any) -> str | dict[str, str]:
    """The storage of the sweep in ``sweep_dir``: a journal is the one in the folder itself (a
    copied or moved sweep folder never writes into the original's); an RDB URL as recorded."""
    if isinstance(recorded, str) and recorded:
        return recorded
    if isinstance(recorded, dict) or journal_path(sweep_dir).is_file():
        return storage_field(sweep_dir, None)
    raise SweepStorageError(f"{str(sweep_dir)!r} names no storage (sweep.json's storage is {recorded!r}) and has no "
                            f"{JOURNAL}: pass the folder `gpt-tui sweep` made")


def open_storage(storage: str | dict[str, str]) -> optuna.storages.BaseStorage:
    """The storage ``storage_field`` names."""
    try:
        if isinstance(storage, dict):
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(storage["journal"]))
        return optuna.storages.RDBStorage(storage, engine_kwargs={"pool_pre_ping": True})
    except (ImportError, ValueError, OSError, KeyError) as exc:
        raise SweepStorageError(f"storage {_shown(storage)}: {exc}") from None
    except Exception as exc:  # SQLAlchemy's OperationalError and kin: a server that is down or refuses
        raise SweepStorageError(f"storage {_shown(storage)} cannot be opened: {str(exc).splitlines()[0]}; "
                                "check the URL, the server and its credentials") from None


def _shown(storage: str | dict[str, str]) -> str:
    """A storage for a message, with no password."""
    if isinstance(storage, dict):
        return repr(storage.get("journal", "?"))
    from sqlalchemy.engine import make_url

    try:
        return repr(make_url(storage).render_as_string(hide_password=True))
    except Exception:  # not a URL at all (or not even text: a hand-edited sweep.json)
        return repr(str(storage)[:60])


def sampler_for(spec: SweepSpec, salt: int) -> optuna.samplers.BaseSampler:
    """TPE or random; a seed is offset by ``salt`` so that workers (and a resume) draw apart."""
    seed = None if spec.seed is None else spec.seed + salt
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # TPE models the trials after its random start: a third of the budget (3 at the least, and at
    # most Optuna's 10); jointly over the keys; and with a "liar" for trials still running, so
    # that workers side by side do not draw the same values.
    startup = 10 if spec.trials is None else max(3, min(10, spec.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True, constant_liar=True)


def pruner_for(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """The pruners measure in training steps; the first judged step is the first eval after 0."""
    first = spec.eval_interval
    if spec.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=first, reduction_factor=3)
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=first)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=first, max_resource=max(spec.max_iters, first + 1),
                                              reduction_factor=3)
    return optuna.pruners.NopPruner()


def create_study(spec: SweepSpec, name: str, storage: str | dict[str, str], salt: int = 0) -> optuna.Study:
    try:
        study = optuna.create_study(study_name=name, storage=open_storage(storage), direction="minimize",
                                    sampler=sampler_for(spec, salt), pruner=pruner_for(spec))
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepStorageError(f"storage {_shown(storage)} holds a study named {name!r} already: continue it "
                                "(gpt-tui sweep --resume SWEEP_DIR, or --join URL --study NAME), or name a new "
                                "--out") from None
    study.set_user_attr("gpt_tui_spec", spec.to_attrs())
    study.set_user_attr("created", time.time())
    return study


def load_study(name: str, storage: str | dict[str, str], salt: int = 0) -> tuple[optuna.Study, SweepSpec]:
    """A study gpt-tui made, with the spec it carries."""
    opened = open_storage(storage)
    try:
        plain = optuna.load_study(study_name=name, storage=opened)
    except KeyError:
        names = ", ".join(s.study_name for s in optuna.get_all_study_summaries(opened)) or "none"
        raise SweepStorageError(f"study {name!r} is not in storage {_shown(storage)} (its studies: {names})") from None
    attrs = plain.user_attrs.get("gpt_tui_spec")
    if not isinstance(attrs, dict):
        raise SweepStorageError(f"study {name!r} was not made by gpt-tui sweep: it carries no sweep spec")
    spec = SweepSpec.from_attrs(attrs, f"study {name!r}")
    study = optuna.load_study(study_name=name, storage=opened, sampler=sampler_for(spec, salt),
                              pruner=pruner_for(spec))
    return study, spec


def load_local_study(sweep_dir: Path, record: dict[str, Any]) -> optuna.Study:
    """The study of the sweep in ``sweep_dir`` (its own journal, see local_storage), to read or
    to queue a trial in; a record that names none is a SweepStorageError."""
    name = record.get("study_name")
    if not isinstance(name, str) or not name:
        raise SweepStorageError(f"{str(sweep_dir)!r}: sweep.json names no study")
    try:
        return optuna.load_study(study_name=name, storage=open_storage(local_storage(sweep_dir, record.get("storage"))))
    except KeyError:
        raise SweepStorageError(f"study {name!r} is not in the storage of {str(sweep_dir)!r}") from None


# ---- the budget ------------------------------------------------------------------------------------
def state_of(trial: FrozenTrial) -> str:
    """complete, pruned, failed, running or waiting; "interrupted" (failed, run again) and
    "surplus" (asked for past the budget by a worker that lost the race) are never counted."""
    attrs = trial.user_attrs
    if trial.state == TrialState.FAIL and attrs.get("surplus"):
        return "surplus"
    if trial.state == TrialState.FAIL and attrs.get("interrupted"):
        return "interrupted"
    return STATES.get(trial.state, "failed")


COUNTED = ("complete", "pruned", "failed")


def counts(study: optuna.Study) -> tuple[int, int]:
    """(trials that ended and count toward the budget, trials running now)."""
    states = [state_of(t) for t in study.get_trials(deepcopy=False)]
    return sum(s in COUNTED for s in states), states.count("running")


def budget(study: optuna.Study, spec: SweepSpec) -> int | None:
    """The trials to run: the sweep file's, plus one for each trial a user asked for by hand
    (they run next, and the search keeps its own number of trials)."""
    return None if spec.trials is None else spec.trials + int(study.user_attrs.get("extra_trials", 0))


def enqueue(study: optuna.Study, params: dict[str, Any]) -> None:
    """"Try this next": the next trial any worker asks for has these values."""
    study.enqueue_trial(params, user_attrs={"enqueued": True})
    study.set_user_attr("extra_trials", int(study.user_attrs.get("extra_trials", 0)) + 1)


def within_budget(study: optuna.Study, number: int, budget: int) -> bool:
    """Whether trial ``number`` (just asked for) is one the budget allows: fewer than ``budget``
    counted or running trials were asked for before it. Two workers that ask at once both get
    a trial; the later one then gives it up, so the budget is met exactly."""
    before = [t for t in study.get_trials(deepcopy=False) if t.number < number
              and state_of(t) in (*COUNTED, "running")]
    return len(before) < budget


def mark(study: optuna.Study, trial: FrozenTrial, attr: str, why: str) -> bool:
    """End a running trial as failed with ``attr`` set (interrupted, surplus); False when it had
    ended meanwhile (its worker told it, or another worker marked it first)."""
    storage = study._storage  # noqa: SLF001 - Optuna's own storage API: attributes of a trial by id
    try:
        storage.set_trial_user_attr(trial._trial_id, attr, why)  # noqa: SLF001
        study.tell(trial.number, state=TrialState.FAIL)
    except (RuntimeError, ValueError):  # Optuna's "already finished": leave what was told
        return False
    return True


def interrupted(trial: FrozenTrial, now: float) -> bool:
    """A running trial whose worker is gone: its process, on this machine; its heartbeat, elsewhere."""
    attrs = trial.user_attrs
    if attrs.get("host") == socket.gethostname() and attrs.get("pid"):
        return process_alive({"pid": attrs["pid"], "host": attrs["host"], "started": attrs.get("started")}) is False
    beat = attrs.get("heartbeat") or (trial.datetime_start.timestamp() if trial.datetime_start else now)
    return now - float(beat) > STALE_AFTER


def rerun_interrupted(study: optuna.Study) -> list[int]:
    """Mark every interrupted trial failed and queue its values again; the numbers marked."""
    now, marked = time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if interrupted(trial, now) and mark(study, trial, "interrupted", "its worker stopped before it ended"):
            queue_again(study, trial)
            marked.append(trial.number)
    return marked


def queue_again(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue an interrupted trial's values as a new trial, once: two workers that both marked it
    (each from its own view of the journal) see the other's retry and add none."""
    if not any(t.user_attrs.get("retry_of") == trial.number for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


# ---- what scripts read -----------------------------------------------------------------------------
def trial_record(trial: FrozenTrial) -> dict[str, Any]:
    attrs, state = trial.user_attrs, state_of(trial)
    values = [v for v in trial.intermediate_values.values() if math.isfinite(v)]
    best = trial.value if state == "complete" and trial.value is not None else (min(values) if values else None)
    steps = max(trial.intermediate_values, default=attrs.get("steps", 0))
    params = trial.params or dict(trial.system_attrs.get("fixed_params", {}))  # a queued trial: its values to come
    record = {"number": trial.number, "state": state, "params": params,
              "best_val_loss": best, "steps": int(attrs.get("steps", steps)), "run_dir": attrs.get("run_dir", ""),
              "host": attrs.get("host", "")}
    for key in ("pruned_at", "error", "retry_of", "interrupted", "enqueued"):
        if key in attrs and (key != "pruned_at" or state == "pruned"):
            record[key] = attrs[key]
    return record


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return min(complete, key=lambda t: (t.value, t.number)) if complete else None


def snapshot(study: optuna.Study, spec: SweepSpec, storage: str | dict[str, str]) -> dict[str, Any]:
    trials = [trial_record(t) for t in study.get_trials(deepcopy=False) if state_of(t) != "surplus"]
    best = best_trial(study)
    done, running = counts(study)
    return {"study_name": study.study_name, "storage": storage, "objective": spec.objective,
            "sampler": spec.sampler, "pruner": spec.pruner, "trials_budget": budget(study, spec),
            "minutes_budget": spec.minutes, "searched": list(spec.search), "counted": done, "running": running,
            "trials": trials, "best": trial_record(best) if best else None,
            "created": study.user_attrs.get("created"), "updated": round(time.time(), 3)}


@contextlib.contextmanager
def _folder_lock(sweep_dir: Path) -> Iterator[None]:
    """One writer of the sweep folder's files at a time, among this machine's workers."""
    try:
        import fcntl
    except ImportError:  # no flock here: the writes stay atomic, the last one may be a moment older
        yield
        return
    with open(Path(sweep_dir) / ".sweep.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_record(study: optuna.Study, spec: SweepSpec, sweep_dir: Path, storage: str | dict[str, str]) -> None:
    """Rewrite sweep.json (atomically) and best.toml from the study as it is now."""
    with _folder_lock(sweep_dir):
        data = snapshot(study, spec, storage)
        write_text_atomic(Path(sweep_dir) / SWEEP_JSON, json.dumps(data, indent=1) + "\n")
        best = best_trial(study)
        if best is not None:
            config = config_from_dict(spec.trial_values(best.params))
            header = f"# the best trial of sweep {study.study_name}: trial {best.number}, val_loss {best.value:.4f}\n"
            write_text_atomic(Path(sweep_dir) / BEST_TOML, header + to_toml(config))


def read_record(sweep_dir: Path) -> dict[str, Any]:
    """sweep.json as a dict, or {} while it does not exist (or is not JSON)."""
    try:
        data = json.loads((Path(sweep_dir) / SWEEP_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def holds_sweep(path: Path) -> bool:
    return (Path(path) / SWEEP_JSON).is_file()


def ask_stop(sweep_dir: Path, running_too: bool) -> None:
    """Ask a sweep's workers to start no new trial (``running_too``: and to stop theirs, saving)."""
    write_text_atomic(Path(sweep_dir) / STOP_FILE, json.dumps({"running": bool(running_too)}))


def stop_asked(sweep_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(sweep_dir) / STOP_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"running": False}
    return data if isinstance(data, dict) else {"running": False}


def clear_stop(sweep_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(Path(sweep_dir) / STOP_FILE)
