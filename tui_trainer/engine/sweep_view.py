"""What the Sweep screen shows and asks, without any UI: the trials as rows (read from
sweep.json and each trial's run directory), their val-loss curves, which values differ from
the best trial's, the parameter importances, and "try this next" checked against the search."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import FIELDS, parse_value, quoted, value_problem
from .errors import ConfigError
from .follow import effective_status, read_status
from .safe_text import visible
from .runs import val_curve
from .sweep_spec import Param, SweepSpec
from .sweep_study import read_record

ENOUGH_FOR_IMPORTANCE = 4  # complete trials before importances mean anything


@dataclass
class TrialRow:
    number: int
    state: str
    params: dict[str, Any]
    best_val_loss: float
    steps: int
    run_dir: Path
    pruned_at: int | None = None
    curve: tuple[list[int], list[float]] = field(default_factory=lambda: ([], []))
    label: str = ""  # shown instead of the number (a compared run's name)


def trial_dir(sweep_dir: Path, recorded: str) -> Path:
    """A trial's run directory: the one of that name in the sweep folder when there is one (a
    moved or copied sweep folder: sweep.json keeps the paths it was written with), else where
    sweep.json says (a trial another machine ran into its own folder)."""
    path = Path(recorded)
    beside = Path(sweep_dir) / path.name
    return beside if recorded and beside.is_dir() else path  # a copy's own trials, never the original's


class SweepView:
    """Read a sweep folder again with :meth:`refresh`; a trial's curve is read again only when
    its metrics file grew."""

    def __init__(self, sweep_dir: Path):
        self.sweep_dir = Path(sweep_dir)
        self.record: dict[str, Any] = {}
        self.rows: list[TrialRow] = []
        self._best: TrialRow | None = None
        self._curves: dict[Path, tuple[int, tuple[list[int], list[float]]]] = {}

    def refresh(self) -> bool:
        """Read sweep.json and the trials' files; True when anything shown changed. A record
        that is not what gpt-tui writes (a hand edit, another version) shows what of it reads."""
        record = read_record(self.sweep_dir)
        rows: dict[int, TrialRow] = {}
        for raw in record.get("trials") if isinstance(record.get("trials"), list) else []:
            row = self._row(raw)
            if row is not None and row.number not in rows:
                rows[row.number] = row
        found = list(rows.values())
        changed = record != self.record or [(r.state, r.steps, r.curve) for r in found] != \
            [(r.state, r.steps, r.curve) for r in self.rows]
        self.record, self.rows = record, found
        self._best = next((r for r in found if r.number == self.best_number), None)
        return changed

    def _row(self, raw: Any) -> TrialRow | None:
        if not isinstance(raw, dict) or not _count(raw.get("number")):
            return None
        run_dir = trial_dir(self.sweep_dir, str(raw.get("run_dir", "")))
        best = raw.get("best_val_loss") if _number(raw.get("best_val_loss")) else None
        steps = int(raw["steps"]) if _count(raw.get("steps")) else 0
        state = visible(str(raw.get("state", "?")))[:12]
        if state == "running":  # sweep.json is rewritten as trials start and end: the run's own files are newer
            status = read_status(run_dir)
            if effective_status(status) == "interrupted":  # its worker is gone: nobody wrote sweep.json since
                state = "interrupted"
            steps = int(status.get("last_step", steps))
            best = status.get("best_val_loss", best)
        params = {str(k): v for k, v in raw["params"].items() if isinstance(v, (int, float, str, bool))} \
            if isinstance(raw.get("params"), dict) else {}
        pruned_at = raw.get("pruned_at") if _count(raw.get("pruned_at")) else None
        return TrialRow(int(raw["number"]), state, params, math.inf if best is None else float(best), steps,
                        run_dir, pruned_at, self._curve(run_dir))

    def _curve(self, run_dir: Path) -> tuple[list[int], list[float]]:
        try:
            size = (run_dir / "metrics.jsonl").stat().st_size
        except OSError:
            return [], []
        cached = self._curves.get(run_dir)
        if cached is None or cached[0] != size:
            cached = (size, val_curve(run_dir))
            self._curves[run_dir] = cached
        return cached[1]

    # ---- what it shows -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.record.get("study_name", self.sweep_dir.name))

    @property
    def searched(self) -> list[str]:
        """The searched keys, as columns: names of config keys, each once."""
        keys = self.record.get("searched")
        names = [k for k in keys if isinstance(k, str) and k in FIELDS] if isinstance(keys, list) else []
        return list(dict.fromkeys(names))

    @property
    def best_number(self) -> int | None:
        best = self.record.get("best")
        number = best.get("number") if isinstance(best, dict) else None
        return number if _count(number) else None

    def best_row(self) -> TrialRow | None:
        return self._best

    def summary(self) -> str:
        counted = self.record.get("counted") if _count(self.record.get("counted")) else 0
        budget = self.record.get("trials_budget") if _count(self.record.get("trials_budget")) else None
        running = sum(r.state == "running" for r in self.rows)
        parts = [f"{counted}/{budget} trials" if budget else f"{counted} trials",
                 f"{running} running" if running else "", visible(f"{self.record.get('sampler', '?')} + "
                                                                  f"{self.record.get('pruner', '?')}")[:40]]
        best = self.best_row()
        if best is not None:
            parts.append(f"best {best.best_val_loss:.4f} (trial {best.number})")
        return " · ".join(p for p in parts if p)

    def differs(self, row: TrialRow, key: str, spec: SweepSpec | None) -> bool:
        best = self.best_row()
        if best is None or row is best or key not in row.params or key not in best.params:
            return False
        return far_apart(row.params[key], best.params[key], spec.search.get(key) if spec else None)


def far_apart(mine: Any, theirs: Any, param: Param | None = None) -> bool:
    """Whether a value is not, in effect, another's (the best row's): a different choice, int or
    text; a float more than a tenth of a uniform search range apart, else more than 25% apart."""
    if not isinstance(mine, float) or not isinstance(theirs, float):
        return mine != theirs
    if param is not None and param.kind == "uniform":
        low, high = param.values
        return abs(mine - theirs) > 0.1 * (high - low)
    if mine > 0 and theirs > 0:
        return abs(math.log(mine / theirs)) > math.log(1.25)
    return mine != theirs


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def importances(study) -> dict[str, float]:
    """Optuna's parameter importances (PED-ANOVA: no extra dependency), or {} with too few trials."""
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < ENOUGH_FOR_IMPORTANCE:
        return {}
    try:
        found = optuna.importance.get_param_importances(study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (ValueError, RuntimeError):  # e.g. every trial drew the same values
        return {}
    return {key: float(value) for key, value in found.items()}


def typed_trial(spec: SweepSpec, texts: dict[str, str]) -> dict[str, Any]:
    """The values a user typed for "try this next", each checked against its key's rule and its
    search range (a value outside it would fall outside what the sampler models). Raises
    ConfigError with every problem, each naming its key."""
    values, problems = {}, []
    for key, param in spec.search.items():
        text = texts.get(key, "").strip()
        if not text:
            problems.append(f"{key}: type a value")
            continue
        try:
            value = parse_value(key, text)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        problem = value_problem(key, value) or _outside(param, value)
        if problem:
            problems.append(problem)
        else:
            values[key] = float(value) if param.kind in ("uniform", "log_uniform") else value
    if problems:
        raise ConfigError(problems)
    return values


def _outside(param: Param, value: Any) -> str | None:
    if param.kind == "choice":
        return None if value in param.values else (
            f"{param.name} = {quoted(value)}: the search chooses among {', '.join(map(str, param.values))}")
    low, high = param.values
    if not low <= value <= high:
        return f"{param.name} = {quoted(value)}: the search covers [{low:g}, {high:g}]"
    return None
