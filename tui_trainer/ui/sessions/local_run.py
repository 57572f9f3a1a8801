"""This app's own run: the engine's Trainer in a thread worker, steered by a TrainingControl.

After the run the model stays in memory: ctrl+s and F8 still save and sample it, until the
session is left (another run starts, or the app closes)."""
from __future__ import annotations

from pathlib import Path

from ...engine.config import TrainConfig
from ...engine.control import SampleRequest, TrainingControl
from ...engine.events import Event, RunStarted
from ...engine.run_plan import RunPlan
from ..event_batches import EventBatches
from ..messages import EngineEvents
from ..native_stderr import NativeStderr
from ..state import Allowed
from ..tokenize_progress import tokenize_progress
from .session import RunSession


class LocalRun(RunSession):
    owned = in_this_process = True
    source = "app"

    def __init__(self, host, plan: RunPlan, stderr: NativeStderr | None) -> None:
        super().__init__(host, TrainingControl(), plan.run_dir)
        self.control: TrainingControl
        self.plan = plan
        self.stderr = stderr  # native output (CUDA, compile) goes to the run's stderr.log
        self.detached = False  # the app left; the run trains on in this process without it
        self.device: str | None = None  # where it trains, once it has started

    @property
    def config(self) -> TrainConfig:
        return self.plan.config

    @property
    def title(self) -> str:
        return f"{self.device} · {self.config.run_name}" if self.device else self.plan.title

    @property
    def detaches_on_hangup(self) -> bool:
        return self.config.on_hangup == "detach"

    def start(self) -> None:
        self.host.run_worker(self._train, thread=True, exclusive=True, group="training", exit_on_error=False)

    def _train(self) -> None:
        from ...engine.trainer import Trainer

        on_event = EventBatches(lambda events: self.host.post_message(EngineEvents(events)))
        trainer = Trainer(self.plan, on_event, self.control, progress=tokenize_progress(self.host))
        self.built = True  # from the training thread: the dashboard reads it when it next checks its keys
        try:
            trainer.run()
        finally:
            on_event.flush()
        trainer.serve_after_run()  # until the control closes

    def allows(self, action: str, rules: Allowed) -> bool:
        if action == "detach":
            return rules.steer and self.run_dir is not None
        return self.built and (rules.save if action == "save" else rules.sample)

    def sample(self, request: SampleRequest) -> None:
        self.control.request_sample(request)

    def detach(self) -> None:
        self.detached = True
        self.control.detach()

    def saw(self, event: Event) -> None:
        super().saw(event)
        if isinstance(event, RunStarted):
            self.device = event.device
            if self.stderr:
                self.stderr.redirect(Path(event.run_dir) / "stderr.log")

    def leave(self, reason: str) -> None:
        """However the dashboard leaves it, a run still training stops and saves rather than
        training on unseen; detached, it trains on. Either way nobody is left to ask for a save
        or a sample after it."""
        if self.result is None and not self.detached:
            self.control.stop(reason, save=True)
        self.control.close()
