"""A sweep file: what a sweep searches, around what, for how long, and how it judges trials.

```toml
base = "configs/default.toml"   # optional; relative paths are relative to the sweep file
trials = 16                     # and/or minutes = 30
objective = "val_loss"
sampler = "tpe"                 # tpe | random
pruner = "asha"                 # asha | median | hyperband | none
seed = 0                        # optional: the sampler's seed
fork = "runs/gpt-x"             # optional, instead of base: every trial forks this run's checkpoint
[set]                           # fixed keys for every trial
max_iters = 600
[search]                        # the searched keys
learning_rate = { log_uniform = [1e-4, 1e-2] }
dropout = { uniform = [0.0, 0.3] }
warmup_iters = { int = [0, 200] }
lr_schedule = { choice = ["constant", "cosine"] }
```

Every problem is found at once and reported one line each, naming the key (exit 2). The spec
travels with the study (its user attributes, :meth:`SweepSpec.to_attrs`), so a worker that
joins from another machine needs only the storage and the study's name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import (ARCH_KEYS, FIELDS, INVOCATION_KEYS, field_type, find_problems, quoted, read_toml, stored,
                     value_problem)
from .errors import ConfigError, GptTuiError
from .resources import default_config_path

OBJECTIVES = ("val_loss", "val_bpb")  # a trial's best eval of either
SAMPLERS = ("tpe", "random")
PRUNERS = ("asha", "median", "hyperband", "none")
KINDS = ("log_uniform", "uniform", "int", "choice")
TOP_KEYS = ("base", "trials", "minutes", "objective", "sampler", "pruner", "seed", "fork", "set", "search")
# Keys that place, name or show a run, or say how many processes train it: a sweep runs each
# trial as one process in its own folder, so these are never searched (and never set, for processes).
NOT_SEARCHED = ("out_dir", "run_name", "device", "processes", "num_threads", "log_interval", "notify",
                "notify_command", "on_hangup", "wandb", "wandb_project", "health", "checkpoint_interval",
                "keep_checkpoints", "sample_interval", "sample_prompt", "sample_tokens")


class SweepError(GptTuiError):
    """A sweep file that cannot run, with every problem in it (one line each)."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n  ".join(self.problems)
        super().__init__(f"sweep file {source!r} has {len(problems)} problem{'s' * (len(problems) > 1)}:\n  {lines}")


@dataclass(frozen=True)
class Param:
    """One searched key: ``kind`` is one of KINDS; ``values`` its [low, high] or its choices."""
    name: str
    kind: str
    values: tuple

    def suggest(self, trial) -> Any:
        """The value an Optuna trial draws for this key."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        low, high = self.values
        if self.kind == "int":
            return trial.suggest_int(self.name, low, high)
        return trial.suggest_float(self.name, float(low), float(high), log=self.kind == "log_uniform")

    def to_toml_value(self) -> dict[str, list]:
        return {self.kind: list(self.values)}


@dataclass(frozen=True)
class SweepSpec:
    base: dict[str, Any]  # the base config's keys (a config file's, or the forked checkpoint's)
    fixed: dict[str, Any]  # [set]
    search: dict[str, Param]
    trials: int | None = None
    minutes: float | None = None
    objective: str = "val_loss"
    sampler: str = "tpe"
    pruner: str = "asha"
    seed: int | None = None
    fork: str = ""  # a run directory or checkpoint every trial forks ("" = a new run per trial)
    source: str = field(default="", compare=False)  # where it was read from, for messages

    def trial_values(self, params: dict[str, Any]) -> dict[str, Any]:
        """A trial's config keys: the base, then [set], then the searched values."""
        return {**self.base, **self.fixed, **params}

    @property
    def eval_interval(self) -> int:
        return int(self.trial_values({}).get("eval_interval", FIELDS["eval_interval"].default))

    @property
    def max_iters(self) -> int:
        return int(self.trial_values({}).get("max_iters", FIELDS["max_iters"].default))

    def to_attrs(self) -> dict[str, Any]:
        """A JSON-able copy, stored with the study."""
        return {"base": self.base, "set": self.fixed, "search": {k: p.to_toml_value() for k, p in self.search.items()},
                "trials": self.trials, "minutes": self.minutes, "objective": self.objective,
                "sampler": self.sampler, "pruner": self.pruner, "seed": self.seed, "fork": self.fork}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any], source: str = "the study") -> SweepSpec:
        """The spec a study carries, checked again (it may come from another version)."""
        raw = {key: value for key, value in attrs.items() if value is not None and key != "base"}
        return parse_sweep(raw, source, base=dict(attrs.get("base") or {}))

    def to_toml(self) -> str:
        """The spec as a self-contained sweep file (the base written out in [set])."""
        import tomli_w

        top = {key: value for key, value in self.to_attrs().items()
               if key not in ("base", "set", "search") and value not in (None, "")}
        # a fork's base is its checkpoint's config, read again from it; a new run's is written out
        base = {} if self.fork else self.base
        fixed = {key: value for key, value in {**base, **self.fixed}.items() if key not in self.search}
        return tomli_w.dumps({**top, "set": stored(fixed),
                              "search": {k: p.to_toml_value() for k, p in self.search.items()}})


