"""A model of a config built as a run builds it, for the finders (lr_finder.py, batch_finder.py)
to train a few steps on, without a run directory: the tokenizer and corpus, the weights from
the config's seed (or a checkpoint's), its optimizer and a batch source."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import torch

from .checkpoint import model_config
from .config import TrainConfig
from .data import Batcher, Corpus, Progress, build_corpus
from .device import autocast, configure_torch, resolve_device, resolve_dtype
from .model import GPT
from .optimizer import Updater
from .tokenizer import VocabMap, get_tokenizer


@dataclass
class Probe:
    config: TrainConfig
    corpus: Corpus
    model: GPT
    updater: Updater
    device: torch.device
    dtype: torch.dtype

    def batcher(self, batch_size: int) -> Batcher:
        return Batcher(self.corpus, batch_size, self.config.context_length, self.device)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step on (x, y); the loss, on the device."""
        with autocast(self.device, self.dtype):
            _, loss = self.model(x, y)
        self.updater.backward(loss)
        self.updater.step(None)
        return loss.detach()


@contextlib.contextmanager
def probing(config: TrainConfig, checkpoint: dict[str, Any] | None = None,
            progress: Progress | None = None) -> Iterator[Probe]:
    """A probe for the block. The process's random streams are as they were after it, and
    nothing of the probe (weights, optimizer state, cached blocks) stays on the device."""
    device = resolve_device(config.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        probe = build_probe(config, checkpoint, progress)
        try:
            yield probe
        finally:
            del probe.model, probe.updater  # the caller may still hold the probe itself
            if device.type == "cuda":
                torch.cuda.empty_cache()


def build_probe(config: TrainConfig, checkpoint: dict[str, Any] | None = None,
                progress: Progress | None = None) -> Probe:
    """Call inside ``torch.random.fork_rng`` (or use :func:`probing`): the weights are seeded as
    a run's are."""
    device = resolve_device(config.device)
    configure_torch(device, config.num_threads, 1)
    dtype = resolve_dtype(config.dtype, device)
    vocab = VocabMap.from_state(checkpoint["tokenizer"]) if checkpoint else None
    corpus = build_corpus(config.data, get_tokenizer(config.tokenizer), config.vocab, vocab, progress)
    corpus.check_fits(config.context_length)
    torch.manual_seed(config.TORCH_SEED)  # the weights a run of this config starts from
    model = GPT(model_config(config, corpus.vocab.size)).to(device)
    updater = Updater(model, config, device, dtype)
    if checkpoint:
        model.load_state_dict(checkpoint["model_state_dict"])
        updater.load_state_dict(checkpoint["optimizer_state_dict"])
    model.train()
    return Probe(config, corpus, model, updater, device, dtype)
