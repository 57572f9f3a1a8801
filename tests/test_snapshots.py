"""Snapshots of the idle screen with fixed data (the bundled corpus, configs/default.toml)."""
from __future__ import annotations

import pytest

from tui_trainer.engine.config import load_config
from tui_trainer.ui.app import create_app

from .conftest import REPO


def idle_app():
    return create_app(load_config(REPO / "configs" / "default.toml"))


async def corpus_figures_shown(pilot) -> None:
    """The derived figures come from a worker: wait until they are on screen."""
    for _ in range(400):
        if "tokens, vocab" in str(pilot.app.query_one("#derived").render()):
            break
        await pilot.pause(0.05)
    pilot.app.query_one("#f-d_model").focus()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_idle_screen(snap_compare, size):
    assert snap_compare(idle_app(), terminal_size=size, run_before=corpus_figures_shown)
