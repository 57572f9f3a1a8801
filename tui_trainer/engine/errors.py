"""User-facing errors: each one is shown as a short message, never a traceback."""
from __future__ import annotations


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
    """The loss became NaN or inf: the run fails, its last checkpoint intact."""

    def __init__(self, step: int):
        self.step = step
        super().__init__(f"loss became NaN or inf at step {step}; the update was not applied and the last "
                         "checkpoint is intact: lower learning_rate or set grad_clip")


class RunDirError(GptTuiError):
    """The run directory cannot be created or written."""
