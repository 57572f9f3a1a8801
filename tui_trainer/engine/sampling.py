"""Text in, text out: prompt encoding through the vocabulary map, generation, decoding."""
from __future__ import annotations

import math

import torch

from .model import GPT
from .tokenizer import Tokenizer, VocabMap


def sample_problems(max_new_tokens: int, temperature: float, top_k: int | None, top_p: float | None) -> list[str]:
    """What is wrong with these sampling settings (empty when they are fine), in the words of
    the Samples tab and of `gpt-tui sample` alike."""
    problems = []
    if max_new_tokens < 1:
        problems.append(f"max_new_tokens {max_new_tokens}: must be >= 1")
    if not (math.isfinite(temperature) and temperature >= 0):
        problems.append(f"temperature {temperature}: must be a finite number > 0 (or 0 for greedy)")
    if top_k is not None and top_k < 1:
        problems.append(f"top_k {top_k}: must be an integer >= 1 (or empty for none)")
    if top_p is not None and not (math.isfinite(top_p) and 0 < top_p <= 1):
        problems.append(f"top_p {top_p}: must be in (0, 1] (or empty for none)")
    return problems


def encode_prompt(prompt: str, tokenizer: Tokenizer, vocab: VocabMap) -> list[int]:
    """Model ids for ``prompt``; tokens the model never saw map to its unknown row (or are dropped).

    An empty prompt starts from a newline, the separator of line-per-record corpora.
    """
    ids = vocab.to_model(tokenizer.encode(prompt or "\n")).tolist()
    return ids or [0]  # every prompt token was outside a "max"/"full" vocabulary


def generate_text(model: GPT, tokenizer: Tokenizer, vocab: VocabMap, prompt: str, max_new_tokens: int,
                  temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  seed: int | None = None) -> str:
    """The prompt followed by ``max_new_tokens`` generated tokens, as text."""
    device = next(model.parameters()).device
    idx = torch.tensor([encode_prompt(prompt, tokenizer, vocab)], dtype=torch.long, device=device)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=generator)
    finally:
        model.train(was_training)
    new_ids = vocab.to_tokenizer(out[0, idx.size(1):].tolist())
    return prompt + tokenizer.decode(new_ids)
