"""The suite's own pilot waits (conftest): a key's effects are in place when press returns, on any
machine. A loaded one is modelled by an idle wait that returns at once: Textual's own wait then
returned before the key, bubbling up from the focused field, had reached the screen's binding.
Once the pushed screen is on top, Textual's wait for its queue also covers its mount."""
from __future__ import annotations

import asyncio

import textual.app
from textual.app import App
from textual.screen import Screen
from textual.widgets import Input, Static


class SlowToMount(Screen):
    async def on_mount(self) -> None:
        await asyncio.sleep(1)  # as a loaded machine delays a mount
        await self.mount(Static("rows", id="rows"))


class FormScreen(Screen):
    BINDINGS = [("f2", "open", "open")]  # a screen's binding: the key bubbles up from the field first

    def compose(self):
        yield Input()

    def action_open(self) -> None:
        self.app.push_screen(SlowToMount())  # not awaited, as the app's own keys push screens


class PushesAScreen(App):
    def on_mount(self) -> None:
        self.push_screen(FormScreen())


async def test_press_returns_once_the_screen_a_key_pushed_has_mounted(monkeypatch):
    async def no_idle_wait(*args, **kwargs) -> None:
        await asyncio.sleep(0)

    monkeypatch.setattr(textual.app, "wait_for_idle", no_idle_wait)
    app = PushesAScreen()
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press("f2")
        assert isinstance(app.screen, SlowToMount) and app.screen.query("#rows")
