"""The training loop: forward, loss, backward, AdamW update, with evals, checkpoints and samples.

The trainer knows nothing of who watches it: it reports through one event callback and
takes commands from a :class:`TrainingControl` at step boundaries. It also keeps the run
directory (config.toml, metrics.jsonl, run.json, checkpoints), so every front end gets
the same files.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from .checkpoint import FORMAT_VERSION, Resumption, h_params, model_config, read_resumption, write_atomic
from .config import TrainConfig
from .control import FileRequests, SampleRequest, TrainingControl
from .data import Batcher, Progress, build_corpus
from .device import autocast, default_threads, resolve_dtype
from .distributed import RANK_SEED_STRIDE, init_distributed
from .errors import GptTuiError
from .events import (CheckpointSaved, EvalResult, Event, EventCallback, LogMessage, RunFailed, RunFinished, RunStarted,
                     SampleText, StateChanged, StepMetrics)
from .mfu import flops_per_token, peak_flops
from .model import GPT
from .rundir import RunDir, SilentRunDir, new_run_dir, refuse_existing_run
from .sampling import generate_text
from .tokenizer import VocabMap, get_tokenizer

EVAL_SEED_OFFSET = 1  # evals draw from their own generator, so they never shift the training batches


class NonFiniteLoss(Exception):
    pass


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """Constant (the chapter), or linear warmup then cosine decay to min_lr at max_iters."""
    if config.lr_schedule == "constant":
        return config.learning_rate
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    span = max(1, config.max_iters - config.warmup_iters)
    progress = min(1.0, (step - config.warmup_iters) / span)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.learning_rate - config.min_lr)


class Trainer:
    def __init__(self, config: TrainConfig | None, on_event: EventCallback | None = None,
                 control: TrainingControl | None = None, run_dir: str | Path | None = None,
                 resume: str | Path | Resumption | None = None, resume_overrides: dict[str, Any] | None = None,
                 progress: Progress | None = None):
        """Build everything a run needs. Bad input raises a GptTuiError before any file is written.

        ``resume`` (a checkpoint or run directory) takes the config from the checkpoint, with
        ``resume_overrides`` applied, and continues in the checkpoint's run directory. A
        :class:`Resumption` the caller has read already is used as it is.

        Under torchrun each process builds its own Trainer; rank 0 alone reports events and
        writes the run directory, the other ranks are silent.
        """
        self.control = control or TrainingControl()
        ckpt = None
        if resume is not None:
            if not isinstance(resume, Resumption):
                resume = read_resumption(resume, resume_overrides)
            config, ckpt = resume.config, resume.checkpoint
            run_dir = run_dir or resume.path.parent
        self.dist = init_distributed(config.device)
        self.on_event = (on_event if self.dist.is_main else None) or (lambda event: None)
        self.device = self.dist.device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        if self.device.type == "cpu":  # processes on one machine share its cores
            torch.set_num_threads(config.num_threads or max(1, default_threads() // self.dist.local_size))
        else:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.tokenizer = get_tokenizer(config.tokenizer)
        vocab = VocabMap.from_state(ckpt["tokenizer"]) if ckpt else None
        if not self.dist.is_main:
            self.dist.barrier()  # rank 0 tokenizes into the cache first; the others then read it
        self.corpus = build_corpus(config.data, self.tokenizer, config.vocab, vocab,
                                   progress if self.dist.is_main else None)
        if self.dist.is_main:
            self.dist.barrier()
        self.corpus.check_fits(config.context_length)
        self.config = config = replace(config, data=str(self.corpus.path))
        self.vocab = self.corpus.vocab

        torch.manual_seed(config.TORCH_SEED)  # the same initial weights on every rank
        self.raw_model = GPT(model_config(config, self.vocab.size)).to(self.device)
        self.model: torch.nn.Module = self.raw_model  # compiled and/or DDP-wrapped when the loop starts
        self.rank_seed = config.TORCH_SEED + RANK_SEED_STRIDE * self.dist.rank  # batches and dropout per rank
        torch.manual_seed(self.rank_seed)
        # Fused AdamW updates every tensor in one kernel, and can skip a step on device (found_inf).
        self.fused = self.device.type in ("cuda", "cpu")
        self.optimizer = torch.optim.AdamW(self.raw_model.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay, fused=self.fused)
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None
        self.batch_generator = torch.Generator().manual_seed(self.rank_seed)
        self.batcher = Batcher(self.corpus, config.batch_size, config.context_length, self.device)
        self.step = 0
        self.best_val_loss = math.inf
        self.lr_scale = 1.0
        self.elapsed = 0.0
        if ckpt:
            self._restore(ckpt)
        self.start_step = self.step
        path = Path(run_dir) if run_dir else new_run_dir(config)
        if ckpt is None and self.dist.is_main:
            refuse_existing_run(path)
        self.rundir = RunDir(path) if self.dist.is_main else SilentRunDir(path)
        self.rundir.write_config(config)
        self.file_requests = FileRequests(self.rundir.path) if self.dist.is_main else None
        self._saved_step = self.step if ckpt else -1
        self._wandb = None  # a W&B logger while a run with wandb = true goes on
        mc = self.raw_model.cfg
        self.flops_per_token = flops_per_token(self.raw_model.num_params(), mc.num_blocks, mc.num_heads,
                                               mc.d_model // mc.num_heads, mc.context_length)
        # FLOP/s one device can do, set when the loop first starts (see _prepare_model)
        self.peak_flops: float | None = None
        # On an accelerator, reading a value forces a sync: only read losses at the log interval.
        self._sync_each_step = self.device.type != "cuda"

    # ---- state ---------------------------------------------------------------------------
    @property
    def tokens_per_step(self) -> int:
        """Tokens of one optimizer step, all ranks together (batch_size is per rank)."""
        return self.config.batch_size * self.config.context_length * self.config.grad_accum_steps * self.dist.world_size

    def _rng_state(self) -> dict[str, torch.Tensor]:
        state = {"torch": torch.get_rng_state(), "batches": self.batch_generator.get_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.raw_model.load_state_dict(ckpt["model_state_dict"])
        if "optimizer_state_dict" in ckpt:
            self.optimizer.load_state_dict(ckpt["optimizer_state_dict"])
        self.step = int(ckpt["step"])
        self.best_val_loss = float(ckpt.get("best_val_loss", math.inf))
        state = ckpt.get("trainer_state", {})
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.elapsed = float(state.get("elapsed", 0.0))
        if self.dist.rank:  # rank 0's streams are saved; the others restart theirs from the step
            torch.manual_seed(self.rank_seed + self.step)
            self.batch_generator.manual_seed(self.rank_seed + self.step)
            return
        rng = state.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "batches" in rng:
            self.batch_generator.set_state(rng["batches"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def checkpoint_dict(self) -> dict[str, Any]:
        return {
            "model_state_dict": self.raw_model.state_dict(),  # never the compiled wrapper's _orig_mod. keys
            "h_params": h_params(self.config, self.vocab.size),
            "optimizer_state_dict": self.optimizer.state_dict(),
            "step": self.step,
            "config": self.config.to_dict(),
            "tokenizer": {"name": self.tokenizer.name, **self.vocab.to_state()},
            "best_val_loss": self.best_val_loss,
            "format_version": FORMAT_VERSION,
            "trainer_state": {"rng": self._rng_state(), "lr_scale": self.lr_scale, "elapsed": self.elapsed},
        }

    def save_checkpoint(self, kind: str = "latest") -> Path | None:
        """Write model.ckpt ("latest") or best.ckpt atomically; a failed write keeps the old file.
        Only rank 0 writes: the weights are the same on every rank."""
        if not self.dist.is_main:
            self._saved_step = self.step
            return None
        path = self.rundir.latest if kind == "latest" else self.rundir.best
        try:
            write_atomic(path, self.checkpoint_dict())
        except OSError as exc:
            self._emit(LogMessage("error", f"could not save {path} ({exc.strerror or exc}); the previous "
                                           "checkpoint is intact and training goes on"))
            return None
        if kind == "latest":
            self._saved_step = self.step
        self.rundir.log("checkpoint", self.step, path=str(path), kind=kind)
        self._emit(CheckpointSaved(self.step, str(path), kind))
        return path

    def sample(self, request: SampleRequest, seed: int | None = None) -> str:
        """Generate text from the current weights (during a run, at a step boundary; or after it)."""
        with autocast(self.device, self.dtype):
            text = generate_text(self.raw_model, self.tokenizer, self.vocab, request.prompt, request.max_new_tokens,
                                 request.temperature, request.top_k, request.top_p, seed)
        self.rundir.append_sample(self.step, text)
        self.rundir.log("sample", self.step, prompt=request.prompt, text=text)
        self._emit(SampleText(self.step, request.prompt, text))
        return text

    def _emit(self, event: Event) -> None:
        self.on_event(event)
        if self._wandb:
            self._wandb(event)

    # ---- the loop ------------------------------------------------------------------------
    @torch.no_grad()
    def estimate_loss(self) -> dict[str, float]:
        """Mean loss over eval_iters batches of each split, in eval mode (no dropout); under
        torchrun each rank draws its own batches and the means are averaged over ranks."""
        self.model.eval()
        generator = torch.Generator().manual_seed(self.rank_seed + EVAL_SEED_OFFSET)
        result = {}
        for split in ("train", "val"):
            losses = torch.zeros(self.config.eval_iters, device=self.device)
            for i in range(self.config.eval_iters):
                x, y = self.batcher.get(split, generator)
                with autocast(self.device, self.dtype):
                    _, loss = self.model(x, y)
                losses[i] = loss.float()
            result[split] = self.dist.all_reduce(losses.mean(), "avg").item()
        self.model.train()
        return result

    def _evaluate(self) -> None:
        losses = self.estimate_loss()
        if not math.isfinite(losses["train"]):
            raise NonFiniteLoss(self.step)
        improved = losses["val"] < self.best_val_loss
        self.best_val_loss = min(self.best_val_loss, losses["val"])
        self.rundir.log("eval", self.step, train_loss=losses["train"], val_loss=losses["val"],
                        best_val_loss=self.best_val_loss)
        self.rundir.update_status(last_step=self.step, best_val_loss=self.best_val_loss)
        self._emit(EvalResult(self.step, losses["train"], losses["val"], self.best_val_loss))
        if improved:
            self.save_checkpoint("best")

    def _train_step(self, lr: float) -> torch.Tensor:
        """One optimizer step over grad_accum_steps micro-batches; returns the loss, on device."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        accum = self.config.grad_accum_steps
        total = torch.zeros((), device=self.device)
        for micro in range(accum):
            x, y = self.batcher.get("train", self.batch_generator)
            # DDP all-reduces gradients on the last micro-batch only
            skip_sync = self.dist.active and micro < accum - 1
            with self.model.no_sync() if skip_sync else contextlib.nullcontext():
                with autocast(self.device, self.dtype):
                    _, loss = self.model(x, y)
                loss = loss / accum
                total += loss.detach().float()
                (self.scaler.scale(loss) if self.scaler else loss).backward()
        # Every rank must take the same decision on a non-finite loss, so judge the mean over ranks
        # (asynchronous on CUDA, like the rest of the step).
        total = self.dist.all_reduce(total, "avg")
        bad = ~torch.isfinite(total)
        if self._sync_each_step and bad.item():  # free on CPU, where nothing runs ahead
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLoss(self.step)
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), self.config.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)  # skips steps with inf/NaN gradients itself
            self.scaler.update()
        else:
            if not self._sync_each_step:
                self.optimizer.found_inf = bad.float()  # fused kernel skips this update on device, no sync
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def _side_action(self, what: str, action, *args) -> None:
        """A save or a sample is never worth the run: whatever it raises is reported as that
        action's error, and training goes on."""
        try:
            action(*args)
        except Exception as exc:  # noqa: BLE001 - any failure of a side action, by design
            self._emit(LogMessage("error", f"{what} failed at step {self.step} ({type(exc).__name__}: {exc}); "
                                           "training goes on"))

    def _apply_requests(self) -> None:
        """Save and sample requests: served at a step boundary, paused or not (by rank 0 alone,
        which needs no other rank for either)."""
        if self.file_requests:
            self.file_requests.poll(self.control)
        if self.control.take_save():
            self._side_action("saving the checkpoint", self.save_checkpoint, "latest")
        request = self.control.take_sample()
        if request:
            self._side_action("the sample", self.sample, request)

    def _agree(self) -> tuple[bool, bool]:
        """(stop, pause) as all ranks must see them: a stop on any rank (signals reach each one),
        a pause on rank 0 (where requests arrive). One small all-reduce; free in one process."""
        stop, pause = self.control.stop_reason is not None, self.control.paused
        if not self.dist.active:
            return stop, pause
        flags = torch.tensor([stop, pause and self.dist.is_main], dtype=torch.int32, device=self.device)
        stop, pause = map(bool, self.dist.all_reduce(flags, "max").tolist())
        if stop and self.control.stop_reason is None:
            self.control.stop("stopped on another rank")
        return stop, pause

    def _between_steps(self) -> bool:
        """Apply the commands that arrived during the last step; wait here while paused.
        Returns True when the run must stop. Under torchrun, ranks agree on stop and pause at
        log intervals, where a sync happens anyway."""
        new_lr = self.control.take_lr()
        if new_lr is not None:
            self.lr_scale = new_lr / learning_rate_at(self.config, self.step)
            self._emit(LogMessage("info", f"learning rate set to {new_lr:g} from step {self.step}"))
        self._apply_requests()
        if self.dist.active and self.step % self.config.log_interval:
            return False
        stop, pause = self._agree()
        if pause and not stop:
            self._emit(StateChanged("paused", self.step))
            self.rundir.update_status(status="paused")
            while pause and not stop:
                self.control.wait_while_paused()
                self._apply_requests()
                stop, pause = self._agree()
            self.rundir.update_status(status="running")
            self._emit(StateChanged("running", self.step))
        return stop

    def _prepare_model(self) -> None:
        """Compile (in this, the training thread) and wrap for DDP, once per Trainer; also find
        the device's peak for MFU: the table for a known GPU, a matmul timed here on CPU (so on
        the training thread's threads), None when unknown."""
        self.peak_flops = peak_flops(self.device, self.dtype)
        model = self.raw_model
        if self.config.compile:
            self._emit(StateChanged("compiling", self.step))
            model = torch.compile(model)
        else:
            self._emit(StateChanged("running", self.step))
        if self.dist.active:
            model = self.dist.wrap(model, self.device)
        self.model = model

    def _loop(self) -> str | None:
        cfg = self.config
        if self.model is self.raw_model:
            self._prepare_model()
        else:
            self._emit(StateChanged("running", self.step))
        if self.step == 0:
            self._evaluate()
        loss_sum = torch.zeros((), device=self.device)
        since_log = 0
        # `mark` starts the current log interval; time spent on anything but training steps
        # (pauses, evals, saves, samples) moves it forward so tokens/s measures training alone.
        run_start = mark = time.perf_counter()
        elapsed_before, paused = self.elapsed, 0.0
        while self.step < cfg.max_iters:
            side = time.perf_counter()
            was_paused = self.control.paused
            if self._between_steps():
                return self.control.stop_reason
            spent = time.perf_counter() - side
            mark += spent
            paused += spent if was_paused else 0.0
            lr = learning_rate_at(cfg, self.step) * self.lr_scale
            loss_sum += self._train_step(lr)
            if self.step == self.start_step and cfg.compile:
                self._emit(StateChanged("running", self.step + 1))
            self.step += 1
            since_log += 1
            if self.step % cfg.log_interval == 0 or self.step == cfg.max_iters:
                mean_loss = (loss_sum / since_log).item()  # the one sync per log interval
                if not math.isfinite(mean_loss):
                    raise NonFiniteLoss(self.step)
                now = time.perf_counter()
                self.elapsed = elapsed_before + now - run_start - paused
                rate = since_log * self.tokens_per_step / max(now - mark, 1e-9)
                eta = (now - run_start - paused) / (self.step - self.start_step) * (cfg.max_iters - self.step)
                mfu = rate / self.dist.world_size * self.flops_per_token / self.peak_flops if self.peak_flops else None
                self.rundir.log("step", self.step, loss=mean_loss, lr=lr, tokens_per_sec=rate, elapsed=self.elapsed,
                                eta=eta, mfu=mfu)
                self._emit(StepMetrics(self.step, mean_loss, lr, rate, self.elapsed, eta, mfu))
                loss_sum.zero_()
                since_log, mark = 0, time.perf_counter()
            side = time.perf_counter()
            if self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters:
                self._evaluate()
            if cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0:
                self._side_action("the periodic checkpoint", self.save_checkpoint, "latest")
            if cfg.sample_interval and self.step % cfg.sample_interval == 0:
                self._side_action("the periodic sample", self.sample,
                                  SampleRequest(cfg.sample_prompt, cfg.sample_tokens, 1.0, None))
            mark += time.perf_counter() - side
        return None

    def run(self) -> RunFinished | RunFailed:
        """Train to max_iters or until stopped; never raises for a failed run, it reports it."""
        result: RunFinished | RunFailed | None = None
        try:
            result = self._run()
            return result
        finally:
            self.dist.close(together=isinstance(result, RunFinished))

    def _run(self) -> RunFinished | RunFailed:
        cfg = self.config
        now = time.time()
        # A resumed run keeps the date it first started (the Runs screen sorts by it).
        self.rundir.update_status(status="running", pid=os.getpid(), device=str(self.device),
                                  num_params=self.raw_model.num_params(), started=self.rundir.status.get("started", now),
                                  resumed=now if self.start_step else None, ended=None, run_name=cfg.run_name,
                                  max_iters=cfg.max_iters, processes=self.dist.world_size)
        if cfg.wandb and self.dist.is_main:
            from .wandb_log import open_wandb

            self._wandb, problem = open_wandb(cfg, self.rundir)
            if problem:
                self._emit(LogMessage("warning", problem))
        started = RunStarted(str(self.rundir.path), str(self.device), str(self.dtype).replace("torch.", ""),
                             self.raw_model.num_params(), self.vocab.size, len(self.corpus.train),
                             len(self.corpus.val), self.tokens_per_step, self.start_step, cfg.max_iters)
        # Everything RunStarted says, so a watcher rebuilds the same event from the file.
        self.rundir.log("start", self.step, processes=self.dist.world_size,
                        **{k: v for k, v in asdict(started).items() if k not in ("run_dir", "start_step")})
        self._emit(started)
        try:
            reason = self._loop()
        except NonFiniteLoss as exc:
            return self._fail("nonfinite", f"loss became NaN or inf at step {exc.args[0]}; the update was not "
                              "applied and the last checkpoint is intact: lower learning_rate or set grad_clip")
        except torch.OutOfMemoryError:
            self.optimizer.zero_grad(set_to_none=True)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self._fail("oom", f"out of memory on {self.device} at step {self.step}: lower batch_size "
                              f"(now {cfg.batch_size}) or context_length (now {cfg.context_length})")
        except GptTuiError as exc:
            return self._fail("input", str(exc))
        except Exception as exc:  # a bug or a library error: keep the details, report one line
            if not self.dist.is_main:
                raise  # torchrun reports a failed rank with its traceback; rank 0 alone writes files
            (self.rundir.path / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            return self._fail("error", f"{type(exc).__name__}: {exc} (details in {self.rundir.path / 'error.log'})")
        if self._saved_step != self.step and (reason is None or self.control.save_on_stop):
            self.save_checkpoint("latest")
        status = "stopped" if reason else "finished"
        self.rundir.log("end", self.step, status=status, reason=reason or "")
        self.rundir.update_status(status=status, ended=time.time(), last_step=self.step, reason=reason)
        self.rundir.sync()
        finished = RunFinished(self.step, status, reason or "", self.best_val_loss, str(self.rundir.path))
        self._emit(finished)
        return finished

    def _fail(self, kind: str, message: str) -> RunFailed:
        self.rundir.log("failed", self.step, kind=kind, message=message)
        self.rundir.update_status(status="failed", ended=time.time(), last_step=self.step, error=message)
        self.rundir.sync()
        failed = RunFailed(self.step, kind, message, str(self.rundir.path))
        self._emit(failed)
        return failed
