"""The user's own settings, in ``$GPT_TUI_SETTINGS`` or ``~/.config/gpt-tui/settings.toml``
(``$XDG_CONFIG_HOME`` honoured), beside the keymap and the presets.

It is where a ``notify_command`` lives for every run of this user: a command to run is the
user's own choice, so besides this file only ``--set`` and a ``--config`` file named on the
command line may name one, never a run's files (config.INVOCATION_KEYS).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .config import TrainConfig, read_toml
from .errors import ConfigError

SETTINGS_KEYS = ("notify_command",)


def config_home() -> Path:
    """``~/.config/gpt-tui``, or under ``$XDG_CONFIG_HOME``."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "gpt-tui"


def settings_path() -> Path:
    if os.environ.get("GPT_TUI_SETTINGS"):
        return Path(os.environ["GPT_TUI_SETTINGS"]).expanduser()
    return config_home() / "settings.toml"


def with_user_settings(config: TrainConfig) -> TrainConfig:
    """``config`` with the settings file's notify_command where this invocation named none.
    A missing file is no settings; a bad one is a ConfigError naming it."""
    path = settings_path()
    if config.notify_command or not path.is_file():
        return config
    values = read_toml(path, "settings file")
    problems = [f"settings file {str(path)!r}: {key!r} is not a setting; the settings are "
                f"{', '.join(SETTINGS_KEYS)}" for key in values if key not in SETTINGS_KEYS]
    command = values.get("notify_command", "")
    if not isinstance(command, str):
        problems.append(f"settings file {str(path)!r}: notify_command must be a string (a shell command)")
    if problems:
        raise ConfigError(problems)
    return replace(config, notify_command=command)