def params_text(params: dict[str, Any]) -> str:
    """A trial's values in one line, as the CLI, the log and the Sweep screen show them."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def around(config) -> list[tuple[Param, bool]]:
    """The Sweep setup's rows for a config: a range around each value a sweep most often
    searches, and whether it is searched unless the user says otherwise (the learning rate and
    dropout). A learning rate never goes below min_lr, which a decaying schedule reaches."""
    lr, wd, batch = config.learning_rate, config.weight_decay, config.batch_size
    low_lr = max(lr / 10, config.min_lr)  # (lr_schedule may be searched too: a decay needs lr >= min_lr)
    rows = [
        (Param("learning_rate", "log_uniform", (float(f"{low_lr:.3g}"), float(f"{lr * 10:.3g}"))), True),
        (Param("dropout", "uniform", (0.0, round(max(0.3, min(0.9, config.dropout * 2)), 3))), True),
        (Param("weight_decay", "log_uniform", (float(f"{wd / 10:.3g}"), float(f"{wd * 10:.3g}"))) if wd > 0
         else Param("weight_decay", "uniform", (0.0, 0.1)), False),
        (Param("warmup_iters", "int", (0, max(1, config.max_iters // 5))), False),
        (Param("lr_schedule", "choice", ("constant", "cosine", "wsd")), False),
        (Param("batch_size", "choice", tuple(sorted({max(1, batch // 2), batch, batch * 2}))), False),
    ]
    return rows


def read_sweep_file(path: str | Path) -> SweepSpec:
    """Read and check a sweep file; raises SweepError (every problem) or ConfigError (unreadable)."""
    path = Path(path).expanduser()
    raw = read_toml(path, "sweep file", "the README's Sweeps section shows one")
    return parse_sweep(raw, str(path), relative_to=path.parent)


def parse_sweep(raw: dict[str, Any], source: str, relative_to: Path | None = None,
                base: dict[str, Any] | None = None) -> SweepSpec:
    """Check a sweep file's table. ``base`` is given when it was resolved already (a study's copy)."""
    problems: list[str] = []
    for key in raw:
        if key not in TOP_KEYS:
            problems.append(f"{quoted(key)}: not a sweep key; the keys are {', '.join(TOP_KEYS)}")
    fork = _fork_path(raw, relative_to, problems)
    if base is None:
        base = _read_base(raw, relative_to, fork, problems)
    fixed = _table(raw, "set", problems)
    search_raw = _table(raw, "search", problems)
    for key, value in fixed.items():
        if key not in FIELDS:
            problems.append(f"set.{find_problems({key: value})[key]}")
        elif key in INVOCATION_KEYS:
            problems.append(f"set.{key}: a command to run is never part of a sweep; put it in your settings.toml")
    if {**base, **fixed}.get("processes", 1) != 1:
        problems.append("processes: each trial is one process; set processes = 1, and run trials side by side "
                        "with --workers N")
    search = {key: param for key, value in search_raw.items()
              if (param := _param(key, value, fixed, fork, problems)) is not None}
    if fork:
        problems += [f"{where}.{key}: a shape key cannot change when every trial forks {fork!r}: the checkpoint "
                     "fixes it; remove it, or use base = ... for new runs"
                     for where, keys in (("set", fixed), ("search", search_raw)) for key in keys if key in ARCH_KEYS]
    trials = _count(raw, "trials", problems)
    minutes = _minutes(raw, problems)
    if trials is None and minutes is None and "trials" not in raw and "minutes" not in raw:
        problems.append("trials, minutes: a sweep needs a budget: trials = N and/or minutes = M")
    choices = {"objective": OBJECTIVES, "sampler": SAMPLERS, "pruner": PRUNERS}
    named = {key: raw.get(key, default) for key, default in (("objective", "val_loss"), ("sampler", "tpe"),
                                                               ("pruner", "asha"))}
    for key, value in named.items():
        if value not in choices[key]:
            problems.append(f"{key} = {quoted(value)}: must be one of {', '.join(choices[key])}")
    seed = raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        problems.append(f"seed = {quoted(seed)}: must be a whole number >= 0")
    if not problems:
        problems += _corner_problems(base, fixed, search)
    if problems:
        raise SweepError(source, problems)
    return SweepSpec(base=base, fixed=fixed, search=search, trials=trials, minutes=minutes, seed=seed,
                     fork=fork, source=source, **named)


def _table(raw: dict[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a table ([{key}] with one key = value per line)")
        return {}
    return value


def _count(raw: dict[str, Any], key: str, problems: list[str]) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
        problems.append(f"{key} = {quoted(value)}: must be a whole number from 1 to 100000")
        return None
    return value


def _minutes(raw: dict[str, Any], problems: list[str]) -> float | None:
    value = raw.get("minutes")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        problems.append(f"minutes = {quoted(value)}: must be a positive number, e.g. 30")
        return None
    return float(value)


def _resolve(path_text: str, relative_to: Path | None) -> Path:
    path = Path(path_text).expanduser()
    return path if path.is_absolute() or relative_to is None else relative_to / path


def _fork_path(raw: dict[str, Any], relative_to: Path | None, problems: list[str]) -> str:
    fork = raw.get("fork", "")
    if not fork:
        return ""
    if not isinstance(fork, str):
        problems.append(f"fork = {quoted(fork)}: must be the path of a run directory or checkpoint")
        return ""
    if "base" in raw:
        problems.append("base, fork: name one: a fork's config is its checkpoint's")
    from .checkpoint import resolve_checkpoint

    path = _resolve(fork, relative_to)
    try:
        resolve_checkpoint(path)
    except GptTuiError as exc:
        problems.append(f"fork = {quoted(fork)}: {exc}")
        return ""
    return str(path.resolve())  # a resume or a join from elsewhere finds it too


def _read_base(raw: dict[str, Any], relative_to: Path | None, fork: str, problems: list[str]) -> dict[str, Any]:
    """The base config's keys: the fork's checkpoint config, the base file's, or configs/default.toml's."""
    if fork:
        from .checkpoint import read_resumption

        try:
            return stored(read_resumption(Path(fork), {}, "forking").config.to_dict())
        except GptTuiError as exc:
            problems.append(f"fork: {exc}")
            return {}
    base = raw.get("base")
    if base is not None and not isinstance(base, str):
        problems.append(f"base = {quoted(base)}: must be the path of a config file")
        return {}
    path = _resolve(base, relative_to) if base else default_config_path()
    if path is None:
        return {}
    try:
        values = stored(read_toml(path))
    except ConfigError as exc:
        problems.append(f"base: {exc.problems[0]}")
        return {}
    problems += [f"base {str(path)!r}: {problem}" for problem in find_problems(values).values()]
    return values


def _param(key: str, value: Any, fixed: dict[str, Any], fork: str, problems: list[str]) -> Param | None:
    where = f"search.{key}"
    if key not in FIELDS:
        problems.append(f"search.{find_problems({key: 0})[key]}")
        return None
    if key in NOT_SEARCHED or key in INVOCATION_KEYS:
        problems.append(f"{where}: {key} is not a hyperparameter a sweep searches; set it in [set] or the base")
        return None
    if key in fixed:
        problems.append(f"{where}: {key} is both set and searched: remove it from one of [set] and [search]")
        return None
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in KINDS:
        problems.append(f"{where} = {quoted(value, 60)}: must be one of {{ log_uniform = [low, high] }}, "
                        "{ uniform = [low, high] }, { int = [low, high] }, { choice = [a, b, ...] }")
        return None
    kind, values = next(iter(value.items()))
    if not isinstance(values, list):
        problems.append(f"{where}.{kind} = {quoted(values)}: must be a list")
        return None
    tp = field_type(key)
    if kind == "choice":
        bad = [p for v in values if (p := value_problem(key, v))]
        if not values:
            problems.append(f"{where}.choice: is empty; list at least one value")
        elif bad:
            problems.append(f"{where}.choice: {bad[0]}")
        elif len({repr(v) for v in values}) != len(values):
            problems.append(f"{where}.choice: lists a value twice")
        else:
            return Param(key, kind, tuple(float(v) if tp is float else v for v in values))
        return None
    if tp not in (int, float) or (kind != "int" and tp is int):
        wanted = "int = [low, high]" if tp is int else "choice = [...]"
        problems.append(f"{where}.{kind}: {key} is {'an integer' if tp is int else 'not a number'} key; use {wanted}")
        return None
    numbers = len(values) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numbers or (kind == "int" and not all(isinstance(v, int) for v in values)):
        what = "two whole numbers" if kind == "int" else "two numbers"
        problems.append(f"{where}.{kind} = {quoted(values)}: must be [low, high], {what}")
        return None
    low, high = values
    bad = [p for v in values if (p := value_problem(key, v))]
    if bad:
        problems.append(f"{where}.{kind}: {bad[0]}")
    elif low >= high:
        problems.append(f"{where}.{kind} = [{low:g}, {high:g}]: low must be below high")
    elif kind == "log_uniform" and low <= 0:
        problems.append(f"{where}.log_uniform = [{low:g}, {high:g}]: low must be above 0 on a log scale")
    else:
        return Param(key, kind, (low, high))
    return None


CORNERS_CHECKED = 512  # corners of the search space checked together, at most


def _corner_problems(base: dict[str, Any], fixed: dict[str, Any], search: dict[str, Param]) -> list[str]:
    """The base with [set] must be a valid config, and so must every corner of the search (each
    key at its low or high, or any of its choices, together): e.g. min_lr above the lowest
    learning_rate searched, under a decaying lr_schedule searched beside it."""
    import itertools

    values = {**base, **fixed}
    problems = [f"set: {p}" for p in find_problems(values).values()]
    if problems:
        return problems
    sides = {key: param.values if param.kind == "choice" else param.values[:2] for key, param in search.items()}
    combos = math.prod(len(v) for v in sides.values())
    corners = (dict(zip(sides, c)) for c in itertools.product(*sides.values())) if combos <= CORNERS_CHECKED else \
        ({key: value} for key, vs in sides.items() for value in vs)  # too many together: each key alone
    for corner in corners:
        for problem in find_problems({**values, **corner}).values():
            shown = ", ".join(f"{k} = {v!r}" for k, v in corner.items())
            line = f"search at {shown}: with the base and [set], {problem}"
            if not any(problem in known for known in problems):
                problems.append(line)
    return problems
