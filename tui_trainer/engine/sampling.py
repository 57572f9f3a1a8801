"""Text in, text out: prompt encoding through the vocabulary map, generation with each token's
probability, entropy and top alternatives, decoding that shows broken UTF-8 for what it is."""
from __future__ import annotations

import codecs
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .checkpoint import load_checkpoint, model_from_checkpoint
from .errors import BrokenModel
from .model import GPT
from .safe_text import visible
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
    interrupted: bool = False  # a Ctrl+C ended a streamed generation early

    def to_json(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "text": self.text, "tokens": self.tokens,
                **({"interrupted": True} if self.interrupted else {})}


def _probability(logprob: float) -> float:
    """In (0, 1], five significant digits: exp in float64 of a float32 log-probability."""
    return min(1.0, float(f"{math.exp(logprob):.5g}"))


def _token(tokenizer: Tokenizer, vocab: VocabMap, model_id: int) -> tuple[int | None, bytes, str]:
    """A model id's tokenizer id, bytes and text alone (the unknown row has no bytes)."""
    ids = vocab.to_tokenizer([model_id])
    if not ids:
        return None, b"", UNKNOWN_TEXT
    raw = tokenizer.token_bytes(ids[0])
    return ids[0], raw, visible(raw.decode("utf-8", errors=BYTES_ERRORS))


def generate(model: GPT, tokenizer: Tokenizer, vocab: VocabMap, prompt: str, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None, on_token: Callable[[dict[str, Any]], None] | None = None,
             cached: bool = True) -> Generation:
    """The prompt followed by ``max_new_tokens`` generated tokens, with what the model thought of each.
    ``cached``: with the KV cache (GPT.generate_steps says how it treats a full context).

    ``on_token`` streams: it gets each token's record as soon as it is drawn (a device sync per
    token), and a Ctrl+C then ends the generation with what it has, ``interrupted`` set. Without
    it, the figures are read back once at the end. A model whose output is NaN or inf raises
    BrokenModel: its text would be noise drawn uniformly."""
    device = next(model.parameters()).device
    idx = torch.tensor([encode_prompt(prompt, tokenizer, vocab)], dtype=torch.long, device=device)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    pending: list[tuple[torch.Tensor, ...]] = []  # per token, on the device: id, logprob, entropy, top 5
    decoder = TokenDecoder(tokenizer, vocab)
    interrupted = False
    was_training = model.training
    model.eval()
    try:
        for next_id, logits in model.generate_steps(idx, max_new_tokens, temperature, top_k, top_p, generator,
                                                    cached):
            logp = torch.log_softmax(logits[0], dim=-1)  # (V,)
            best = logp.topk(min(TOP, logp.numel()))
            figures = (next_id[0, 0], logp[next_id[0, 0]], torch.special.entr(logp.exp()).sum(), best.values,
                       best.indices)
            if on_token is None:
                pending.append(figures)
            else:
                on_token(decoder.record(*(x.tolist() for x in figures)))
    except KeyboardInterrupt:
        if on_token is None:
            raise
        interrupted = True
    finally:
        model.train(was_training)
    if pending:  # read back once at the end: no device sync per token
        for figures in zip(*(torch.stack(column).tolist() for column in zip(*pending))):
            decoder.record(*figures)
    tokens = decoder.finish()
    return Generation(prompt, prompt + "".join(token["piece"] for token in tokens), tokens, interrupted)


class TokenDecoder:
    """Token records in order: each token's text alone, and the piece it adds to the running
    text (a character split over tokens joins the piece of its last token)."""

    def __init__(self, tokenizer: Tokenizer, vocab: VocabMap):
        self.tokenizer, self.vocab = tokenizer, vocab
        self.running = codecs.getincrementaldecoder("utf-8")(errors=BYTES_ERRORS)
        self.tokens: list[dict[str, Any]] = []

    def record(self, model_id: int, logprob: float, entropy: float, top_logprobs: list[float],
               top_ids: list[int]) -> dict[str, Any]:
        if not math.isfinite(logprob):
            raise BrokenModel("the model's output is NaN or inf: its weights are broken, so it cannot be sampled; "
                              "sample an earlier checkpoint")
        token_id, raw, text = _token(self.tokenizer, self.vocab, model_id)
        token = {"text": text, "piece": visible(self.running.decode(raw)), "id": token_id,
                 "prob": _probability(logprob), "entropy": round(max(0.0, entropy), 4),
                 "top": [{"text": alt_text, "id": alt_id, "prob": _probability(lp)}
                         for lp, (alt_id, _, alt_text) in
                         zip(top_logprobs, (_token(self.tokenizer, self.vocab, alt) for alt in top_ids))]}
        self.tokens.append(token)
        return token

    def finish(self) -> list[dict[str, Any]]:
        """The records, the last one's piece with the bytes still waiting for the rest of their
        character when the text ends."""
        if self.tokens:
            self.tokens[-1]["piece"] += visible(self.running.decode(b"", final=True))
        return self.tokens


def load_for_sampling(path: Path, device: torch.device | str = "cpu") -> tuple[GPT, Tokenizer, VocabMap, int]:
    """A checkpoint file's model (on ``device``, eval mode), tokenizer, vocabulary and step."""
    ckpt = load_checkpoint(path)
    model, _, vocab = model_from_checkpoint(ckpt, path)
    return model.to(device), get_tokenizer(ckpt["tokenizer"]["name"]), vocab, int(ckpt["step"])


def generate_from_checkpoint(path: Path, prompt: str, max_new_tokens: int, temperature: float,
                             top_k: int | None, top_p: float | None, seed: int | None,
                             device: torch.device | str = "cpu") -> tuple[Generation, int]:
    """A sample from a checkpoint file's weights, and the step they were saved at."""
    model, tokenizer, vocab, step = load_for_sampling(path, device)
    return generate(model, tokenizer, vocab, prompt, max_new_tokens, temperature, top_k, top_p, seed), step
