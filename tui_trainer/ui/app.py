"""The gpt-tui app: edit hyperparameters, start training, watch the loss, save with ctrl+s.

Training runs in a thread worker that drives the engine's Trainer. Engine events arrive as
``EngineEvents`` batches; the app stores them and redraws at most five times a second.
User actions become TrainingControl commands.

A run that another process trains (``gpt-tui watch``, the Runs screen's Watch) is followed
through its files instead: a thread worker reads metrics.jsonl as it grows and posts
``FollowedEvents``, and the same actions become request files in the run directory.
"""
from __future__ import annotations

import os
import signal
import threading
import time
import traceback
import warnings
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from ..engine.config import TrainConfig
from ..engine.control import RunDirControl, SampleRequest, TrainingControl
from ..engine.errors import GptTuiError
from ..engine.events import (CheckpointSaved, EvalResult, Event, HparamsChanged, LogMessage, RolledBack, RunFailed,
                             RunFinished, RunStarted, SampleText, SpikeDetected, StateChanged, StepMetrics)
from ..engine.follow import read_events, read_status
from ..engine.notify import notable, notification
from ..engine.presets import list_presets, preset_target, save_preset
from ..engine.rundir import free_path, holds_run
from ..event_text import event_line
from ..signals import SIGNAL_EXIT_CODES, SignalHandlers
from .detach import start_detach
from .event_batches import EventBatches
from .keymap import load_keymap
from .messages import CorpusInfo, EngineEvents, FollowedEvents, RunReady, TokenizeProgress
from .native_stderr import NativeStderr
from .runs_actions import RunsActions
from .screens import ChoiceScreen, QuitScreen
from .state import AppState, allowed
from .terminal_notify import notification_sequences
from .widgets.device_panel import DevicePanel
from .widgets.health_panel import HealthPanel
from .widgets.form import HyperparamForm
from .widgets.log_panel import LogPanel
from .widgets.loss_plot import LossPlot, PlotLegend
from .widgets.progress_panel import ProgressPanel
from .widgets.samples_panel import SamplesPanel

UI_TICK = 0.2  # seconds between progress redraws: five a second, whatever the step rate
PLOT_EVERY = 0.6  # seconds between plot redraws at the most
# The plot's share of wall time at the most: a redraw holds the GIL that the training thread
# needs, so a costly one (a wide terminal, a slow CPU) waits longer before the next.
PLOT_BUDGET = 0.03
EXIT_GRACE = 5.0  # seconds a signalled app may take to leave once its run is on disk
CORPUS_PAUSE = 0.8  # seconds of no typing before the form's corpus figures are read
ASK_ABOVE_BYTES = 64 << 20  # a corpus larger than this is read for the form's figures only on Enter
REPEAT_GUARD = 1.5  # seconds after F7 during which F5 is taken as a mashed key


class CorpusReadCancelled(Exception):
    """A corpus read overtaken by a newer path (or by quitting): stopped between blocks."""


