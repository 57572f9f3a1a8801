"""The update half of a training step: AdamW (or Muon with AdamW), the float16 loss scaler,
gradient clipping, and skipping an update whose loss is not finite."""
from __future__ import annotations

from typing import Any

import torch

from .config import TrainConfig
from .errors import ConfigError


def muon_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The blocks' 2-D weights (qkv, proj and both feed-forward linears): what Muon updates, as
    modded-nanogpt splits it. Embeddings, the head, LayerNorms and biases stay with AdamW."""
    blocks = getattr(model, "blocks", None)
    return [p for p in blocks.parameters() if p.ndim == 2] if blocks is not None else []


class MuonWithAdamW:
    """Muon for the blocks' matrices and AdamW for the rest, as the one optimizer the loop, the
    checkpoint and a spike's snapshot know: its state_dict holds both optimizers' states."""

    def __init__(self, model: torch.nn.Module, config: TrainConfig, fused: bool):
        matrices = muon_matrices(model)
        chosen = {id(p) for p in matrices}
        others = [p for p in model.parameters() if id(p) not in chosen]
        self.muon = torch.optim.Muon(matrices, lr=config.muon_lr, weight_decay=config.weight_decay)
        self.adamw = torch.optim.AdamW(others, lr=config.learning_rate, weight_decay=config.weight_decay,
                                       fused=fused)
        self.counts = (sum(p.numel() for p in matrices), sum(p.numel() for p in others))

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @property
    def state(self) -> dict:
        return {**self.muon.state, **self.adamw.state}

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": "muon", "muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])

    def step(self, bad: torch.Tensor | None = None) -> None:
        if bad is not None:  # Muon has no found_inf: a bad step's gradients become zeros instead
            keep = (~bad).to(torch.float32)
            for group in self.muon.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad.nan_to_num_(0.0, 0.0, 0.0).mul_(keep.to(p.grad.dtype))
            self.adamw.found_inf = bad.float()
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)


def check_optimizer(config: TrainConfig, dtype: torch.dtype) -> None:
    """Muon needs a torch that has it, and no float16 loss scaler (which unscales one optimizer)."""
    if config.optimizer != "muon":
        return
    if not hasattr(torch.optim, "Muon"):
        raise ConfigError([f"optimizer = 'muon' needs torch.optim.Muon, in torch 2.9 and later; this is torch "
                           f"{torch.__version__}: upgrade torch, or use optimizer = 'adamw'"])
    if dtype == torch.float16:
        raise ConfigError(["optimizer = 'muon' with float16: its loss scaler works with AdamW alone; use dtype = "
                           "'bfloat16' or 'float32'"])


class Updater:
    def __init__(self, model: torch.nn.Module, config: TrainConfig, device: torch.device, dtype: torch.dtype):
        check_optimizer(config, dtype)
        self.params = list(model.parameters())  # once: model.parameters() walks every module, each step
        self.kind = config.optimizer
        self.grad_clip = config.grad_clip
        self.learning_rate, self.muon_lr = config.learning_rate, config.muon_lr
        # Fused AdamW updates every tensor in one kernel, and can skip a step on device (found_inf).
        self.fused = device.type in ("cuda", "cpu")
        if self.kind == "muon":
            self.optimizer = MuonWithAdamW(model, config, self.fused)
        else:
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                               weight_decay=config.weight_decay, fused=self.fused)
        self.scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

    def set_lr(self, lr: float) -> None:
        """``lr`` is AdamW's, as the schedule (and a rollback's scale) gives it; Muon's follows
        the same schedule from muon_lr."""
        if self.kind == "muon":
            for group in self.optimizer.muon.param_groups:
                group["lr"] = lr * self.muon_lr / self.learning_rate
            groups = self.optimizer.adamw.param_groups
        else:
            groups = self.optimizer.param_groups
        for group in groups:
            group["lr"] = lr

    def describe(self) -> str:
        """The optimizer's groups, for the Health tab."""
        if self.kind != "muon":
            return f"AdamW: every weight (lr {self.learning_rate:.1e})"
        muon, adamw = self.optimizer.counts
        return (f"Muon: the blocks' matrices, {muon:,} weights (lr {self.muon_lr:.1e}) · AdamW: embeddings, head, "
                f"LayerNorms, biases, {adamw:,} weights (lr {self.learning_rate:.1e})")

    def configure(self, config: TrainConfig) -> None:
        """Take a live change of grad_clip, weight_decay, learning_rate or muon_lr."""
        self.grad_clip = config.grad_clip
        self.learning_rate, self.muon_lr = config.learning_rate, config.muon_lr
        for group in self.optimizer.param_groups:
            group["weight_decay"] = config.weight_decay

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def grad_norm(self) -> torch.Tensor:
        """The global gradient norm before clipping, on the device (unscaled first under float16)."""
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        return torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])

    def step(self, bad: torch.Tensor | None, norm: torch.Tensor | None = None) -> None:
        """Clip and apply the gradients, then clear them. ``bad`` (a device flag: the loss or the
        gradient was not finite) makes the fused kernel skip this update on device, with no sync.
        ``norm`` is :meth:`grad_norm`'s, when the caller measured it (then unscaled already)."""
        if self.scaler and norm is None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip:
            if norm is None:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            else:
                torch.nn.utils.clip_grads_with_norm_(self.params, self.grad_clip, norm)
        if self.scaler:
            self.scaler.step(self.optimizer)  # skips steps with inf/NaN gradients itself
            self.scaler.update()
        elif self.kind == "muon":
            self.optimizer.step(bad)
        else:
            if bad is not None:
                self.optimizer.found_inf = bad.float()
            self.optimizer.step()
        self.zero_grad()

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> bool:
        """A checkpoint's optimizer state; False (nothing loaded: the state starts afresh) when it
        is another optimizer's, as after a fork that changed ``optimizer``."""
        saved = state.get("optimizer", "adamw")
        if saved != self.kind:
            return False
        self.optimizer.load_state_dict(state)
        return True
