"""Keys the user remaps: ``$GPT_TUI_KEYMAP`` or ``~/.config/gpt-tui/keymap.toml`` maps binding
ids to keys, e.g. ``start = "f4"`` or ``save = "ctrl+s,ctrl+w"`` (Textual's keymap).

An entry is refused, with a line naming it, when its id is unknown, when a key is not one a
terminal can send, or when it would give a key two actions where both are live (``start =
"ctrl+q"`` would take Quit away). Refused entries leave their defaults as they were."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from textual.binding import Binding
from textual.keys import KEY_ALIASES, KEY_NAME_REPLACEMENTS, Keys

from ..engine.config import tomllib
from ..engine.settings import config_home

MODIFIERS = {"ctrl", "shift", "alt", "meta", "super", "hyper"}

def _character_key(character: str) -> str:
    """Textual's name for a character's key: the letter or digit itself, else its Unicode name
    in lower case with "_" for " " and "-" ("[" is left_square_bracket)."""
    if character.isalnum():
        return character
    name = unicodedata.name(character, character).lower().replace("-", "_").replace(" ", "_")
    return KEY_NAME_REPLACEMENTS.get(name, name)


def canonical(key: str) -> str:
    """One spelling of a key: "ctrl+[" and "ctrl+left_square_bracket" are the same key."""
    *modifiers, name = key.strip().split("+")
    if len(name) == 1:
        name = _character_key(name)
    return "+".join([*modifiers, name])


CHARACTER_KEYS = {_character_key(chr(code)) for code in range(32, 127)}  # "a", "minus", "space"...
KEY_NAMES = {key.value.split("+")[-1] for key in Keys} | set(KEY_ALIASES) | {"enter", "tab", "backspace"} | CHARACTER_KEYS


def keymap_path() -> Path:
    if os.environ.get("GPT_TUI_KEYMAP"):
        return Path(os.environ["GPT_TUI_KEYMAP"]).expanduser()
    return config_home() / "keymap.toml"


def key_problem(keys: str) -> str | None:
    """Why ``keys`` (comma-separated, e.g. "ctrl+s,f4") is not a list of keys, or None."""
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+")
        if not name or (name not in KEY_NAMES and not (len(name) == 1 and name.isprintable())):
            return f"{key.strip()!r} is not a key (keys look like f4, ctrl+s, shift+tab, x)"
        if set(modifiers) - MODIFIERS:
            return f"{key.strip()!r} has an unknown modifier (the modifiers are {', '.join(sorted(MODIFIERS))})"
    return None


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
        elif key_problem(value):
            problems.append(f"keymap {path}: {key} = {value!r}: {key_problem(value)}; its default stays")
        else:
            keymap[key] = value
    return keymap, problems


def _typed_in_fields(key: str) -> bool:
    """A key a text field takes for itself: no ctrl, alt, meta, super or hyper, and no F-key."""
    *modifiers, name = canonical(key).split("+")
    return not set(modifiers) - {"shift"} and not (name.startswith("f") and name[1:].isdigit())


def typed_keys(keymap: dict[str, str], bindings: list[Binding], path: Path) -> tuple[dict[str, str], list[str]]:
    """``keymap`` less the priority bindings (ctrl+s, ctrl+q: live even in a text field) given a
    key that fields use (a character, enter, tab, an arrow), which would then act at every
    press of it in a field."""
    priority = {binding.id for binding in bindings if binding.priority and binding.id}
    refused = {key: value for key, value in keymap.items()
               if key in priority and any(_typed_in_fields(part) for part in value.split(","))}
    return ({k: v for k, v in keymap.items() if k not in refused},
            [f"keymap {path}: {key} = {value!r} would act on that key typed into any field; use ctrl+, alt+ or an "
             f"F-key; its default stays" for key, value in refused.items()])


def clashes(keymap: dict[str, str], scopes: list[list[Binding]], path: Path) -> tuple[dict[str, str], list[str]]:
    """``keymap`` less the entries that give a key two actions within one scope (the bindings
    live at once: a screen's, its widgets' and the app's), with a line for each."""
    refused: dict[str, str] = {}
    for scope in scopes:
        owner: dict[str, str] = {}  # key -> binding id, after the keymap
        for binding in scope:
            if not binding.id:
                continue
            for key in keymap.get(binding.id, binding.key).split(","):
                other = owner.setdefault(canonical(key), binding.id)
                if other != binding.id:
                    mine = binding.id if binding.id in keymap else other
                    refused[mine] = f"keymap {path}: {mine} = {keymap[mine]!r} gives {key.strip()!r} two actions " \
                                    f"({other} and {binding.id}); its default stays"
    return {k: v for k, v in keymap.items() if k not in refused}, list(refused.values())


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

    scopes = [[*DashboardScreen.BINDINGS, *SampleView.BINDINGS, *app.BINDINGS], [*RunsScreen.BINDINGS, *app.BINDINGS]]
    known = {b.id for scope in scopes for b in scope if b.id}
    path = keymap_path()
    keymap, problems = read_keymap(path, known)
    keymap, typed = typed_keys(keymap, [b for scope in scopes for b in scope], path)
    keymap, clashing = clashes(keymap, scopes, path)
    if keymap:
        app.set_keymap(keymap)
    for problem in problems + typed + clashing:
        app.notify(problem, severity="warning", title="Keymap", timeout=10)