class GptTuiApp(RunsActions, App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "gpt-tui"
    # Each binding's words are written here once: the footer shows the description, the
    # command palette the tooltip ("title: help"). The ids let users remap keys (keymap.py).
    BINDINGS = [
        Binding("f5", "start", "Start", tooltip="Start training: a run with the form's values", id="start"),
        Binding("f6", "toggle_pause", "Pause", tooltip="Pause or resume training: at the next step", id="pause"),
        Binding("f7", "stop", "Stop", tooltip="Stop training: at the next step; the model stays in memory to "
                "save and sample", id="stop"),
        Binding("ctrl+s", "save", "Save ckpt", tooltip="Save checkpoint: RUN_DIR/model.ckpt at the next step "
                "boundary", priority=True, id="save"),
        Binding("f8", "sample", "Sample", tooltip="Generate a sample: from the current model", id="sample"),
        Binding("f2", "runs", "Runs", tooltip="Runs: resume, watch or compare past and running runs", id="runs"),
        Binding("f9", "toggle_log_y", "Log y", tooltip="Toggle log-scale loss axis: for long runs", id="log-y"),
        Binding("ctrl+t", "next_tab", "Next tab", show=False, tooltip="Next tab: Log, Samples, Health, Device in "
                "turn, without a mouse", id="next-tab"),
        Binding("f10", "detach", "Detach", tooltip="Detach: the run trains on in this process without the app; "
                "gpt-tui watch RUN_DIR comes back to it", id="detach"),
        Binding("ctrl+q", "request_quit", "Quit", tooltip="Quit: asks to save first during a run", priority=True,
                id="quit"),
    ]

    def __init__(self, config: TrainConfig, run_dir: str | Path | None = None, start: bool = False,
                 stderr: NativeStderr | None = None, corpus_figures: tuple[int, int] | None = None,
                 watch: Path | None = None):
        super().__init__()
        self.config = config
        self.form_config: TrainConfig | None = config
        self.first_run_dir = run_dir
        # Where F2 looks: beside --out's run when one was named, else the form's out_dir.
        self.runs_root: Path | None = Path(run_dir).expanduser().parent if run_dir else None
        self.start_on_mount = start
        self.stderr = stderr
        self.control: TrainingControl | RunDirControl | None = None
        self.run_info: RunReady | None = None  # this app's own run, once built: its model serves save and sample
        self.watching: Path | None = None  # the run directory followed, when another process trains it
        self.job = None  # the torchrun job (a Popen) this app launched for processes > 1, while followed
        self.resume_from: Path | None = None  # the run that F5 continues, chosen on the Runs screen
        self.fork_from: Path | None = None  # the run that F5 forks into a new one, chosen on the Runs screen
        self._watch_on_mount = watch
        self.state = AppState.IDLE
        self.run_dir: str | None = None
        self._dirty = False
        self._plotted_at = 0.0  # when the plot last redrew (monotonic)
        # (tokens, vocab size) of the config's corpus when the caller has read it already
        self._corpus_figures = corpus_figures
        self._corpus_key: tuple | None = self._corpus_key_of(config) if corpus_figures else None
        self._corpus_timer = None  # the pending read of the form's corpus, while typing goes on
        self._corpus_confirmed: set[tuple] = set()  # large corpora the user asked to read (Enter)
        self._stop_pressed_at = -REPEAT_GUARD  # F7 then: an F5 just after it is a mashed key, not a new run
        self.notify_level = config.notify  # which events of the run shown ring and notify (its live "notify")
        self._quit_after_run = False
        self._save_requested = False  # ctrl+s was pressed and its checkpoint has not been reported yet
        self.signal_exit: int | None = None  # the exit code a SIGINT, SIGTERM or SIGHUP asked for
        self.detached = False  # the app left its run training on (F10, or a hang-up with on_hangup = "detach")
        self._detach_line: str | None = None  # what the terminal is told as the app leaves
        self._run_config: TrainConfig | None = None  # the config of this app's own run
        # An exception that escaped a UI handler (see _handle_exception), with its traceback text.
        self.crash: BaseException | None = None
        self.crash_traceback = ""
        self.run_result = None  # RunFinished or RunFailed of this app's own last run, once it returned
        self._previous_showwarning = warnings.showwarning
        self._signals = SignalHandlers(self._on_signal)

    # ---- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # The main screen's widgets are kept as attributes: handlers and timers reach them
        # even while a modal screen is on top or the app is shutting down.
        self.form = HyperparamForm(self.config, list_presets(), id="form")
        self.progress = ProgressPanel(id="progress")
        self.plot = LossPlot(id="plot")
        self.plot_legend = PlotLegend(id="plot-legend")
        self.log_panel = LogPanel(id="log")
        self.samples = SamplesPanel(self.config.sample_tokens, id="samples")
        self.device_panel = DevicePanel(id="device")
        self.health_panel = HealthPanel(id="health")
        self.tabs = TabbedContent(id="tabs")
        self.buttons = {"start": Button("Start", id="start", variant="success", compact=True),
                        "pause": Button("Pause", id="pause", compact=True),
                        "stop": Button("Stop", id="stop", variant="error", compact=True),
                        "save": Button("Save checkpoint", id="save", variant="primary", compact=True)}
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
        if self._corpus_figures:
            self.form.set_corpus_info(*self._corpus_figures, None)
        self._previous_showwarning = warnings.showwarning
        warnings.showwarning = self._show_warning
        self._signals.install()
        load_keymap(self)
        self.set_interval(UI_TICK, self._tick)
        self._sync_controls()
        self.progress.redraw()  # the idle line, drawn now rather than whenever the first tick has news
        if self._watch_on_mount:
            self.call_after_refresh(self.watch_run, self._watch_on_mount)
        elif self.start_on_mount:
            self.call_after_refresh(self.action_start)

    def on_unmount(self) -> None:
        warnings.showwarning = self._previous_showwarning
        if self.detached:  # the run trains on; SIGTERM and SIGINT still stop and save it
            self.control.close()  # nobody is left to ask for a save or a sample after the run
            start_detach(self._detach_line, Path(self.run_dir) / "detached.log")
            return
        # However else the app closes, its own run stops and saves rather than training on unseen
        # (Textual then waits for the training thread before the process can end).
        self._stop_training_thread("the app closed")
        if self.crash is None or not self.owns_run():  # else signals keep their promise until the run has saved
            self.restore_signals()

    def notify(self, message: str, *, title: str = "", severity="information", timeout: float | None = None,
               markup: bool = False) -> None:
        """Notifications carry paths, run names and engine messages: plain text, never markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def get_system_commands(self, screen):
        """Textual's own commands, then each binding allowed now, in the words of its tooltip."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if self.check_action(binding.action, ()) is True:
                title, _, help_text = binding.tooltip.partition(": ")
                key = self.get_key_display(binding)
                yield SystemCommand(title, f"{help_text} ({key})", getattr(self, f"action_{binding.action}"))

    # ---- helpers -------------------------------------------------------------------------------
    def log_line(self, text: str, level: str = "info") -> None:
        self.log_panel.add(text, level)

    def _show_warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        # Warnings may come from the training thread: post, never touch widgets directly.
        self.post_message(EngineEvents([LogMessage("warning", f"{category.__name__}: {message}")]))

    def _on_signal(self, signum: int) -> None:
        """SIGHUP (the terminal went away: SSH closed), SIGTERM or SIGINT: as on the CLI, a run of
        this app's own finishes its step, saves and syncs, then the app exits with 128 + signum.
        A watched run belongs to another process and goes on."""
        if signum == signal.SIGHUP and (self.detached or self._hangup_detaches()):
            self._detach(None)  # silently: nobody is there to read it
            return
        self.signal_exit = SIGNAL_EXIT_CODES[signum]
        if self.owns_run():
            self.control.stop(f"received {signal.Signals(signum).name}", save=True)
            self._quit_after_run = True
        elif self.crash is None:  # after a crash the app is gone already; the exit code is all that is left
            self._leave(self.signal_exit)

    def _hangup_detaches(self) -> bool:
        """A hang-up detaches when the run's config says so and F10 could detach it now."""
        return (self._run_config is not None and self._run_config.on_hangup == "detach"
                and self.check_action("detach", ()) is True)

    def action_detach(self) -> None:
        if self.check_action("detach", ()) is not True:
            self.notify("no run of this app's own is training", severity="warning", title="Detach")
            return
        self._detach(f"gpt-tui: detached: {self.run_dir} trains on in process {os.getpid()}; its output goes to "
                     f"{Path(self.run_dir) / 'detached.log'}; come back with: gpt-tui watch {self.run_dir}")

    def _detach(self, line: str | None) -> None:
        """Leave the terminal; the run goes on in this process (see detach.py)."""
        if not self.detached:
            self.detached, self._detach_line = True, line
            self.control.detach()
            self.exit(0)

    def _leave(self, code: int) -> None:
        """Exit after a signal. The terminal may be gone (SIGHUP: a dropped SSH connection), and
        Textual's output thread can then block forever as the app shuts down, holding memory
        and the GPU. Everything is on disk by now, so if the orderly exit has not ended the
        process within EXIT_GRACE seconds, end it."""
        timer = threading.Timer(EXIT_GRACE, os._exit, (code,))
        timer.daemon = True
        timer.start()
        self.exit(code)

    def owns_run(self) -> bool:
        """A run of this app's own (its thread, or the torchrun job it launched) is going on."""
        owned = isinstance(self.control, TrainingControl) or self.job is not None
        return owned and allowed(self.state).in_run

    def _handle_exception(self, error: Exception) -> None:
        """The crash barrier. Whatever raised in the UI, this app's own run is asked to stop and
        save at its next step boundary (Textual then waits for the training thread as it shuts
        down); a watched run or a torchrun job is left to go on. The traceback is kept for
        error.log and replaces Textual's full-screen one: the CLI prints one line instead."""
        if self.crash is None:
            self.crash = error
            self.crash_traceback = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self._stop_training_thread(f"the dashboard failed ({type(error).__name__})")
        renderables = len(self._exit_renderables)
        super()._handle_exception(error)
        del self._exit_renderables[renderables:]

    def _stop_training_thread(self, reason: str) -> None:
        """Stop and save the run this app trains in its own thread, if one goes on. Not a watched
        run nor the torchrun job: those live in other processes and go on without this app."""
        if isinstance(self.control, TrainingControl):
            if allowed(self.state).in_run:
                self.control.stop(reason, save=True)
            self.control.close()  # a trainer that ended stops serving save and sample

    def restore_signals(self) -> None:
        self._signals.restore()

    def _set_state(self, state: AppState) -> None:
        self.state = state
        self.progress.set_state(state.value)
        self.form.set_running(allowed(state).in_run)
        self._sync_controls()
        self._dirty = True

    def _sync_controls(self) -> None:
        for button_id, button in self.buttons.items():
            action = "toggle_pause" if button_id == "pause" else button_id
            button.disabled = self.check_action(action, ()) is not True
        self.buttons["pause"].label = "Resume" if self.state == AppState.PAUSED else "Pause"
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """True: allowed now. None: shown dimmed in the footer, so every key stays discoverable."""
        rules = allowed(self.state)
        if action == "start":
            ok = rules.start and self.form_config is not None
        elif action in ("toggle_pause", "stop"):
            ok = rules.steer
        elif action == "save":  # a watched run saves in its own process, while it runs
            ok = rules.save and (self.run_info is not None or (self.watching is not None and rules.in_run))
        elif action == "sample":
            ok = rules.sample and self.run_info is not None
        elif action == "runs":
            ok = rules.runs
        elif action == "detach":
            ok = rules.steer and isinstance(self.control, TrainingControl) and self.run_dir is not None
        else:
            return True
        return True if ok else None

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

    # ---- form ----------------------------------------------------------------------------------
    @on(HyperparamForm.Changed)
    def _form_changed(self, event: HyperparamForm.Changed) -> None:
        was_valid = self.form_config is not None
        self.form_config = event.config
        if allowed(self.state).start and was_valid != (event.config is not None):
            self._sync_controls()
        if event.config is not None:
            key = self._corpus_key_of(event.config)
            if key != self._corpus_key:
                # Read once typing pauses, not at every prefix of a path ("." is a whole folder).
                self._corpus_key = key
                self.workers.cancel_group(self, "corpus")
                if self._corpus_timer is not None:
                    self._corpus_timer.stop()
                self._corpus_timer = self.set_timer(CORPUS_PAUSE, lambda: self._read_corpus(key))

    @staticmethod
    def _corpus_key_of(config: TrainConfig) -> tuple:
        """What the corpus figures depend on."""
        return config.data, config.tokenizer, config.vocab

    @work(thread=True, exclusive=True, group="corpus", exit_on_error=False)
    def _read_corpus(self, key: tuple) -> None:
        from ..engine.data import build_corpus, corpus_bytes
        from ..engine.tokenizer import get_tokenizer

        data, tokenizer, vocab = key
        try:
            if key not in self._corpus_confirmed:
                size = corpus_bytes(data)
                if size > ASK_ABOVE_BYTES:  # a typo can name a whole disk: ask before reading it all
                    self.post_message(CorpusInfo(key, None, None, f"{size / 2**20:,.0f} MB to read: press Enter in "
                                                                  "the data field to read it"))
                    return
            corpus = build_corpus(data, get_tokenizer(tokenizer), vocab, progress=self._tokenize_progress)
            self.post_message(CorpusInfo(key, corpus.raw_count, corpus.vocab.size))
        except GptTuiError as exc:
            self.post_message(CorpusInfo(key, None, None, str(exc)))

    @on(Input.Submitted, "#f-data")
    def _read_large_corpus(self, event: Input.Submitted) -> None:
        """Enter in the data field: read that corpus, however large."""
        if self.form_config is not None:
            if self._corpus_timer is not None:
                self._corpus_timer.stop()  # read now, once, rather than again when typing's pause ends
            key = self._corpus_key_of(self.form_config)
            self._corpus_confirmed.add(key)
            self._corpus_key = key
            self._read_corpus(key)

    def _tokenize_progress(self, done: int, total: int) -> None:
        """Called from a worker thread while a new corpus is tokenized into the cache; a worker
        cancelled meanwhile (a newer path typed, or the app quitting) stops here."""
        if get_current_worker().is_cancelled:
            raise CorpusReadCancelled
        self.post_message(TokenizeProgress(done, total))

    @on(TokenizeProgress)
    def _show_tokenize_progress(self, message: TokenizeProgress) -> None:
        done = message.done >= message.total
        self.progress.note = "" if done else (
            f"tokenizing the corpus into the cache: {message.done / 2**20:,.0f}/{message.total / 2**20:,.0f} MB")
        self._dirty = True

    @on(CorpusInfo)
    def _corpus_info(self, event: CorpusInfo) -> None:
        if event.key == self._corpus_key and self.is_running:  # a read that ends as the app closes has no form left
            self.form.set_corpus_info(event.tokens, event.vocab_size, event.error)

    @on(HyperparamForm.LiveChangeSubmitted)
    def _live_change(self, event: HyperparamForm.LiveChangeSubmitted) -> None:
        """Sent to the run (this app's thread, or another process through its requests folder);
        the form shows the new value as in force once the run's hparams event comes back."""
        if self.control is not None and allowed(self.state).steer:
            self.control.change(event.changes, "app" if isinstance(self.control, TrainingControl) else "watch")
            self.log_line(f"asked for {', '.join(event.changes)} to change at the next step")

    @on(HyperparamForm.PresetSaveRequested)
    def _save_preset(self, event: HyperparamForm.PresetSaveRequested) -> None:
        """Saved among the user's presets; a shipped one is never written, an existing one of the
        user's only after a yes."""
        try:
            path = preset_target(event.name)
        except GptTuiError as exc:
            self.notify(str(exc), severity="error", title="Preset")
            return

        def write(answer: str | None = "overwrite") -> None:
            if answer != "overwrite":
                return
            try:
                save_preset(event.config, path)
            except OSError as exc:
                self.notify(f"could not write {path}: {exc.strerror or exc}", severity="error", title="Preset")
                return
            self.form.set_presets(list_presets())
            self.notify(f"saved preset {path}", title="Preset")
            self.log_line(f"saved preset {path}")
        if path.exists():
            self.push_screen(ChoiceScreen(f"Your preset {event.name!r} exists ({path}). Overwrite it?",
                                          [("overwrite", "o", "Overwrite")]), write)
        else:
            write()

    # ---- actions -------------------------------------------------------------------------------
    def action_start(self) -> None:
        if self.check_action("start", ()) is not True:
            if self.form_config is None:
                self.notify("fix the highlighted fields first", severity="error", title="Cannot start")
            return
        if time.monotonic() - self._stop_pressed_at < REPEAT_GUARD:
            return  # keys mashed through a stop must not chain new runs
        config = self.form_config
        if self.first_run_dir and not self.resume_from and holds_run(Path(self.first_run_dir)):
            self._ask_about_existing_run(Path(self.first_run_dir))
            return
        self._leave_watch()
        self._stop_training_thread("a new run started")  # the last run's thread, which serves save and sample
        if config.processes > 1:
            self._start_job(config)
            return
        self.control = TrainingControl()
        self.run_info = None
        self._run_config = config
        self.notify_level = config.notify
        self.plot.reset()
        resume, self.resume_from = self.resume_from, None
        fork, self.fork_from = self.fork_from, None
        if resume:
            self._plot_history(read_events(resume))
            self.log_line(f"resuming {resume}")
        run_dir, self.first_run_dir = self.first_run_dir, None
        self._set_state(AppState.STARTING)
        self.log_line("starting: reading the corpus and building the model")
        self._train(config, run_dir, self.control, resume, fork)

    def _ask_about_existing_run(self, path: Path) -> None:
        """--out named a folder that holds a run: nothing of it changes unless the user says so."""
        if isinstance(self.screen, ChoiceScreen):
            return

        def chosen(answer: str | None) -> None:
            if answer == "resume":
                self.first_run_dir, self.resume_from = None, path
            elif answer == "new":
                self.first_run_dir = free_path(path)
            else:
                return
            self.action_start()
        status = read_status(path)
        self.push_screen(ChoiceScreen(
            f"{path} already holds a run ({status.get('status', 'unknown')}, step {status.get('last_step', '?')}). "
            f"Continue it, or train this one in {free_path(path).name} beside it?",
            [("resume", "r", "Resume it"), ("new", "n", "New folder")]), chosen)

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def _train(self, config: TrainConfig, run_dir, control: TrainingControl, resume: Path | None = None,
               fork: Path | None = None) -> None:
        from ..engine.trainer import Trainer

        on_event = EventBatches(lambda events: self.post_message(EngineEvents(events)))

        if resume or fork:  # the form's values become overrides; shape keys that differ are refused
            trainer = Trainer(None, on_event, control, run_dir=run_dir if fork else None, resume=resume, fork=fork,
                              resume_overrides=config.to_dict(), progress=self._tokenize_progress)
        else:
            trainer = Trainer(config, on_event, control, run_dir=run_dir, progress=self._tokenize_progress)
        self.post_message(RunReady(str(trainer.device), trainer.config.run_name))
        try:
            self.run_result = trainer.run()
        finally:
            on_event.flush()
        trainer.serve_after_run()  # the model stays: ctrl+s and F8 still work, until the control closes

    def action_toggle_pause(self) -> None:
        if not allowed(self.state).steer:
            return
        if self.state == AppState.PAUSED:
            self.control.resume()
        else:
            self.control.pause()
            self.log_line("pausing at the next step")

    def action_stop(self) -> None:
        if self.control and allowed(self.state).steer:
            self.control.stop("stopped by user")
            self._stop_pressed_at = time.monotonic()
            self._set_state(AppState.STOPPING)

    def action_save(self) -> None:
        if self.check_action("save", ()) is not True:
            self.notify("no model yet: start a run first", severity="warning", title="Save checkpoint")
            return
        self._save_requested = True
        self.control.save_now()
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
            self.notify("no model yet: start a run first", severity="warning", title="Sample")
        else:
            self.control.request_sample(request)
        self.tabs.active = "tab-samples"

    def action_next_tab(self) -> None:
        panes = [pane.id for pane in self.tabs.query(TabPane)]
        self.tabs.active = panes[(panes.index(self.tabs.active) + 1) % len(panes)]
        if self.tabs.active == "tab-samples":  # its keys (tokens, pages, compare) work at once
            self.samples.query_one("#sample-view").focus()

    def action_toggle_log_y(self) -> None:
        log_y = self.plot.toggle_log_y()
        self.log_line(f"loss axis: {'log' if log_y else 'linear'}")

    def action_request_quit(self) -> None:
        if (self.watching and not self.job) or not allowed(self.state).in_run:
            self.exit(0)  # a watched run goes on in its own process
            return

        if isinstance(self.screen, QuitScreen):
            return  # asked already: one dialog, however often ctrl+q is pressed

        def chosen(answer: str | None) -> None:
            if answer in ("save", "discard") and self.control:
                self.control.stop("quit", save=answer == "save")
                self._quit_after_run = True
                self._set_state(AppState.STOPPING)
        self.push_screen(QuitScreen(paused=self.state == AppState.PAUSED), chosen)

    # ---- engine events -------------------------------------------------------------------------
    @on(RunReady)
    def _run_ready(self, message: RunReady) -> None:
        self.run_info = message
        self.device_panel.device = message.device
        self.sub_title = f"{message.device} · {message.run_name}"

    @on(EngineEvents)
    def _engine_events(self, message: EngineEvents) -> None:
        for event in message.events:
            self._apply(event)

    @on(FollowedEvents)
    def _followed_events(self, message: FollowedEvents) -> None:
        if message.events and self.watching is not None:
            for event in message.events:
                self._apply(event, message.replay)

    def _notify(self, replay: bool, message: str, **kwargs) -> None:
        if not replay:
            self.notify(message, **kwargs)

    def _apply(self, event: Event, replay: bool = False) -> None:
        progress = self.progress
        self._dirty = True
        if not replay and notable(event, self.notify_level):
            self._notify_terminal(event)
        line = event_line(event)
        self.plot.add_event(event)
        if isinstance(event, StepMetrics):
            progress.step, progress.metrics = event.step, event
            self.health_panel.add(event)
            return  # steps show in the progress line and the plot, not the log
        if isinstance(event, SampleText):
            self.samples.add(event)
            return
        if isinstance(event, RunFailed) and event.kind == "interrupted":
            line = f"{line}; or press F2 and resume it from the Runs screen"
        if line is not None:
            self.log_line(line, event.level if isinstance(event, LogMessage) else
                          "error" if isinstance(event, RunFailed) else
                          "warning" if isinstance(event, (SpikeDetected, RolledBack)) else "info")
        if isinstance(event, EvalResult):
            progress.eval = event
        elif isinstance(event, RunStarted):
            self.run_dir = event.run_dir
            if self.stderr and self.watching is None:
                self.stderr.redirect(Path(event.run_dir) / "stderr.log")
            progress.start(event.step, event.max_iters)
            if event.parent:
                self._show_parent(Path(event.parent), event.step)
        elif isinstance(event, StateChanged):
            if self.state != AppState.STOPPING:
                self._set_state(AppState(event.state))
        elif isinstance(event, HparamsChanged):
            if "notify" in event.changes:
                self.notify_level = event.changes["notify"][1]
            self.form.applied(event.changes)
            if "max_iters" in event.changes:
                progress.set_max_iters(event.changes["max_iters"][1])
            self._notify(replay, line, title="Hyperparameters")
        elif isinstance(event, (SpikeDetected, RolledBack)):
            self.health_panel.note(event)
            self._notify(replay, line, severity="warning", title="Loss spike")
        elif isinstance(event, CheckpointSaved):
            if event.kind == "latest" and self._save_requested:  # the user's ctrl+s; periodic saves: the log
                self._save_requested = False
                self._notify(replay, f"{event.path} at step {event.step}", title="Checkpoint saved")
        elif isinstance(event, LogMessage):
            if event.level == "error":
                self._notify(replay, event.text, severity="error", title="Error")
        elif isinstance(event, RunFinished):
            self._notify(replay, f"{event.status} at step {event.step}", title="Training")
            self._run_ended()
        elif isinstance(event, RunFailed):
            self._notify(replay, line, severity="error", title="Training failed", timeout=10)
            self._run_ended()

    def _notify_terminal(self, event: Event) -> None:
        """The bell and a desktop notification, through Textual's own output (never torn)."""
        if self._driver is None or self.is_headless:
            return
        name = Path(self.run_dir).name if self.run_dir else "gpt-tui"
        self._driver.write(notification_sequences(*notification(event, name)))
        self.bell()

    def _run_ended(self) -> None:
        self._set_state(AppState.ENDED)
        if self.watching is not None:  # never "watching" while nothing is followed any more
            self.sub_title = f"{self.watching.name} · ended (was watched)"
        if self._quit_after_run:
            self._quit_after_saving()

    def _quit_after_saving(self) -> None:
        """The run asked to end on quit (ctrl+q) or on a signal has ended: leave."""
        if self.signal_exit:
            self._leave(self.signal_exit)
        else:
            self.exit(0)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Errors from any worker land here: shown in the log and as a toast; the app stays up."""
        if event.state != WorkerState.ERROR or isinstance(event.worker.error, CorpusReadCancelled):
            return
        error = event.worker.error
        message = str(error) if isinstance(error, GptTuiError) else f"{type(error).__name__}: {error}"
        self.log_line(message, "error")
        self.notify(message, severity="error", title="Error", timeout=10)
        if event.worker.group == "training":
            self._set_state(AppState.ENDED if self.run_info else AppState.IDLE)
            if self._quit_after_run:
                self._quit_after_saving()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "pause": self.action_toggle_pause, "stop": self.action_stop,
                   "save": self.action_save}
        if event.button.id in actions:
            actions[event.button.id]()


def create_app(config: TrainConfig, run_dir: str | Path | None = None, start: bool = False,
               stderr: NativeStderr | None = None, corpus_figures: tuple[int, int] | None = None,
               watch: Path | None = None) -> GptTuiApp:
    """The one factory that the CLI, the tests and the snapshots all use.

    ``watch`` opens the dashboard on a run that another process trains (``gpt-tui watch``)."""
    return GptTuiApp(config, run_dir=run_dir, start=start, stderr=stderr, corpus_figures=corpus_figures,
                     watch=watch)
