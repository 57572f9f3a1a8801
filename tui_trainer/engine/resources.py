"""Where the bundled corpus and presets live, in a source checkout or an installed wheel."""
from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# A source checkout or editable install keeps data/ and configs/ beside the package;
# a wheel carries copies under tui_trainer/bundled/ (see pyproject's force-include).
_SEARCH_ROOTS = (_PACKAGE_DIR.parent, _PACKAGE_DIR / "bundled")

BUNDLED_CORPUS = "data/orders.txt"


def bundled_path(relative: str) -> Path:
    """Return the bundled file ``relative`` (e.g. ``data/orders.txt``)."""
    for root in _SEARCH_ROOTS:
        candidate = root / relative
        if candidate.exists():
            return candidate
    return _SEARCH_ROOTS[0] / relative


def default_config_path() -> Path | None:
    """configs/default.toml, the config `gpt-tui` starts from without --config."""
    path = bundled_path("configs/default.toml")
    return path if path.exists() else None


def configs_dir() -> Path:
    """The folder of preset TOML files (``configs/``)."""
    return bundled_path("configs")
