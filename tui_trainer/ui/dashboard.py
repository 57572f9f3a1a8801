"""The dashboard: the form, the loss plot, the progress line and the tabs, and the keys that
steer a run.

It shows one run session at a time (see sessions/session.py) and never asks which kind: the
session says what it allows, takes the user's commands, and its worker posts engine events
here, which go to every panel through its ``add_event`` (the panels keep what they show).
Redraws are batched by a tick, at most five a second.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from textual import events, on
from textual.actions import parse as parse_action
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ..engine.config import TrainConfig
from ..engine.control import SampleRequest
from ..engine.errors import GptTuiError
from ..engine.events import (CheckpointSaved, Event, HparamsChanged, LogMessage, RolledBack, RunFailed, RunFinished,
                             RunStarted, SpikeDetected, StateChanged)
from ..engine.notify import notable
from ..engine.schedule import decay_start
from ..engine.safe_text import visible
from ..event_text import event_line
from .finder import FinderEnded, FormFinder
from .fit_batch import BatchFound, FitBatch
from .lr_find import LrFind, LrPoints
from .messages import EngineEvents, FollowedEvents, TokenizeProgress
from .run_choices import RunChoices
from .sessions.session import RunSession
from .state import AppState, allowed
from .tokenize_progress import CorpusReadCancelled
from .widgets.device_panel import DevicePanel
from .widgets.form import HyperparamForm
from .widgets.health_panel import HealthPanel
from .widgets.log_panel import LogPanel
from .widgets.loss_plot import LossPlot, PlotLegend
from .widgets.progress_panel import ProgressPanel
from .widgets.samples_panel import SamplesPanel

UI_TICK = 0.2  # seconds between progress redraws: five a second, whatever the step rate
PLOT_EVERY = 0.6  # seconds between plot redraws at the most
# The plot's share of wall time at the most: a redraw holds the GIL that the training thread
# needs, so a costly one (a wide terminal, a slow CPU) waits longer before the next.
PLOT_BUDGET = 0.03
REPEAT_GUARD = 1.5  # seconds after F7 during which F5 is taken as a mashed key


class DashboardScreen(Screen):
    # Each binding's words are written here once: the footer shows the description, the
    # command palette the tooltip ("title: help"). The ids let users remap keys (keymap.py).
    # Screen bindings: under the Runs screen or a dialog, none of them is live. Quit and Keys are
    # the app's (they work on every screen), named here too so that the footer shows them first.
    BINDINGS = [
        Binding("ctrl+q", "request_quit", "Quit", tooltip="Quit: asks to save first during a run", priority=True,
                id="quit"),
        Binding("f1", "toggle_keys", "Keys", tooltip="Keys: show or hide every key of this screen, and what it does",
                id="keys"),
        Binding("f5", "start", "Start", tooltip="Start training: a run with the form's values", id="start"),
        # One key, two bindings: the footer names what F6 does now (check_action hides the other).
        Binding("f6", "toggle_pause('pause')", "Pause", tooltip="Pause training: at the next step", id="pause"),
        Binding("f6", "toggle_pause('resume')", "Resume", tooltip="Resume training", id="pause"),
        Binding("f7", "stop", "Stop", tooltip="Stop training: at the next step; the model stays in memory to "
                "save and sample", id="stop"),
        Binding("ctrl+s", "save", "Save ckpt", tooltip="Save checkpoint: RUN_DIR/model.ckpt at the next step "
                "boundary", priority=True, id="save"),
        Binding("f8", "sample", "Sample", tooltip="Generate a sample: from the current model", id="sample"),
        Binding("f2", "runs", "Runs", tooltip="Runs: resume, watch or compare past and running runs", id="runs"),
        Binding("f3", "find('lr_find')", "LR find", tooltip="Find a learning rate: a range test on a fresh model of "
                "the form's values, its curve where the loss plot is; F3 again stops it", id="lr-find"),
        Binding("f4", "find('fit_batch')", "Fit batch", tooltip="Find the batch size: the largest that fits on a GPU, "
                "the fastest on a CPU, keeping the form's tokens per step; F4 again stops it", id="fit-batch"),
        Binding("f12", "sweep", "Sweep", tooltip="Sweep hyperparameters: search ranges around the form's values "
                "with Optuna (TPE, ASHA pruning), on the Sweep screen", id="sweep"),
        Binding("f9", "toggle_log_y", "Log y", tooltip="Toggle log-scale loss axis: for long runs", id="log-y"),
        Binding("ctrl+t", "next_tab", "Next tab", show=False, tooltip="Next tab: Log, Samples, Health, Device in "
                "turn, without a mouse", id="next-tab"),
        Binding("f10", "detach", "Detach", tooltip="Detach: the run trains on in this process without the app; "
                "gpt-tui watch RUN_DIR comes back to it", id="detach"),
    ]

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None,
                 corpus_figures: tuple[int, int] | None = None) -> None:
        super().__init__(id="dashboard")
        self.config = config
        self.form_config: TrainConfig | None = config
        self.session: RunSession | None = None  # the run shown, once there is one
        self.state = AppState.IDLE
        self.choices = RunChoices(self, run_dir)
        self.lr_find, self.fit_batch = LrFind(self), FitBatch(self)
        self.finders: dict[str, FormFinder] = {"lr_find": self.lr_find, "fit_batch": self.fit_batch}
        self.notify_level = config.notify  # which events of the run shown ring and notify (its live "notify")
        # The step shown when ctrl+s was pressed, until its checkpoint is reported (None: not asked).
        # A watched run's events come late: a periodic save read after the press may predate it.
        self._save_asked_at: int | None = None
        self._stop_pressed_at = -REPEAT_GUARD  # F7 then: an F5 just after it is a mashed key, not a new run
        self._dirty = False
        self._plotted_at = 0.0  # when the plot last redrew (monotonic)
        # The widgets are kept as attributes: handlers and timers reach them even while another
        # screen is on top or the app is shutting down.
        self.form = HyperparamForm(config, corpus_figures, id="form")
        self.progress = ProgressPanel(id="progress")
        self.plot = LossPlot(id="plot")
        self.plot_legend = PlotLegend(id="plot-legend")
        self.log_panel = LogPanel(id="log")
        self.samples = SamplesPanel(config.sample_tokens, id="samples")
        self.device_panel = DevicePanel(id="device")
        self.health_panel = HealthPanel(id="health")
        self.tabs = TabbedContent(id="tabs")
        self.buttons = {"start": Button("Start", id="start", variant="success", compact=True),
                        "pause": Button("Pause", id="pause", compact=True),
                        "stop": Button("Stop", id="stop", variant="error", compact=True),
                        "save": Button("Save checkpoint", id="save", variant="primary", compact=True)}
        # Every engine event goes to each of these, in order.
        self.panels = (self.plot, self.progress, self.log_panel, self.health_panel, self.samples, self.form,
                       self.device_panel)

    def validate_sub_title(self, text: str | None) -> str | None:
        return None if text is None else visible(text)  # run names and paths: never a terminal code in the header

    @property
    def run_dir(self) -> Path | None:
        return self.session.run_dir if self.session else None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            yield self.form
            with Vertical(id="right"):
                with Horizontal(id="buttons"):
                    yield from self.buttons.values()
                yield self.progress
                yield self.plot
                yield self.plot_legend
                with self.tabs:
                    with TabPane("Log", id="tab-log"):
                        yield self.log_panel
                    with TabPane("Samples", id="tab-samples"):
                        yield self.samples
                    with TabPane("Health", id="tab-health"):
                        with VerticalScroll():
                            yield self.health_panel
                    with TabPane("Device", id="tab-device"):
                        yield self.device_panel
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.set_interval(UI_TICK, self._tick)
        self.refresh_keys()
        self.progress.redraw()  # the idle line, drawn now rather than whenever the first tick has news

    def log_line(self, text: str, level: str = "info") -> None:
        self.log_panel.add(text, level)

    def redraw_soon(self) -> None:
        """The plot or progress changed: the next tick redraws them."""
        self._dirty = True

    # ---- the session shown ---------------------------------------------------------------------
    def show(self, session: RunSession) -> None:
        """Turn to ``session``: the one shown before is left (a run of this app's own thread stops
        and saves; another process's run goes on), the plot starts afresh."""
        self.leave_session("another run started")
        self.session = session
        self.notify_level = (self.form_config or self.config).notify  # the form holds the run's config now
        self.plot.reset()
        self.device_panel.show_recorded(session.recorded_status)
        self.sub_title = session.title
        self.set_state(AppState.STARTING)
        session.start()

    def leave_session(self, reason: str) -> None:
        if self.session is not None:
            self.session.leave(reason)

    def allows(self, action: str) -> bool:
        return self.session is not None and self.session.allows(action, allowed(self.state))

    # ---- state and keys ------------------------------------------------------------------------
    def set_state(self, state: AppState) -> None:
        self.state = state
        self.progress.set_state(state.value)
        self.form.set_running(allowed(state).in_run)
        self.refresh_keys()
        self._dirty = True

    def refresh_keys(self) -> None:
        for button_id, button in self.buttons.items():
            action = "toggle_pause" if button_id == "pause" else button_id
            button.disabled = self.check_action(action, ()) is not True
        self.buttons["pause"].label = "Resume" if self.state == AppState.PAUSED else "Pause"
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """True: allowed now. None: shown dimmed in the footer, so every key stays discoverable."""
        rules = allowed(self.state)
        finding = self.finding
        if action == "start":
            ok = rules.start and self.form_config is not None and finding is None
        elif action == "find":  # between runs, one at a time; pressed again while it runs, it stops it
            finder = self.finders[parameters[0]]
            ok = finder is finding or (rules.start and self.form_config is not None and finding is None)
        elif action in ("toggle_pause", "stop"):
            resume = self.state == AppState.PAUSED
            if action == "toggle_pause" and parameters and (parameters[0] == "resume") != resume:
                return False  # the other of F6's two bindings is the one that applies
            ok = rules.steer
        elif action in ("save", "sample", "detach"):
            ok = self.allows(action)
        elif action == "sweep":
            ok = rules.start and self.form_config is not None and finding is None
        elif action == "runs":
            ok = rules.runs and finding is None
        else:
            return True
        return True if ok else None

    def on_key(self, event: events.Key) -> None:
        """A run key pressed when its action is not allowed says why, rather than nothing."""
        active = self.active_bindings.get(event.key)
        if active is not None and not active.enabled and active.node is self:
            event.stop()
            action = parse_action(active.binding.action)[1]
            self.app.notify(self.why_not(action), severity="warning", title=active.binding.description)

    def why_not(self, action: str) -> str:
        """Why ``action`` is not allowed now, and what would allow it."""
        state, session = self.state, self.session
        if state in (AppState.STARTING, AppState.STOPPING):
            return f"the run is {state.value}: wait a moment"
        if self.finding is not None:
            return f"the {self.finding.what} is running: its key again stops it"
        if allowed(state).in_run and session is not None and not session.owned and action in ("start", "find", "runs",
                                                                                              "sweep"):
            return "another process trains the run shown: this app can start one once it has ended"
        if action in ("start", "find", "sweep"):
            return "a run is going on: F7 stops it first" if allowed(state).in_run else \
                "fix the highlighted fields first"
        if action == "runs":
            return "a run is going on: the Runs screen opens once it has stopped (F7)"
        if action in ("toggle_pause", "stop"):
            return "no run is training"
        if session is None or (not session.in_this_process and action in ("save", "sample")
                               and not allowed(state).in_run):
            return "no model yet: start a run first" if session is None else \
                f"{session.run_dir.name} has ended; its process saved what it had"
        if action == "sample" and not session.in_this_process:
            return f"the model is in another process: sample its checkpoint with gpt-tui sample {session.run_dir}"
        if action == "detach":
            return "only a run this app trains itself, while it trains, can be detached"
        return "not now"

    def _tick(self) -> None:
        if self._dirty:
            self.progress.redraw()
            now = time.monotonic()
            wait = max(PLOT_EVERY, self.plot.render_seconds / PLOT_BUDGET)
            if now - self._plotted_at >= wait or not allowed(self.state).in_run:
                self._dirty = False
                self._plotted_at = now
                self.plot.refresh()
                self.plot_legend.show(self.plot.legend())

    # ---- actions -------------------------------------------------------------------------------
    def action_request_quit(self) -> None:
        self.app.action_request_quit()

    def action_toggle_keys(self) -> None:
        self.app.action_toggle_keys()

    def action_start(self) -> None:
        if self.check_action("start", ()) is not True:
            return
        if time.monotonic() - self._stop_pressed_at < REPEAT_GUARD:
            return  # keys mashed through a stop must not chain new runs
        self.choices.start(self.form_config)

    @property
    def finding(self) -> FormFinder | None:
        """The finder running now, if one is."""
        return next((finder for finder in self.finders.values() if finder.running), None)

    def action_find(self, name: str) -> None:
        finder = self.finders[name]
        if finder.running:
            finder.stop()
        elif self.check_action("find", (name,)) is True:
            finder.start(self.form_config)

    @on(LrPoints)
    def _lr_points(self, message: LrPoints) -> None:
        self.lr_find.show(message)

    @on(BatchFound)
    def _batch_found(self, message: BatchFound) -> None:
        self.fit_batch.show(message)

    @on(FinderEnded)
    def _finder_ended(self, message: FinderEnded) -> None:
        next(f for f in self.finders.values() if f.group == message.group).finished(message)

    def action_toggle_pause(self, which: str = "") -> None:
        """Pause a running run, resume a paused one (``which``: the binding's name for it)."""
        if not allowed(self.state).steer:
            return
        if self.state == AppState.PAUSED:
            self.session.control.resume()
        else:
            self.session.control.pause()
            self.log_line("pausing at the next step")

    def action_stop(self) -> None:
        if allowed(self.state).steer:
            self.session.control.stop("stopped by user")
            self._stop_pressed_at = time.monotonic()
            self.set_state(AppState.STOPPING)

    def action_save(self) -> None:
        if self.check_action("save", ()) is not True:
            return
        self._save_asked_at = self.progress.step
        self.session.control.save_now()
        if self.state != AppState.ENDED:
            self.log_line("checkpoint requested: it is written at the next step boundary")

    def action_sample(self) -> None:
        request = self.samples.request()
        if request:
            self._sample(request)

    @on(SamplesPanel.Requested)
    def _sample_requested(self, event: SamplesPanel.Requested) -> None:
        self._sample(event.request)

    def _sample(self, request: SampleRequest) -> None:
        if self.check_action("sample", ()) is not True:
            self.app.notify(self.why_not("sample"), severity="warning", title="Sample")
        else:
            self.session.sample(request)
        self.tabs.active = "tab-samples"

    def action_runs(self) -> None:
        if self.check_action("runs", ()) is not True:
            return
        self.choices.open_runs_screen()

    def action_sweep(self) -> None:
        if self.check_action("sweep", ()) is not True:
            return
        self.choices.open_sweep_setup(self.form_config)

    def action_detach(self) -> None:
        if self.check_action("detach", ()) is not True:
            return
        self.app.detach(f"gpt-tui: detached: {self.run_dir} trains on in process {os.getpid()}; its output goes to "
                        f"{self.run_dir / 'detached.log'}; come back with: gpt-tui watch {self.run_dir}")

    def action_next_tab(self) -> None:
        panes = [pane.id for pane in self.tabs.query(TabPane)]
        self.tabs.active = panes[(panes.index(self.tabs.active) + 1) % len(panes)]
        if self.tabs.active == "tab-samples":  # its keys (tokens, pages, compare) work at once
            self.samples.query_one("#sample-view").focus()
        elif self.tabs.active == "tab-health":  # arrows and page keys scroll its rows
            self.health_panel.parent.focus()

    def action_toggle_log_y(self) -> None:
        log_y = self.plot.toggle_log_y()
        self.log_line(f"loss axis: {'log' if log_y else 'linear'}")

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "pause": self.action_toggle_pause, "stop": self.action_stop,
                   "save": self.action_save}
        if event.button.id in actions:
            actions[event.button.id]()

    @on(HyperparamForm.Changed)
    def _form_changed(self, event: HyperparamForm.Changed) -> None:
        was_valid = self.form_config is not None
        self.form_config = event.config
        if allowed(self.state).start and was_valid != (event.config is not None):
            self.refresh_keys()

    @on(HyperparamForm.LiveChangeSubmitted)
    def _live_change(self, event: HyperparamForm.LiveChangeSubmitted) -> None:
        """Sent to the run; the form shows the new value as in force once its hparams event comes back."""
        if allowed(self.state).steer:
            self.session.control.change(event.changes, self.session.source)
            self.log_line(f"asked for {', '.join(event.changes)} to change at the next step")

    @on(TokenizeProgress)
    def _show_tokenize_progress(self, message: TokenizeProgress) -> None:
        done = message.done >= message.total
        self.progress.note = "" if done else (
            f"tokenizing the corpus into the cache: {message.done / 2**20:,.0f}/{message.total / 2**20:,.0f} MB")
        self._dirty = True

    # ---- engine events -------------------------------------------------------------------------
    @on(EngineEvents)
    def _engine_events(self, message: EngineEvents) -> None:
        for event in message.events:
            self.add_event(event)

    @on(FollowedEvents)
    def _followed_events(self, message: FollowedEvents) -> None:
        for event in message.events:
            self.add_event(event, message.replay)

    def add_event(self, event: Event, replay: bool = False) -> None:
        """One event of the run shown: to the session, to every panel, then what the dashboard
        itself does with it (state, toasts, the terminal's notification)."""
        self._dirty = True
        if self.session is not None:
            self.session.saw(event)
        for panel in self.panels:
            panel.add_event(event)
        if isinstance(event, (RunStarted, HparamsChanged)):  # the form holds the config in force by now
            config = self.form.in_force()
            self.plot.set_decay_start(decay_start(config) if config else None)
        if not replay and notable(event, self.notify_level):
            self.app.notify_terminal(event, self.run_dir)
        toast = None if replay else self._toast(event)
        if toast:
            text, how = toast
            self.app.notify(text, **how)
        if self.session is None:  # a warning posted before any run: the log has it
            return
        if isinstance(event, RunStarted):
            self.sub_title = self.session.title
            self.choices.started(event)
        elif isinstance(event, StateChanged) and self.state != AppState.STOPPING:
            self.set_state(AppState(event.state))
        elif isinstance(event, HparamsChanged) and "notify" in event.changes:
            self.notify_level = event.changes["notify"][1]
        elif isinstance(event, (RunFinished, RunFailed)):
            self.set_state(AppState.ENDED)
            self.sub_title = self.session.title
            self.app.run_ended()

    def _toast(self, event: Event) -> tuple[str, dict] | None:
        """The toast an event raises, if any (text, then notify's keywords)."""
        if isinstance(event, HparamsChanged):
            return event_line(event), {"title": "Hyperparameters"}
        if isinstance(event, (SpikeDetected, RolledBack)):
            return event_line(event), {"severity": "warning", "title": "Loss spike"}
        if (isinstance(event, CheckpointSaved) and event.kind == "latest" and self._save_asked_at is not None
                and event.step >= self._save_asked_at):
            self._save_asked_at = None  # the user's ctrl+s; periodic saves show in the log
            return f"{event.path} at step {event.step}", {"title": "Checkpoint saved"}
        if isinstance(event, LogMessage) and event.level == "error":
            return event.text, {"severity": "error", "title": "Error"}
        if isinstance(event, RunFinished):
            return f"{event.status} at step {event.step}", {"title": "Training"}
        if isinstance(event, RunFailed):
            return event_line(event), {"severity": "error", "title": "Training failed", "timeout": 10}
        return None

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Errors from any worker land here: shown in the log and as a toast; the app stays up."""
        if event.state != WorkerState.ERROR or isinstance(event.worker.error, CorpusReadCancelled):
            return
        error = event.worker.error
        message = str(error) if isinstance(error, GptTuiError) else f"{type(error).__name__}: {error}"
        self.log_line(message, "error")
        self.app.notify(message, severity="error", title="Error", timeout=10)
        if event.worker.group == "training":
            self.set_state(AppState.ENDED if self.session and self.session.built else AppState.IDLE)
            self.app.run_ended()
