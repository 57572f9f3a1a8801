"""Text in, text out: prompt encoding through the vocabulary map, generation with each token's
probability, entropy and top alternatives, decoding that shows broken UTF-8 for what it is."""
from __future__ import annotations

import codecs
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .model import GPT
from .tokenizer import Tokenizer, VocabMap, get_tokenizer

TOP = 5  # alternatives kept per generated token
UNKNOWN_TEXT = "‹unknown›"  # the compact vocabulary's row for tokens the corpus never had
BYTES_ERRORS = "gpt-tui-bytes"


def _bytes_placeholder(exc: UnicodeError) -> tuple[str, int]:
    """Bytes that are not (yet) a whole UTF-8 character, shown as ‹e4 b8› instead of U+FFFD: one
    Chinese character can be three cl100k_base tokens, and each alone is such a fragment."""
    assert isinstance(exc, UnicodeDecodeError)
    return "‹" + " ".join(f"{byte:02x}" for byte in exc.object[exc.start:exc.end]) + "›", exc.end


codecs.register_error(BYTES_ERRORS, _bytes_placeholder)

# Control characters other than newline and tab would move a terminal's cursor or change its
# colours when the text is printed: they are shown the same way, ‹1b›.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    return _CONTROL.sub(lambda match: f"‹{ord(match.group()):02x}›", text)


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


@dataclass(frozen=True)
class Generation:
    """A prompt, its continuation, and per generated token a dict: ``text`` (the token alone),
    ``piece`` (what it adds to ``text``: a character split over tokens appears with its last
    one), ``id`` (tokenizer id; None for the unknown row), ``prob`` and ``entropy`` (nats) of the
    model's distribution at temperature 1 before top_k/top_p, and ``top``: the 5 most likely
    tokens, ``{"text", "id", "prob"}``, most likely first."""

    prompt: str
    text: str
    tokens: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "text": self.text, "tokens": self.tokens}


def _probability(logprob: float) -> float:
    """In (0, 1], five significant digits: exp in float64 of a float32 log-probability."""
    return min(1.0, float(f"{math.exp(logprob):.5g}"))


def _token(tokenizer: Tokenizer, vocab: VocabMap, model_id: int) -> tuple[int | None, bytes, str]:
    """A model id's tokenizer id, bytes and text alone (the unknown row has no bytes)."""
    ids = vocab.to_tokenizer([model_id])
    if not ids:
        return None, b"", UNKNOWN_TEXT
    raw = tokenizer.token_bytes(ids[0])
    return ids[0], raw, _visible(raw.decode("utf-8", errors=BYTES_ERRORS))


def generate(model: GPT, tokenizer: Tokenizer, vocab: VocabMap, prompt: str, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None) -> Generation:
    """The prompt followed by ``max_new_tokens`` generated tokens, with what the model thought of each."""
    device = next(model.parameters()).device
    idx = torch.tensor([encode_prompt(prompt, tokenizer, vocab)], dtype=torch.long, device=device)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    chosen, logprobs, entropies, top_logprobs, top_ids = [], [], [], [], []
    was_training = model.training
    model.eval()
    try:
        for next_id, logits in model.generate_steps(idx, max_new_tokens, temperature, top_k, top_p, generator):
            logp = torch.log_softmax(logits[0], dim=-1)  # (V,)
            chosen.append(next_id[0, 0])
            logprobs.append(logp[next_id[0, 0]])
            entropies.append(torch.special.entr(logp.exp()).sum())
            best = logp.topk(min(TOP, logp.numel()))
            top_logprobs.append(best.values)
            top_ids.append(best.indices)
    finally:
        model.train(was_training)
    # Read back once at the end: no device sync per token.
    chosen_l, logprobs_l, entropies_l = (torch.stack(x).tolist() for x in (chosen, logprobs, entropies))
    top_logprobs_l, top_ids_l = torch.stack(top_logprobs).tolist(), torch.stack(top_ids).tolist()
    tokens = [{"text": text, "piece": piece, "id": token_id, "prob": _probability(logprobs_l[i]),
               "entropy": round(max(0.0, entropies_l[i]), 4),
               "top": [{"text": alt_text, "id": alt_id, "prob": _probability(lp)}
                       for lp, (alt_id, _, alt_text) in
                       zip(top_logprobs_l[i], (_token(tokenizer, vocab, alt) for alt in top_ids_l[i]))]}
              for i, (token_id, text, piece) in enumerate(token_texts(tokenizer, vocab, chosen_l))]
    return Generation(prompt, prompt + "".join(token["piece"] for token in tokens), tokens)


def token_texts(tokenizer: Tokenizer, vocab: VocabMap, model_ids: list[int]) -> list[tuple[int | None, str, str]]:
    """Per model id: its tokenizer id, its text alone, and the piece it adds to the running text
    (a character split over tokens joins the piece of its last token)."""
    running = codecs.getincrementaldecoder("utf-8")(errors=BYTES_ERRORS)
    out = []
    for model_id in model_ids:
        token_id, raw, text = _token(tokenizer, vocab, model_id)
        out.append((token_id, text, _visible(running.decode(raw))))
    if out:  # bytes still waiting for the rest of their character when the text ends
        token_id, text, piece = out[-1]
        out[-1] = (token_id, text, piece + _visible(running.decode(b"", final=True)))
    return out


def generate_from_checkpoint(path: Path, prompt: str, max_new_tokens: int, temperature: float,
                             top_k: int | None, top_p: float | None, seed: int | None,
                             device: torch.device | str = "cpu") -> tuple[Generation, int]:
    """A sample from a checkpoint file's weights, and the step they were saved at."""
    ckpt = load_checkpoint(path)
    model, _, vocab = model_from_checkpoint(ckpt, path)
    model.to(device)
    generation = generate(model, get_tokenizer(ckpt["tokenizer"]["name"]), vocab, prompt, max_new_tokens,
                          temperature, top_k, top_p, seed)
    return generation, int(ckpt["step"])
