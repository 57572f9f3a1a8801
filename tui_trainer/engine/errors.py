"""User-facing errors: each one is shown as a short message, never a traceback."""
from __future__ import annotations

from pathlib import Path


class GptTuiError(Exception):
    """Base class for problems the user can fix (bad config, data, checkpoint, path).

    The CLI prints these as ``gpt-tui: error: <message>`` and exits with status 2;
    the app shows them in the form or the log panel.
    """


class ConfigError(GptTuiError):
    """One or more config values break a rule. ``problems`` lists them all."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"invalid config: {self.problems[0]}")
        else:
            super().__init__("invalid config:\n  " + "\n  ".join(self.problems))


class DataError(GptTuiError):
    """The corpus is missing, empty, binary or too short."""


class CheckpointError(GptTuiError):
    """A checkpoint is missing, truncated, not ours, or unsafe to load."""


class NonFiniteLoss(GptTuiError):
    """A loss became NaN or inf at ``step``, in a training ``step``, an ``eval``, a ``sample`` or
    in the ``weights`` at a save point. The trainer rolls back (spike_action = "rollback") or
    fails the run, saying what became of the update and the checkpoint (failures.py)."""

    def __init__(self, step: int, where: str = "step"):
        self.step, self.where = step, where
        super().__init__(f"{NONFINITE_WHERE.get(where, where)} at step {step} is NaN or inf")


NONFINITE_WHERE = {"step": "the training loss", "eval": "the eval's loss", "sample": "the sample's output",
                   "weights": "a weight"}


class BrokenModel(GptTuiError):
    """The model's output is NaN or inf: its weights are broken, so it cannot be sampled."""


class RunDirError(GptTuiError):
    """The run directory cannot be created or written."""


def file_in_the_way(path: Path) -> Path | None:
    """The file at ``path``, or at a folder above it, that stands where a folder belongs."""
    return next((place for place in [path, *path.parents] if place.exists() and not place.is_dir()), None)


def not_a_folder(path: Path) -> str:
    """Why ``path`` is no folder, or cannot be reached: the file in the way, else that nothing is there."""
    blocker = file_in_the_way(path)
    if blocker is None:
        return "it does not exist"
    return "it is a file, not a folder" if blocker == path else f"{str(blocker)!r} is a file, not a folder"


def missing(path: Path) -> str:
    """How a path that was not found is not there: "does not exist", or which file stands where a
    folder on its way belongs."""
    return "does not exist" if file_in_the_way(path) is None else f"cannot be reached: {not_a_folder(path)}"
