"""The micro-batch to train with: the largest that fits on a GPU, the fastest on a CPU
(`gpt-tui fit-batch`, and its action in the app).

On a GPU the batch doubles until a step runs out of memory or passes MARGIN of the device's
memory at its peak, then a binary search finds the largest that stays within it. A step that
runs out leaves nothing behind: its gradients are dropped and the allocator's cache emptied.
On a CPU, where memory runs out only by swapping, each doubling is timed and the one with the
most tokens per second wins, among those whose activations take at most CPU_SHARE of the free
memory. Steps are eager (no torch.compile) at the config's context length and dtype.

With a target number of tokens per optimizer step, grad_accum_steps is derived from it and
the batch found. Like the learning-rate finder it writes nothing and leaves the process's
random streams as they were.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .config import TrainConfig
from .data import Progress
from .errors import ConfigError
from .failures import is_out_of_memory
from .memory import free_bytes
from .model import estimate_activation_memory
from .probe import Probe, probing

MARGIN = 0.9  # of a GPU's memory the step's peak may take
CPU_SHARE = 0.5  # of the free memory a CPU batch's activations may take
MAX_BATCH = 4096
TIMED_STEPS = 3  # timed after one warm-up step, on a CPU


@dataclass(frozen=True)
class BatchFit:
    batch_size: int
    grad_accum_steps: int
    device: str
    rule: str
    tried: list[dict] = field(default_factory=list)  # {"batch_size", "fits", "tokens_per_sec", "peak_mib"}

    def to_json(self) -> dict:
        return {"batch_size": self.batch_size, "grad_accum_steps": self.grad_accum_steps, "device": self.device,
                "rule": self.rule, "tried": self.tried}


def describe_trial(trial: dict) -> str:
    """One size tried, as the CLI and the app's log say it."""
    figure = (f", {trial['tokens_per_sec']:,.0f} tok/s" if trial["tokens_per_sec"] is not None else
              f", peak {trial['peak_mib']:,.0f} MiB" if trial["peak_mib"] is not None else
              "" if trial["fits"] else " (out of memory)")
    return f"batch_size {trial['batch_size']}: {'fits' if trial['fits'] else 'too large'}{figure}"


def largest(fits: Callable[[int], bool], limit: int) -> int | None:
    """The largest size up to ``limit`` that ``fits`` (which holds up to some size and no further):
    doubling from 1, then a binary search between the last that fit and the first that did not."""
    if not fits(1):
        return None
    good, bad = 1, None
    while bad is None and good < limit:
        size = min(good * 2, limit)
        if fits(size):
            good = size
        else:
            bad = size
    while bad is not None and bad - good > 1:
        middle = (good + bad) // 2
        if fits(middle):
            good = middle
        else:
            bad = middle
    return good


def split_step(tokens_per_step: int | None, found: int, context_length: int, default: int) -> tuple[int, int]:
    """(batch_size, grad_accum_steps) for a target of ``tokens_per_step`` (one rank's), with the
    micro-batch at most ``found`` (one larger than the step would change it). The step keeps
    the target's sequences exactly with the largest micro-batch that divides them, unless that
    is under half the one found (977 sequences, a prime, would take micro-batches of 1): then
    the micro-batch found, and the step rounds up to a multiple of it."""
    if not tokens_per_step:
        return found, default
    sequences = math.ceil(tokens_per_step / context_length)
    batch = next(size for size in range(min(found, sequences), 0, -1) if sequences % size == 0)
    if 2 * batch < min(found, sequences):
        return found, math.ceil(sequences / found)
    return batch, sequences // batch


def fit_batch(config: TrainConfig, tokens_per_step: int | None = None, progress: Progress | None = None,
              cancelled: Callable[[], bool] = lambda: False) -> BatchFit | None:
    """The batch to train ``config`` with; None when ``cancelled()`` stopped the search."""
    tried: list[dict] = []
    with probing(config, None, progress) as probe:
        device, batches = probe.device, torch.Generator().manual_seed(config.TORCH_SEED)
        search = _largest_on_gpu if device.type == "cuda" else _fastest_on_cpu
        size, rule = search(probe, batches, tried, cancelled)
    if cancelled():
        return None
    if size is None:
        raise ConfigError([f"not even batch_size 1 fits on {device} at context_length {config.context_length}: "
                           "lower context_length, d_model or num_blocks"])
    batch, accum = split_step(tokens_per_step, size, config.context_length, config.grad_accum_steps)
    if batch < size or (tokens_per_step and batch * accum * config.context_length != tokens_per_step):
        rule += f"; {accum} micro-batches of {batch} make the {batch * accum * config.context_length:,} tokens of a step"
    return BatchFit(batch, accum, str(device), rule, tried)


def _largest_on_gpu(probe: Probe, batches: torch.Generator, tried: list[dict],
                    cancelled: Callable[[], bool] = lambda: False) -> tuple[int | None, str]:
    device = probe.device
    total = torch.cuda.get_device_properties(device).total_memory

    def fits(size: int) -> bool:
        if cancelled():
            return False  # the search winds down at once
        torch.cuda.reset_peak_memory_stats(device)
        peak = None
        try:
            probe.step(*probe.batcher(size).get("train", batches))
            torch.cuda.synchronize(device)
            peak = torch.cuda.max_memory_allocated(device)
            ok = peak <= MARGIN * total
        except Exception as exc:  # noqa: BLE001 - out of memory is the answer; anything else is raised
            if not is_out_of_memory(exc):
                raise
            ok = False
        finally:
            probe.updater.zero_grad()
            torch.cuda.empty_cache()
        tried.append({"batch_size": size, "fits": ok, "tokens_per_sec": None,
                      "peak_mib": None if peak is None else round(peak / 2**20, 1)})
        return ok
    return largest(fits, MAX_BATCH), f"the largest whose step peaks within {MARGIN:.0%} of {device}'s memory"


def _fastest_on_cpu(probe: Probe, batches: torch.Generator, tried: list[dict],
                    cancelled: Callable[[], bool] = lambda: False) -> tuple[int | None, str]:
    """Also Apple's MPS, whose free memory cannot be read: there only the speed decides."""
    config = probe.config
    free = free_bytes(probe.device)
    budget = math.inf if free is None else CPU_SHARE * free
    best, best_rate, slower = None, 0.0, 0
    size = 1
    while size <= MAX_BATCH and slower < 2 and not cancelled():
        need = estimate_activation_memory(probe.corpus.vocab.size, config.d_model, config.num_blocks,
                                          size * config.context_length)
        if need > budget:
            break
        batcher = probe.batcher(size)
        probe.step(*batcher.get("train", batches))  # warm-up: the first step of a size allocates
        started = time.perf_counter()
        for _ in range(TIMED_STEPS):
            probe.step(*batcher.get("train", batches))
        rate = TIMED_STEPS * size * config.context_length / (time.perf_counter() - started)
        tried.append({"batch_size": size, "fits": True, "tokens_per_sec": round(rate, 1), "peak_mib": None})
        if rate > best_rate:
            best, best_rate, slower = size, rate, 0
        else:
            slower += 1
        size *= 2
    return best, (f"the most tokens/s on {probe.device} among powers of two whose activations take at most "
                  f"{CPU_SHARE:.0%} of the free memory")
