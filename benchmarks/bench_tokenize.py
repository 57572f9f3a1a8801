"""Large-corpus tokenization: first-time MB/s, peak memory, and the cached open, side by side.

Builds a text file of SIZE_MB (default 100) from the bundled corpus's lines, shuffled with a
fixed seed, then opens it twice with the engine's build_corpus (cl100k_base, compact vocab),
each time in a fresh process so peak RSS belongs to that open alone:

    python benchmarks/bench_tokenize.py [SIZE_MB]

Targets (issue 5): first tokenization >= 5 MB/s, peak RSS < 1.5 GB, cached open < 1 s.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
from tui_trainer.engine.data import build_corpus
from tui_trainer.engine.tokenizer import get_tokenizer
tokenizer = get_tokenizer("cl100k_base")
start = time.perf_counter()
corpus = build_corpus(sys.argv[1], tokenizer, "compact")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "tokens": corpus.raw_count, "vocab": corpus.vocab.size,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_corpus(path: Path, size_mb: int) -> None:
    lines = (REPO / "data" / "orders.txt").read_text(encoding="utf-8").splitlines()
    rng = random.Random(1337)
    target = size_mb * 2**20
    with open(path, "w", encoding="utf-8") as out:
        written = 0
        while written < target:
            chunk = "\n".join(rng.choices(lines, k=5000)) + "\n"
            out.write(chunk)
            written += len(chunk.encode("utf-8"))


def open_corpus(path: Path, cache: Path) -> dict:
    env = {**os.environ, "GPT_TUI_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        corpus, cache = Path(tmp) / "big.txt", Path(tmp) / "cache"
        make_corpus(corpus, size_mb)
        mb = corpus.stat().st_size / 2**20
        first = open_corpus(corpus, cache)
        second = open_corpus(corpus, cache)
    rate = mb / first["seconds"]
    print(f"corpus: {mb:,.0f} MB of text, {first['tokens']:,} cl100k_base tokens, compact vocab {first['vocab']:,}, "
          f"{os.cpu_count()} cores")
    print(f"{'measure':<34}{'measured':>14}{'target':>12}{'ratio':>9}")
    rows = [("first tokenization (MB/s)", rate, 5.0, rate / 5.0),
            ("peak RSS, first open (MB)", first["peak_rss_mb"], 1536.0, 1536.0 / first["peak_rss_mb"]),
            ("cached open (s)", second["seconds"], 1.0, 1.0 / second["seconds"]),
            ("peak RSS, cached open (MB)", second["peak_rss_mb"], 1536.0, 1536.0 / second["peak_rss_mb"])]
    for name, value, target, ratio in rows:
        print(f"{name:<34}{value:>14,.2f}{target:>12,.1f}{ratio:>8.2f}x")
    print("(ratio > 1 meets the target; first tokenization took "
          f"{first['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
