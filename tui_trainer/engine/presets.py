"""Presets: the shipped configs (configs/, never written) and the user's own, saved in
``$GPT_TUI_PRESETS`` or ``~/.config/gpt-tui/presets`` (``$XDG_CONFIG_HOME`` honoured)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .config import TrainConfig, save_config
from .errors import ConfigError
from .resources import configs_dir
from .settings import config_home

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def user_presets_dir() -> Path:
    if os.environ.get("GPT_TUI_PRESETS"):
        return Path(os.environ["GPT_TUI_PRESETS"]).expanduser()
    return config_home() / "presets"


def shipped_presets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(configs_dir().glob("*.toml"))}


def list_presets() -> list[tuple[str, Path]]:
    """(label, path) of every preset: the shipped ones, then the user's (marked "mine")."""
    mine = sorted(user_presets_dir().glob("*.toml")) if user_presets_dir().is_dir() else []
    return [*shipped_presets().items(), *((f"{p.stem} (mine)", p) for p in mine)]


def preset_target(name: str) -> Path:
    """Where a user preset called ``name`` is saved; a ConfigError for a name that cannot be one."""
    if not name:
        raise ConfigError(["preset name is empty: type a name beside Save preset"])
    if not NAME.match(name):
        raise ConfigError([f"preset name {name[:40]!r}: use up to 64 letters, digits, - and _"])
    if name in shipped_presets():
        raise ConfigError([f"preset name {name!r} is a shipped preset, which is never overwritten: choose another"])
    return user_presets_dir() / f"{name}.toml"


def save_preset(config: TrainConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_config(config, path)
