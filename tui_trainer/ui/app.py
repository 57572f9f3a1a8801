"""The gpt-tui app: what is app-wide around the dashboard screen (dashboard.py).

It keeps the signals (a closed terminal, SIGTERM, Ctrl+C), the crash barrier, the keymap,
Python's warnings, the terminal's own notifications, quitting and detaching. The run shown,
its keys and its events belong to the dashboard and its session.
"""
from __future__ import annotations

import os
import signal
import threading
import traceback
import warnings
from functools import partial
from pathlib import Path

from textual.actions import parse as parse_action
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.widgets import HelpPanel

from ..engine.config import TrainConfig
from ..engine.events import Event, LogMessage
from ..engine.notify import notification
from ..engine.safe_text import visible
from ..signals import SIGNAL_EXIT_CODES, SignalHandlers
from .dashboard import DashboardScreen
from .detach import start_detach
from .keymap import load_keymap
from .messages import EngineEvents
from .native_stderr import NativeStderr
from .screens import QuitScreen
from .state import AppState, allowed
from .terminal_notify import notification_sequences

EXIT_GRACE = 5.0  # seconds a signalled app may take to leave once its run is on disk


class GptTuiApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "gpt-tui"
    BINDINGS = [
        *(binding for binding in DashboardScreen.BINDINGS if binding.id in ("quit", "keys")),  # on every screen
        Binding("escape", "hide_help_panel", show=False),  # where a screen has no Escape of its own
        # Priority, so that the app moves the focus before it hands on the next key: as Textual's
        # own (non-priority) binding, Tab waited in the focused field's queue, and the keys typed
        # right after it went into the field that Tab had left ("abc", Tab, "5" gave "abc5").
        Binding("tab", "focus_next", "Next field", show=False, priority=True, id="focus.next"),
        Binding("shift+tab", "focus_previous", "Previous field", show=False, priority=True, id="focus.previous"),
    ]

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None, start: bool = False,
                 stderr: NativeStderr | None = None, corpus_figures: tuple[int, int] | None = None,
                 watch: Path | None = None, sweep: Path | None = None):
        super().__init__()
        self.config = config
        self.stderr = stderr  # native output of this app's own run goes to its stderr.log
        self.dashboard = DashboardScreen(config, run_dir, corpus_figures)
        self._start_on_mount = start
        self._watch_on_mount = watch
        self._sweep_on_mount = sweep
        self._quit_after_run = False  # the run was asked to stop for a quit or a signal: leave once it ends
        self.signal_exit: int | None = None  # the exit code a SIGINT, SIGTERM or SIGHUP asked for
        self.detached = False  # the app left its run training on (F10, or a hang-up with on_hangup = "detach")
        self._detach_line: str | None = None  # what the terminal is told as the app leaves
        # An exception that escaped a UI handler (see _handle_exception), with its traceback text.
        self.crash: BaseException | None = None
        self.crash_traceback = ""
        self._previous_showwarning = warnings.showwarning
        self._signals = SignalHandlers(self._on_signal)

    def get_default_screen(self) -> DashboardScreen:
        return self.dashboard

    def on_mount(self) -> None:
        self._previous_showwarning = warnings.showwarning
        warnings.showwarning = self._show_warning
        self._signals.install()
        load_keymap(self)
        if self._watch_on_mount:
            self.call_after_refresh(self.dashboard.choices.watch_run, self._watch_on_mount)
        elif self._sweep_on_mount:
            self.call_after_refresh(self.dashboard.choices.open_sweep, self._sweep_on_mount)
        elif self._start_on_mount:
            self.call_after_refresh(self.dashboard.action_start)

    def on_unmount(self) -> None:
        warnings.showwarning = self._previous_showwarning
        if self.detached:  # the run trains on; SIGTERM and SIGINT still stop and save it
            self.dashboard.leave_session("detached")
            start_detach(self._detach_line, self.dashboard.run_dir / "detached.log")
            return
        # However else the app closes, its own run stops and saves rather than training on unseen
        # (Textual then waits for the training thread before the process can end).
        self.dashboard.leave_session("the app closed")
        if self.crash is None or not self.owns_run():  # else signals keep their promise until the run has saved
            self.restore_signals()

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications carry paths, run names and engine messages: plain text, never markup,
        and never a terminal code."""
        super().notify(visible(message), title=visible(title), severity=severity, timeout=timeout, markup=False)

    def get_system_commands(self, screen):
        """Textual's own commands, then each binding allowed now on ``screen``, in the words of its tooltip.
        Not Textual's Quit, which leaves at once (this app's asks to save a run first), nor its
        Keys, which F1's command does."""
        yield from (command for command in super().get_system_commands(screen) if command.title not in ("Quit", "Keys"))
        owner = screen if screen is self.dashboard else self
        for binding in owner.BINDINGS:
            if not binding.tooltip:
                continue  # Tab and shift+Tab: no command of their own
            _, action, parameters = parse_action(binding.action)  # "find('lr_find')": find, ("lr_find",)
            if owner.check_action(action, parameters) is True:
                title, _, help_text = binding.tooltip.partition(": ")
                key = self.get_key_display(binding)
                yield SystemCommand(title, f"{help_text} ({key})", partial(getattr(owner, f"action_{action}"),
                                                                           *parameters))

    def _show_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        # Warnings may come from the training thread: post, never touch widgets directly.
        self.dashboard.post_message(EngineEvents([LogMessage("warning", f"{category.__name__}: {message}")]))

    def notify_terminal(self, event: Event, run_dir: Path | None) -> None:
        """The bell and a desktop notification, through Textual's own output (never torn)."""
        if self._driver is None or self.is_headless:
            return
        self._driver.write(notification_sequences(*notification(event, run_dir.name if run_dir else "gpt-tui")))
        self.bell()

    # ---- signals, quitting and detaching -------------------------------------------------------
    def owns_run(self) -> bool:
        """A run of this app's own (its thread, or the torchrun job it launched) is going on."""
        session = self.dashboard.session
        return session is not None and session.owned and allowed(self.dashboard.state).in_run

    def _on_signal(self, signum: int) -> None:
        """SIGHUP (the terminal went away: SSH closed), SIGTERM or SIGINT: as on the CLI, a run of
        this app's own finishes its step, saves and syncs, then the app exits with 128 + signum.
        A watched run belongs to another process and goes on."""
        session = self.dashboard.session
        if signum == signal.SIGHUP and (self.detached or (self.dashboard.allows("detach")
                                                          and session.detaches_on_hangup)):
            self.detach(None)  # silently: nobody is there to read it
            return
        self.signal_exit = SIGNAL_EXIT_CODES[signum]
        if self.owns_run():
            session.control.stop(f"received {signal.Signals(signum).name}", save=True)
            self._quit_after_run = True
        elif self.crash is None:  # after a crash the app is gone already; the exit code is all that is left
            self._leave(self.signal_exit)

    def detach(self, line: str | None) -> None:
        """Leave the terminal; the run goes on in this process (see detach.py)."""
        if not self.detached:
            self.detached, self._detach_line = True, line
            self.dashboard.session.detach()
            self.exit(0)

    def action_toggle_keys(self) -> None:
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_help_quit(self) -> None:
        """Ctrl+C (Textual's binding): quitting is ctrl+q, which asks to save a run first."""
        keys = [self.get_key_display(active.binding) for active in self.active_bindings.values()
                if active.binding.action == "request_quit"]  # as the keymap has it
        self.notify(f"{keys[0] if keys else 'ctrl+q'} quits (during a run it asks to save first)", title="Quit?")

    def action_request_quit(self) -> None:
        if not self.owns_run():
            self.exit(0)  # a watched run goes on in its own process
            return
        if isinstance(self.screen, QuitScreen):
            return  # asked already: one dialog, however often ctrl+q is pressed

        def chosen(answer: str | None) -> None:
            if answer in ("save", "discard") and self.owns_run():
                self.dashboard.session.control.stop("quit", save=answer == "save")
                self._quit_after_run = True
                self.dashboard.set_state(AppState.STOPPING)
        self.push_screen(QuitScreen(paused=self.dashboard.state == AppState.PAUSED), chosen)

    def run_ended(self) -> None:
        """The dashboard's run has ended: leave now if a quit or a signal asked for it."""
        if not self._quit_after_run:
            return
        if self.signal_exit:
            self._leave(self.signal_exit)
        else:
            self.exit(0)

    def _leave(self, code: int) -> None:
        """Exit after a signal. The terminal may be gone (SIGHUP: a dropped SSH connection), and
        Textual's output thread can then block forever as the app shuts down, holding memory
        and the GPU. Everything is on disk by now, so if the orderly exit has not ended the
        process within EXIT_GRACE seconds, end it (leaving no empty log behind: the orderly
        exit would have removed them)."""
        def end_it() -> None:
            if self.stderr:
                self.stderr.tidy()
            os._exit(code)

        timer = threading.Timer(EXIT_GRACE, end_it)
        timer.daemon = True
        timer.start()
        self.exit(code)

    def restore_signals(self) -> None:
        self._signals.restore()

    def _handle_exception(self, error: Exception) -> None:
        """The crash barrier. Whatever raised in the UI, this app's own run is asked to stop and
        save at its next step boundary (Textual then waits for the training thread as it shuts
        down); a watched run or a torchrun job is left to go on. The traceback is kept for
        error.log and replaces Textual's full-screen one: the CLI prints one line instead."""
        if self.crash is None:
            self.crash = error
            self.crash_traceback = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self.dashboard.leave_session(f"the dashboard failed ({type(error).__name__})")
        renderables = len(self._exit_renderables)
        super()._handle_exception(error)
        del self._exit_renderables[renderables:]


def create_app(config: TrainConfig, run_dir: str | Path | None = None, start: bool = False,
               stderr: NativeStderr | None = None, corpus_figures: tuple[int, int] | None = None,
               watch: Path | None = None, sweep: Path | None = None) -> GptTuiApp:
    """The one factory that the CLI, the tests and the snapshots all use.

    ``watch`` opens the dashboard on a run that another process trains (``gpt-tui watch``);
    ``sweep`` opens the Sweep screen on a sweep folder (``gpt-tui sweep --watch``)."""
    return GptTuiApp(config, run_dir=run_dir, start=start, stderr=stderr, corpus_figures=corpus_figures,
                     watch=watch, sweep=sweep)
