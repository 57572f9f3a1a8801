"""Whether a live change still fits in memory, asked before it is applied: a batch_size typed
a few zeros too long must be refused with the figure, not end the run in the allocator."""
from __future__ import annotations

import torch

from .config import TrainConfig
from .model import estimate_activation_memory

MARGIN = 0.9  # of the free memory a change may take: the allocator and the OS need some too


def free_bytes(device: torch.device) -> int | None:
    """Memory this process can still get on ``device``; None where it cannot be read."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # Memory the caching allocator holds but does not use is free to this process too.
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        import psutil

        return psutil.virtual_memory().available
    return None


def _activations(config: TrainConfig, vocab_size: int) -> int:
    """Bytes that grow with the micro-batch (grad_accum_steps runs its micro-batches one at a time)."""
    return estimate_activation_memory(vocab_size, config.d_model, config.num_blocks,
                                      config.batch_size * config.context_length)


def change_problem(old: TrainConfig, new: TrainConfig, vocab_size: int, device: torch.device) -> str | None:
    """Why ``new`` would not fit where ``old`` trains now (None when it fits, or cannot be told)."""
    extra = _activations(new, vocab_size) - _activations(old, vocab_size)
    if extra <= 0:
        return None
    free = free_bytes(device)
    if free is None or extra <= free * MARGIN:
        return None
    return (f"batch_size = {new.batch_size} needs about {extra / 2**30:,.1f} GiB more on {device} for its "
            f"activations, and {free / 2**30:,.1f} GiB is free: lower it (now {old.batch_size})")
