"""DistributedDataParallel under torchrun: NCCL on CUDA, gloo on CPU.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for each process it starts. Without them (or
with WORLD_SIZE=1) everything here is a no-op, so one code path serves a single process too.
"""
from __future__ import annotations

import contextlib
import inspect
import os
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist

from .device import resolve_device
from .errors import ConfigError


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_size: int = 1  # processes on this machine

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes files, draws progress and reports events."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """The config's device; under torchrun on CUDA, the GPU of this process's LOCAL_RANK."""
        device = resolve_device(name)
        if self.active and device.type == "cuda":
            if self.local_size > torch.cuda.device_count():
                raise ConfigError([f"torchrun started {self.local_size} processes on this machine but it has "
                                   f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node="
                                   f"{torch.cuda.device_count()}, or device = \"cpu\""])
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        return device

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """In place across ranks ("sum", "max" or "avg"); returns ``tensor`` for chaining."""
        if self.active:
            if op == "avg":  # gloo has no AVG: sum, then divide
                dist.all_reduce(tensor, dist.ReduceOp.SUM)
                tensor /= self.world_size
            else:
                dist.all_reduce(tensor, dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor

    def agree(self, stop: bool, pause: bool, changes: list, device: torch.device) -> tuple[bool, bool, list]:
        """(stop, pause, changes) as all ranks must see them: a stop on any rank (signals reach
        each one), a pause and live changes from rank 0 (where requests arrive). One small
        all-reduce, and a broadcast only when rank 0 has changes; free in one process."""
        if not self.active:
            return stop, pause, changes
        flags = torch.tensor([stop, pause and self.is_main, bool(changes) and self.is_main], dtype=torch.int32,
                             device=device)
        stop, pause, changed = map(bool, self.all_reduce(flags, "max").tolist())
        if changed:
            shared = [changes if self.is_main else None]
            dist.broadcast_object_list(shared, src=0, device=device if device.type == "cuda" else None)
            changes = shared[0]
        return stop, pause, changes if changed else []

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """DistributedDataParallel around ``model``, which all-reduces gradients in backward."""
        from torch.nn.parallel import DistributedDataParallel

        # The model's only buffer is the constant sinusoidal table: never re-send it each forward
        # (newer torch spells the keyword forward_sync_buffers).
        params = inspect.signature(DistributedDataParallel).parameters
        no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in params
                          else {"broadcast_buffers": False})
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                       **no_buffer_sync)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the other ranks (it fills a cache that they then read)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def close(self, together: bool = True) -> None:
        """Leave the process group. ``together``: first wait for every rank (rank 0 may still be
        writing the last checkpoint), as gloo aborts a process whose peers tear down mid-way.
        After a failure a rank may never arrive, so then each leaves on its own."""
        if self.active and dist.is_initialized():
            if together:
                dist.barrier()
            dist.destroy_process_group()


def init_distributed(device_name: str) -> Distributed:
    """Join the process group torchrun set up, or return a single-process Distributed."""
    if not under_torchrun():
        return Distributed()
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    world = int(os.environ["WORLD_SIZE"])
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if not dist.is_initialized():
        on_gpu = device_name != "cpu" and torch.cuda.is_available()
        backend = "nccl" if on_gpu else "gloo"
        if on_gpu and local_rank < torch.cuda.device_count():  # bind each process to its GPU first
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return Distributed(rank, local_rank, world, local_size)
