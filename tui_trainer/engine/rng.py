"""The random streams of one process: torch's (dropout), the batches' and CUDA's.

Each torchrun rank draws its own batches and dropout masks from a seed of its own. Rank 0's
streams are saved in checkpoints, so a resumed run draws exactly what the run would have;
the other ranks restart theirs from the step.
"""
from __future__ import annotations

from typing import Any

import torch

RANK_SEED_STRIDE = 1000  # per-rank seed offsets
EVAL_SEED_OFFSET = 1  # evals draw from their own generator, so they never shift the training batches


class RankRandom:
    def __init__(self, seed: int, rank: int, device: torch.device):
        self.seed = seed + RANK_SEED_STRIDE * rank
        self.rank = rank
        self.device = device
        torch.manual_seed(self.seed)
        self.batches = torch.Generator().manual_seed(self.seed)

    def eval_batches(self) -> torch.Generator:
        """The same eval batches at every eval, so the curves compare like with like."""
        return torch.Generator().manual_seed(self.seed + EVAL_SEED_OFFSET)

    def state(self) -> dict[str, torch.Tensor]:
        return {**self.dropout_state(), "batches": self.batches.get_state()}

    def dropout_state(self) -> dict[str, torch.Tensor]:
        """The streams a rollback rewinds: dropout's (CPU and CUDA), not the batches'."""
        state = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def restore_dropout(self, state: dict[str, torch.Tensor]) -> None:
        """Dropout's streams as saved (a checkpoint from an older version may lack them)."""
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda"], self.device)

    def restore(self, state: dict[str, Any], step: int) -> None:
        if self.rank:
            torch.manual_seed(self.seed + step)
            self.batches.manual_seed(self.seed + step)
            return
        self.restore_dropout(state)
        if "batches" in state:
            self.batches.set_state(state["batches"])
