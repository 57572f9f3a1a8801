"""Keys the user remaps: ``$GPT_TUI_KEYMAP`` or ``~/.config/gpt-tui/keymap.toml`` maps binding
ids to keys, e.g. ``start = "f4"`` or ``save = "ctrl+s,ctrl+w"`` (Textual's keymap)."""
from __future__ import annotations

import os
from pathlib import Path

from ..engine.config import tomllib
from ..engine.settings import config_home


def keymap_path() -> Path:
    if os.environ.get("GPT_TUI_KEYMAP"):
        return Path(os.environ["GPT_TUI_KEYMAP"]).expanduser()
    return config_home() / "keymap.toml"


def read_keymap(path: Path, known: set[str]) -> tuple[dict[str, str], list[str]]:
    """(binding id -> keys, problems): a missing file is an empty keymap; every problem names
    the file and the fix, and the entries that are fine still apply."""
    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as exc:  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return {}, [f"keymap {path} cannot be read ({exc}): fix it or remove it"]
    keymap, problems = {}, []
    for key, value in _flat(raw).items():
        if key not in known:
            problems.append(f"keymap {path}: {key!r} is not a binding id; the ids are {', '.join(sorted(known))}")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"keymap {path}: {key} = {value!r} must be keys in quotes, e.g. {key} = \"f4\"")
        else:
            keymap[key] = value
    return keymap, problems


def _flat(table: dict, prefix: str = "") -> dict:
    """``runs.resume = "r"`` is a table in TOML ({"runs": {"resume": "r"}}): back to the dotted id."""
    flat = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_keymap(app) -> None:
    """Apply the user's keymap to ``app``; problems show as a notification, never a traceback."""
    from .dashboard import DashboardScreen
    from .runs_screen import RunsScreen
    from .widgets.sample_view import SampleView

    known = {b.id for b in (*app.BINDINGS, *DashboardScreen.BINDINGS, *RunsScreen.BINDINGS, *SampleView.BINDINGS)
             if b.id}
    keymap, problems = read_keymap(keymap_path(), known)
    if keymap:
        app.set_keymap(keymap)
    for problem in problems:
        app.notify(problem, severity="warning", title="Keymap", timeout=10)
