"""Generation speed of `gpt-tui sample`: before issue 15's changes, after them, and with the KV cache, in one run.

    python benchmarks/bench_sample.py [--tokens 300] [--rounds 3]

"before" is the loop `GPT.generate` had: the head over all T positions of the context, and
the sequence copied by torch.cat for every token. "after" is `sampling.generate`, what the
command runs now: the head over the last position only, the context a view of one buffer,
and each token's probability, entropy and top 5 kept. Both generate the same number of
tokens, past context_length so the cropping is exercised, at configs/chapter19.toml and
configs/gpu.toml (on CPU, float32) with the bundled corpus's compact vocabulary, and at the
chapter config with the chapter's own vocabulary (max id + 1), where the head is widest.
"cached" is the same generation with the KV cache (each token one position's forward; a full
context re-encodes its last half), what `gpt-tui sample` runs by default now.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from tui_trainer.engine.checkpoint import model_config
from tui_trainer.engine.config import load_config
from tui_trainer.engine.data import build_corpus
from tui_trainer.engine.model import GPT, filter_logits
from tui_trainer.engine.sampling import encode_prompt, generate
from tui_trainer.engine.tokenizer import get_tokenizer

REPO = Path(__file__).resolve().parent.parent


@torch.no_grad()
def generate_before(model: GPT, idx: torch.Tensor, max_new_tokens: int, generator: torch.Generator) -> torch.Tensor:
    """The generation loop as it was before (kept here only to measure against)."""
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -model.cfg.context_length:])
        logits = logits[:, -1, :].float()
        scaled = logits - logits.max(dim=-1, keepdim=True).values
        next_id = torch.multinomial(F.softmax(filter_logits(scaled, None, None), dim=-1), 1, generator=generator)
        idx = torch.cat((idx, next_id), dim=1)
    return idx


def tokens_per_sec(run, tokens: int, rounds: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return tokens / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} tokens per sample, "
          f"median of {args.rounds}")
    print("| config | vocabulary | context | before tok/s | after tok/s | cached tok/s | after vs before "
          "| cached vs after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, vocab_mode in (("chapter19", "compact"), ("chapter19", "max"), ("gpu", "compact")):
        config = load_config(REPO / "configs" / f"{name}.toml", {"device": "cpu", "compile": False,
                                                                  "vocab": vocab_mode})
        tokenizer = get_tokenizer(config.tokenizer)
        vocab = build_corpus(config.data, tokenizer, config.vocab).vocab
        torch.manual_seed(0)
        model = GPT(model_config(config, vocab.size)).eval()
        idx = torch.tensor([encode_prompt("", tokenizer, vocab)])
        before = tokens_per_sec(lambda: generate_before(model, idx, args.tokens, torch.Generator().manual_seed(1)),
                                args.tokens, args.rounds)
        after = tokens_per_sec(lambda: generate(model, tokenizer, vocab, "", args.tokens, seed=1, cached=False),
                               args.tokens, args.rounds)
        cached = tokens_per_sec(lambda: generate(model, tokenizer, vocab, "", args.tokens, seed=1),
                                args.tokens, args.rounds)
        print(f"| {name}.toml | {vocab_mode} {vocab.size:,} | {config.context_length} | {before:,.0f} | {after:,.0f} | "
              f"{cached:,.0f} | {after / before:.2f}x | {cached / after:.2f}x |")


if __name__ == "__main__":
    main()
