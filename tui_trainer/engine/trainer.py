"""The training loop: forward, loss, backward, AdamW update, with evals, checkpoints and samples.

The trainer knows nothing of who watches it: it reports events to its listeners (the run
directory's recorder first, then the caller's callback and W&B) and takes commands from a
:class:`TrainingControl` at step boundaries. Writing checkpoints is its own action; every
other file of the run directory is written by the recorder, from the events.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import math
import threading
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import FORMAT_VERSION, h_params, model_config
from .boundary import StepBoundary
from .clock import TrainingClock
from .config import TrainConfig, stored, with_overrides
from .control import FileRequests, SampleRequest, TrainingControl
from .data import Batcher, Progress, build_corpus, bytes_per_token
from .device import autocast, configure_torch, resolve_dtype
from .distributed import init_distributed
from .errors import BrokenModel, ConfigError, GptTuiError, NonFiniteLoss
from .evaluate import estimate_loss
from .failures import describe_failure, is_out_of_memory
from .live import check_live_change
from .memory import change_problem
from .events import (ChangeRefused, EvalResult, Event, EventCallback, HparamsChanged, LogMessage,
                     RolledBack, RunFailed, RunFinished, RunStarted, SampleText, SpikeDetected, StateChanged,
                     StepMetrics, TargetReached)
from .health import HealthMeter
from .mfu import model_flops_per_token, peak_flops
from .notify import CommandNotifier
from .model import GPT
from .optimizer import Updater
from .recorder import RunRecorder
from .rng import RankRandom
from .run_checkpoints import RunCheckpoints, finite_state
from .run_plan import RunPlan
from .rundir import RunDir, compared_checkpoints, new_run_dir, refuse_existing_run
from .runlock import RunLock
from .sampling import generate, generate_from_checkpoint
from .schedule import learning_rate_at
from .spikes import LR_CHANGE_WINDOW, ROLLBACK_LIMIT, ROLLBACK_WINDOW, Rewind, Snapshot, Spike, SpikeGuard
from .tokenizer import VocabMap, get_tokenizer


class Trainer:
    def __init__(self, plan: RunPlan | TrainConfig, on_event: EventCallback | None = None,
                 control: TrainingControl | None = None, run_dir: str | Path | None = None,
                 progress: Progress | None = None):
        """Build everything a run needs. Bad input raises a GptTuiError before any file is written.

        ``plan`` says how the run starts (a config alone is a new run, in ``run_dir`` if named).
        A resume continues in its checkpoint's run directory; a fork starts a new one from the
        checkpoint (weights, optimizer, RNG and step).

        Under torchrun each process builds its own Trainer; rank 0 alone reports events and
        writes the run directory, the other ranks are silent.
        """
        if isinstance(plan, TrainConfig):
            plan = RunPlan.new(plan, run_dir)
        self.control = control or TrainingControl()
        self._emitting = threading.RLock()
        config, self.parent, self.labels = plan.config, plan.parent, plan.labels
        ckpt = plan.resumption.checkpoint if plan.resumption else None
        self.dist = init_distributed(config.device)
        self.device = self.dist.device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        configure_torch(self.device, config.num_threads, self.dist.local_size)
        self.config = config = self._load_data(config, ckpt, progress)
        self._build_model(config)
        self.step, self.best_val_loss, self.lr_scale, self.elapsed = 0, math.inf, 1.0, 0.0
        self.notes: list[str] = []  # warnings found while building, said once the run has started
        if ckpt:
            self._restore(ckpt)
        self.start_step = self.step
        self._compares = itertools.count(1)  # ids that group the samples of one comparison
        self._training = False  # inside the loop: a broken state rolls back or fails the run
        self.run_dir = plan.run_dir or new_run_dir(config)
        self._open_record(on_event, new=ckpt is None or self.parent is not None)
        # A resume's model.ckpt holds its start; a fork saves its own at the end.
        self.checkpoints = RunCheckpoints(self.rundir, self._emit, self.step if ckpt and self.parent is None else -1)
        self.boundary = StepBoundary(self.control, self.file_requests, self.dist, self.device, self._emit, self)
        self.flops_per_token = model_flops_per_token(self.raw_model)
        # FLOP/s one device can do, set when the loop first starts (see _prepare_model)
        self.peak_flops: float | None = None
        # On CUDA, reading a value forces a sync: losses are read at the log interval only. Elsewhere
        # (CPU, and MPS too) the loss is checked at every step, to fail at once on a NaN.
        self._sync_each_step = self.device.type != "cuda"

    # ---- a run, top to bottom --------------------------------------------------------------------
    def run(self) -> RunFinished | RunFailed:
        """Train to max_iters or until stopped; never raises for a failed run, it reports it.
        The run's lock is let go when it returns (serve_after_run takes it again)."""
        result: RunFinished | RunFailed | None = None
        try:
            result = self._run()
            return result
        finally:
            if self.dist.active:  # DDP's reducer holds the process group: let it go before the group
                self.model = self.raw_model
                gc.collect()
            self.dist.close(together=isinstance(result, RunFinished))
            if self.lock:
                self.lock.release()

    def _run(self) -> RunFinished | RunFailed:
        cfg = self.config
        if cfg.wandb and self.rundir is not None:
            from .wandb_log import open_wandb

            logger, problem = open_wandb(cfg, self.rundir)
            self.listeners += [logger] if logger else []
            if problem:
                self._emit(LogMessage("warning", problem))
        self._emit(RunStarted(str(self.run_dir), str(self.device), str(self.dtype).replace("torch.", ""),
                              self.raw_model.num_params(), self.vocab.size, len(self.corpus.train),
                              len(self.corpus.val), self.tokens_per_step, self.start_step, cfg.max_iters,
                              self.dist.world_size, str(self.parent or ""), self.labels))
        for note in self.notes:
            self._emit(LogMessage("warning", note))
        self._training = True
        try:
            reason = self._loop()
        except Exception as exc:  # a failed run is reported in one line, never raised
            self._training = False
            return self._failed(exc)
        self._training = False
        if self.checkpoints.saved_step != self.step and (reason is None or self.control.save_on_stop):
            self.save_checkpoint("latest")
        finished = RunFinished(self.step, self.control.outcome if reason else "finished", reason or "", self.best_val_loss,
                               str(self.run_dir))
        self._emit(finished)
        return finished

    def _failed(self, exc: Exception) -> RunFailed:
        """A failed run: out of memory frees what it can and saves the last good state (the update
        that ran out never happened); a NaN or inf forbids saving the weights in memory at all."""
        if is_out_of_memory(exc):
            self.updater.zero_grad()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            if self.checkpoints.saved_step != self.step:
                self._side_action("saving the checkpoint after running out of memory", self.save_checkpoint,
                                  "latest")
        elif isinstance(exc, NonFiniteLoss):
            self.checkpoints.refusal = f"the run failed at step {exc.step} with a NaN or inf, so its weights are broken"
        kind, message = describe_failure(exc, self.step, self.device, self.config, self.run_dir,
                                         self.checkpoints.note())
        if kind == "error" and not self.dist.is_main:
            raise exc  # torchrun reports a failed rank with its traceback; rank 0 alone writes files
        failed = RunFailed(self.step, kind, message, str(self.run_dir),
                           traceback.format_exc() if kind == "error" else "")
        self._emit(failed)
        return failed

    def serve_after_run(self) -> None:
        """The model stays in memory after the run: serve saves and samples (the app's) until the
        control is closed, holding the run's lock again meanwhile. Should another
        process have taken the run in between, saves are refused, naming it."""
        if self.rundir is not None:
            try:
                self.lock = RunLock.acquire(self.run_dir)
            except GptTuiError as exc:
                self.checkpoints.refusal = str(exc)
        try:
            self.boundary.serve_after_run()
        finally:
            if self.lock:
                self.lock.release()

    # ---- the loop --------------------------------------------------------------------------------
    def _loop(self) -> str | None:
        """Train to max_iters; the config is read afresh at each step, as live changes replace it."""
        if self.model is self.raw_model:
            self._prepare_model()
        else:
            self._emit(StateChanged("running", self.step))
        if self.step == 0:
            self._evaluate()
        clock = TrainingClock(self.elapsed)
        while self.step < self.config.max_iters:
            with clock.aside():
                try:
                    if self.boundary.cross(self.config.log_interval, clock):
                        return self.control.stop_reason
                except NonFiniteLoss as exc:  # a sample asked for at the boundary met broken weights
                    self._recover(exc)
                    continue
                if not self.meter.losses and self.config.spike_action == "rollback":  # an interval starts
                    self.rewind.take(self.step, self.raw_model, self.updater.optimizer, self.random,
                                     lr_scale=self.lr_scale, guard=self.guard.state())
            cfg = self.config
            lr = learning_rate_at(cfg, self.step) * self.lr_scale
            log_step = (self.step + 1) % cfg.log_interval == 0 or self.step + 1 == cfg.max_iters
            self._train_step(lr, measure=log_step and cfg.health)
            if self.step == self.start_step and cfg.compile:
                self._emit(StateChanged("running", self.step + 1))
            self.step += 1
            if log_step and self._report(clock, lr):
                continue  # rolled back: this interval never happened
            with clock.aside():
                try:
                    self._periodic_work()
                except NonFiniteLoss as exc:  # at an eval, a sample or a save point
                    self._recover(exc)
        return None

    def _train_step(self, lr: float, measure: bool) -> None:
        """One optimizer step over grad_accum_steps micro-batches; its loss and gradient norm stay
        on the device, in the health meter (``measure``: with the per-group figures too)."""
        self.updater.set_lr(lr)
        accum = self.config.grad_accum_steps
        total = torch.zeros((), device=self.device)
        for micro in range(accum):
            x, y = self.batcher.get("train", self.random.batches)
            # DDP all-reduces gradients on the last micro-batch only
            skip_sync = self.dist.active and micro < accum - 1
            with self.model.no_sync() if skip_sync else contextlib.nullcontext():
                with autocast(self.device, self.dtype):
                    _, loss = self.model(x, y)
                loss = loss / accum
                total += loss.detach().float()
                self.updater.backward(loss)
        # Every rank must take the same decision on a non-finite loss, so judge the mean over ranks
        # (asynchronous on CUDA, like the rest of the step).
        total = self.dist.all_reduce(total, "avg")
        norm = self.updater.grad_norm() if self.config.health else None
        # A non-finite loss or gradient skips the update on the device, with no sync.
        bad = ~torch.isfinite(total) if norm is None else ~(torch.isfinite(total) & torch.isfinite(norm))
        if self._sync_each_step and self.config.spike_action != "rollback" and not math.isfinite(total.item()):
            self.updater.zero_grad()  # free on CPU, where nothing runs ahead: fail at once
            raise NonFiniteLoss(self.step)
        if measure:
            self.meter.before_update()
        self.updater.step(bad, norm)
        if measure:
            self.meter.after_update()
        self.meter.record(total, norm)

    def _report(self, clock: TrainingClock, lr: float) -> bool:
        """At a log interval: read the interval's losses and health (the one sync per interval),
        deal with a spike, report. Returns True when the run rolled back instead."""
        losses, norms, health = self.meter.read()
        if self._spiked(losses, norms):
            return True
        self._emit_metrics(clock, lr, losses, norms, health)
        return False

    def _spiked(self, losses: list[float], norms: list[float]) -> bool:
        """A spike among the interval's steps, acted on as spike_action says: True when the run
        rolled back (and self.step went back to the interval's start)."""
        spike = self.guard.check(self.step - len(losses), losses, norms, self.config.spike_factor,
                                 gradients=self.updater.scaler is None)
        return spike is not None and self.config.spike_action != "off" and self._on_spike(spike)

    def _emit_metrics(self, clock: TrainingClock, lr: float, losses: list[float], norms: list[float],
                      health: dict) -> None:
        cfg = self.config
        loss = sum(losses) / len(losses)
        if not math.isfinite(loss):
            raise NonFiniteLoss(self.step)
        rate, eta = clock.lap(len(losses) * self.tokens_per_step, self.step - self.start_step,
                              cfg.max_iters - self.step)
        self.elapsed = clock.elapsed()
        mfu = rate / self.dist.world_size * self.flops_per_token / self.peak_flops if self.peak_flops else None
        finite = [norm for norm in norms if math.isfinite(norm)]  # float16 overflow steps left out
        grad_norm = sum(finite) / len(finite) if finite else None
        clipped = sum(norm > cfg.grad_clip for norm in finite) if cfg.grad_clip else 0
        if health:
            health = {**health, "optimizer": self.updater.describe()}
        with clock.aside():
            self._emit(StepMetrics(self.step, loss, lr, rate, self.elapsed, eta, mfu, grad_norm, clipped, health))

    def _periodic_work(self) -> None:
        """The evals, checkpoints and samples due at this step."""
        cfg = self.config
        if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters:
            self._evaluate()
        if cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0:
            self._side_action("the periodic checkpoint", self.save_checkpoint, "latest")
        if cfg.sample_interval and self.step % cfg.sample_interval == 0:
            self._side_action("the periodic sample", self.sample,
                              SampleRequest(cfg.sample_prompt, cfg.sample_tokens, 1.0, None))

    def _evaluate(self) -> None:
        losses = estimate_loss(self.model, self.batcher, self.random.eval_batches(), self.config.eval_iters,
                               self.dtype, self.dist)
        if not (math.isfinite(losses["train"]) and math.isfinite(losses["val"])):
            raise NonFiniteLoss(self.step, "eval")
        improved = losses["val"] < self.best_val_loss
        self.best_val_loss = min(self.best_val_loss, losses["val"])
        bpb = losses["val"] / math.log(2) / self.val_bytes_per_token if self.val_bytes_per_token else None
        self._emit(EvalResult(self.step, losses["train"], losses["val"], self.best_val_loss, bpb))
        self._check_target(losses["val"], bpb)
        if improved:
            self.save_checkpoint("best")

    def _check_target(self, val_loss: float, val_bpb: float | None) -> None:
        """A target met ends the run as finished, saved, at this step (a fresh run's step-0 eval included)."""
        cfg = self.config
        for metric, target, value in (("val_loss", cfg.target_val_loss, val_loss), ("val_bpb", cfg.target_val_bpb, val_bpb)):
            if target and value is not None and value <= target:
                self._emit(TargetReached(self.step, metric, target, value, self.elapsed))
                what = "val loss" if metric == "val_loss" else "val bits per byte"
                self.control.stop(f"target {what} {target:g} reached at step {self.step}", outcome="finished")
                return

    # ---- loss spikes -----------------------------------------------------------------------------
    def _on_spike(self, spike: Spike) -> bool:
        """Report a spike and act on it as spike_action says; True when the run rolled back."""
        action = self.config.spike_action
        self._emit(SpikeDetected(spike.step, spike.loss, spike.ema, spike.grad_norm, spike.reason, action))
        snapshot = self.rewind.before(spike.step) if action == "rollback" else None
        if snapshot is not None:
            self._roll_back(spike, snapshot)
            return True
        self.guard.restart()
        return False

    def _recover(self, exc: NonFiniteLoss) -> None:
        """A NaN or inf met outside a training step (an eval, a sample, a save point): under
        spike_action = "rollback" it rolls back like a spike at a step; else the run fails."""
        if self.config.spike_action != "rollback" or self.rewind.before(self.step) is None:
            raise exc
        self._on_spike(Spike(self.step, math.nan, self.guard.ema, None, str(exc)))

    def _roll_back(self, spike: Spike, snapshot: Snapshot) -> None:
        """Back to an interval's start: weights, optimizer and dropout RNG from the snapshot, the
        batches since skipped, and a lower learning rate (the one before a live change that just
        preceded the spike, else half). Too many rollbacks close together stop the run."""
        lr_before = learning_rate_at(self.config, spike.step - 1) * self.lr_scale
        snapshot.restore(self.raw_model, self.updater.optimizer, self.random)
        self.updater.configure(self.config)  # the snapshot's param groups may predate a live weight_decay
        self.step, self.lr_scale = snapshot.step, snapshot.extra["lr_scale"]
        self.guard.restore(snapshot.extra["guard"])
        self.rewind.clear()
        change, self._lr_change = self._lr_change, None
        if change and spike.step - change[0] <= LR_CHANGE_WINDOW and self.change(
                {"learning_rate": change[1]}, "rollback", ""):
            how = f"learning_rate back to {change[1]:g}, its value before the change at step {change[0]}"
        else:
            self.lr_scale *= 0.5
            how = "learning rate halved"
        lr_after = learning_rate_at(self.config, self.step) * self.lr_scale
        self._emit(RolledBack(spike.step, self.step, lr_before, lr_after, how))
        self.rollbacks = [s for s in self.rollbacks if s > spike.step - ROLLBACK_WINDOW] + [spike.step]
        if len(self.rollbacks) >= ROLLBACK_LIMIT:
            steps = ", ".join(map(str, self.rollbacks))
            self.control.stop(f"{len(self.rollbacks)} loss spikes rolled back within {ROLLBACK_WINDOW} steps (at "
                              f"steps {steps}): lower learning_rate or set grad_clip, check the data, then resume")

    # ---- what the step boundary asks for (boundary.BoundaryWork) ---------------------------------
    def save_now(self) -> None:
        self._side_action("saving the checkpoint", self.save_checkpoint, "latest")

    def sample_now(self, request: SampleRequest) -> None:
        self._side_action("the sample", self.sample, request)

    def change(self, changes: dict, source: str, request: str) -> bool:
        """Apply live hyperparameter changes now, or say why not (False); the run goes on either way."""
        try:
            diff = check_live_change(self.config, changes, self.step)
            new = with_overrides(self.config, {key: new for key, (_, new) in diff.items()})
        except ConfigError as exc:
            self._emit(ChangeRefused(self.step, request, str(exc), source))
            return False
        memory = change_problem(self.config, new, self.vocab.size, self.device)
        if memory:
            self._emit(ChangeRefused(self.step, request, memory, source))
            return False
        if "learning_rate" in diff and source != "rollback":
            self._lr_change = (self.step, diff["learning_rate"][0])
        if not diff and request:  # in force already (another client asked first): the asker hears so
            self._emit(HparamsChanged(self.step, {}, source, request))
        if diff:
            self.config = new
            self.raw_model.set_dropout(self.config.dropout)
            self.updater.configure(self.config)
            self.batcher.batch_size = self.config.batch_size
            self._emit(HparamsChanged(self.step, diff, source, request))
        return True

    def _side_action(self, what: str, action, *args) -> None:
        """A save or a sample is never worth the run: whatever it raises is reported as that
        action's error, and training goes on. Except, while training: out of memory stops the
        run (as in a step), and broken weights (a sample's output, a save's weights) under
        spike_action = "rollback" roll it back."""
        try:
            action(*args)
        except NonFiniteLoss:
            raise  # raised only while training under rollback (save_checkpoint): the loop rolls back
        except BrokenModel as exc:
            if self._training and self.config.spike_action == "rollback":
                raise NonFiniteLoss(self.step, "sample") from exc
            self._emit(LogMessage("error", f"{what} failed at step {self.step}: {exc}"))
        except Exception as exc:  # noqa: BLE001 - any failure of a side action, by design
            if self._training and is_out_of_memory(exc):
                raise
            self._emit(LogMessage("error", f"{what} failed at step {self.step} ({type(exc).__name__}: {exc}); "
                                           "training goes on"))

    # ---- checkpoints and samples -----------------------------------------------------------------
    def save_checkpoint(self, kind: str = "latest") -> Path | None:
        """Write model.ckpt ("latest") or best.ckpt (see run_checkpoints.py). Broken weights at a
        save point while training under spike_action = "rollback" roll the run back instead."""
        finite = self.rundir is None or finite_state(self.raw_model, self.updater.optimizer)
        if not finite and self._training and self.config.spike_action == "rollback":
            raise NonFiniteLoss(self.step, "weights")
        return self.checkpoints.save(kind, self.step, self.checkpoint_dict, finite, self.config.keep_checkpoints)

    def checkpoint_dict(self) -> dict[str, Any]:
        return {
            "model_state_dict": self.raw_model.state_dict(),  # never the compiled wrapper's _orig_mod. keys
            "h_params": h_params(self.config, self.vocab.size),
            "optimizer_state_dict": self.updater.state_dict(),
            "step": self.step,
            "config": stored(self.config.to_dict()),
            "tokenizer": {"name": self.tokenizer.name, **self.vocab.to_state()},
            "best_val_loss": self.best_val_loss,
            "format_version": FORMAT_VERSION,
            "trainer_state": {"rng": self.random.state(), "lr_scale": self.lr_scale, "elapsed": self.elapsed},
        }

    def sample(self, request: SampleRequest) -> str:
        """Generate text from the current weights (during a run, at a step boundary; or after it);
        a compare request then samples best.ckpt and the kept checkpoints with the same seed."""
        seed = request.seed
        if request.compare and seed is None:
            seed = self.config.TORCH_SEED + self.step  # one seed for every sample of the comparison
        group = f"{self.step}-{next(self._compares)}" if request.compare else ""
        args = (request.prompt, request.max_new_tokens, request.temperature, request.top_k, request.top_p, seed)
        with autocast(self.device, self.dtype):
            generation = generate(self.raw_model, self.tokenizer, self.vocab, *args)
        self._emit(SampleText(self.step, request.prompt, generation.text, generation.tokens, "", seed, group))
        if request.compare and self.rundir is not None:
            for path in compared_checkpoints(self.rundir.path):
                with autocast(self.device, self.dtype):
                    other, step = generate_from_checkpoint(path, *args, device=self.device)
                self._emit(SampleText(step, request.prompt, other.text, other.tokens, path.name, seed, group))
        return generation.text

    # ---- building the run ------------------------------------------------------------------------
    def _load_data(self, config: TrainConfig, ckpt: dict[str, Any] | None, progress: Progress | None) -> TrainConfig:
        """The tokenizer and corpus (a resumed run keeps its vocabulary); returns the config
        with the corpus path resolved."""
        self.tokenizer = get_tokenizer(config.tokenizer)
        vocab = VocabMap.from_state(ckpt["tokenizer"]) if ckpt else None
        with self.dist.main_first():  # rank 0 tokenizes into the cache, the others then read it
            self.corpus = build_corpus(config.data, self.tokenizer, config.vocab, vocab,
                                       progress if self.dist.is_main else None)
        self.corpus.check_fits(config.context_length)
        self.vocab = self.corpus.vocab
        self.val_bytes_per_token = bytes_per_token(self.corpus.val, self.vocab, self.tokenizer)
        return replace(config, data=str(self.corpus.path))

    def _build_model(self, config: TrainConfig) -> None:
        """Model, optimizer, random streams and batches."""
        torch.manual_seed(config.TORCH_SEED)  # the same initial weights on every rank
        self.raw_model = GPT(model_config(config, self.vocab.size)).to(self.device)
        self.model: torch.nn.Module = self.raw_model  # compiled and/or DDP-wrapped when the loop starts
        self.random = RankRandom(config.TORCH_SEED, self.dist.rank, self.device)
        self.updater = Updater(self.raw_model, config, self.device, self.dtype)
        self.batcher = Batcher(self.corpus, config.batch_size, config.context_length, self.device)
        self.meter = HealthMeter(self.raw_model)
        self.guard, self.rewind = SpikeGuard(), Rewind()
        self.rollbacks: list[int] = []  # steps of recent spikes rolled back
        self._lr_change: tuple[int, float] | None = None  # the last live learning_rate change: (step, old value)

    def _open_record(self, on_event: EventCallback | None, new: bool) -> None:
        """Rank 0 alone writes the run directory, takes request files and reports events (the
        recorder first, so a listener that reads the files finds its event there); the other
        ranks are silent."""
        self.rundir: RunDir | None = None
        self.file_requests: FileRequests | None = None
        self.listeners: list[EventCallback] = []
        self.lock: RunLock | None = None
        if self.dist.is_main:
            self.lock = RunLock.acquire(self.run_dir)  # before any byte of the folder changes
            try:
                if new:
                    refuse_existing_run(self.run_dir)
                self.rundir = RunDir(self.run_dir)
                self.file_requests = FileRequests(self.run_dir)
                self.listeners = [RunRecorder(self.rundir, self.config), *([on_event] if on_event else [])]
                if self.config.notify_command:
                    self.listeners.append(CommandNotifier(self.config.notify_command, self.config.notify,
                                                          self.run_dir, self.config.run_name, self._emit))
            except BaseException:
                self.lock.release()
                raise

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.raw_model.load_state_dict(ckpt["model_state_dict"])
        if "optimizer_state_dict" in ckpt and not self.updater.load_state_dict(ckpt["optimizer_state_dict"]):
            self.notes.append(f"the checkpoint's optimizer state is not {self.config.optimizer}'s: its state starts "
                              "afresh (the weights are the checkpoint's)")
        self.step = int(ckpt["step"])
        self.best_val_loss = float(ckpt.get("best_val_loss", math.inf))
        state = ckpt.get("trainer_state", {})
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.random.restore(state.get("rng", {}), self.step)

    def _prepare_model(self) -> None:
        """Compile (in this, the training thread) and wrap for DDP, once per Trainer; also find
        the device's peak for MFU: the table for a known GPU, a matmul timed here on CPU (so on
        the training thread's threads), None when unknown."""
        self.peak_flops = peak_flops(self.device, self.dtype)
        model = self.raw_model
        if self.config.compile:
            self._emit(StateChanged("compiling", self.step))
            model = torch.compile(model, mode=self.config.compile_mode)
        else:
            self._emit(StateChanged("running", self.step))
        if self.dist.active:
            model = self.dist.wrap(model, self.device)
        self.model = model

    @property
    def tokens_per_step(self) -> int:
        """Tokens of one optimizer step, all ranks together (batch_size is per rank)."""
        return self.config.batch_size * self.config.context_length * self.config.grad_accum_steps * self.dist.world_size

    def _emit(self, event: Event) -> None:
        """To every listener in turn; thread-safe (a notify_command's thread reports through it)."""
        with self._emitting:
            for listener in self.listeners:
                listener(event)
