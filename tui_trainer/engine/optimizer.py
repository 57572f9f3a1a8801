"""The update half of a training step: AdamW, the float16 loss scaler, gradient clipping, and
skipping an update whose loss is not finite."""
from __future__ import annotations

from typing import Any

import torch

from .config import TrainConfig


class Updater:
    def __init__(self, model: torch.nn.Module, config: TrainConfig, device: torch.device, dtype: torch.dtype):
        self.model = model
        self.grad_clip = config.grad_clip
        # Fused AdamW updates every tensor in one kernel, and can skip a step on device (found_inf).
        self.fused = device.type in ("cuda", "cpu")
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay, fused=self.fused)
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def configure(self, config: TrainConfig) -> None:
        """Take a live change of grad_clip or weight_decay."""
        self.grad_clip = config.grad_clip
        for group in self.optimizer.param_groups:
            group["weight_decay"] = config.weight_decay

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def grad_norm(self) -> torch.Tensor:
        """The global gradient norm before clipping, on the device (unscaled first under float16)."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        return torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])

    def step(self, bad: torch.Tensor | None, norm: torch.Tensor | None = None) -> None:
        """Clip and apply the gradients, then clear them. ``bad`` (a device flag: the loss or the
        gradient was not finite) makes the fused kernel skip this update on device, with no sync.
        ``norm`` is :meth:`grad_norm`'s, when the caller measured it (then unscaled already)."""
        if self.scaler and norm is None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip:
            if norm is None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            else:
                torch.nn.utils.clip_grads_with_norm_(self.model.parameters(), self.grad_clip, norm)
        if self.scaler:
            self.scaler.step(self.optimizer)  # skips steps with inf/NaN gradients itself
            self.scaler.update()
        else:
            if bad is not None:
                self.optimizer.found_inf = bad.float()
            self.optimizer.step()
        self.zero_grad()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state)
