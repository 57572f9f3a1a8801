"""Training speed at configs/chapter19.toml on the bundled corpus, all variants in one run.

    python benchmarks/bench_train.py [--steps 200] [--rounds 3] [--shape nanogpt]

Prints steps/s for: the chapter-style naive loop, the engine at vocab=max (the chapter's
vocabulary), the engine at its default (compact vocabulary), and a clean nanoGPT-style loop
on the compact vocabulary; then the ratios against the targets, and the engine's Python
overhead (time outside ATen ops per step, from torch.profiler).

``--shape nanogpt`` profiles the step at nanoGPT's CPU recipe instead (char-level, 4 layers,
128 wide, context 64, batch 12; vs_nanogpt.py runs nanoGPT's own train.py beside it): the
engine with health on and off, interleaved, its Python overhead, and where the step's time
goes, op by op.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chapter_reference import ChapterModel, chapter_get_batch, nanogpt_get_batch, time_loop  # noqa: E402

from tui_trainer.engine.checkpoint import model_config  # noqa: E402
from tui_trainer.engine.config import load_config, with_overrides  # noqa: E402
from tui_trainer.engine.data import load_tokens, resolve_data_path  # noqa: E402
from tui_trainer.engine.events import StepMetrics  # noqa: E402
from tui_trainer.engine.model import GPT  # noqa: E402
from tui_trainer.engine.tokenizer import get_tokenizer  # noqa: E402
from tui_trainer.engine.trainer import Trainer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WARMUP = 20


def engine_steps_per_sec(config, steps: int, out: Path) -> tuple[float, Trainer]:
    """Time the real loop (control checks and all) between two step reports."""
    cfg = with_overrides(config, {"max_iters": WARMUP + steps, "log_interval": WARMUP, "eval_iters": 1,
                                  "eval_interval": 10**9, "out_dir": str(out)})
    stamps: dict[int, float] = {}
    trainer = Trainer(cfg, on_event=lambda e: stamps.__setitem__(e.step, time.perf_counter())
                      if isinstance(e, StepMetrics) else None)
    trainer.run()
    last = max(stamps)
    return (last - WARMUP) / (stamps[last] - stamps[WARMUP]), trainer


def _outermost_aten(event) -> bool:
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


def train_steps(trainer: Trainer, steps: int) -> None:
    """``steps`` of the real training step, outside the loop (no reports, no evals)."""
    for _ in range(steps):
        trainer._train_step(1e-3, measure=False)
        trainer.meter.discard()


def python_overhead(trainer: Trainer, steps: int = 40) -> float:
    """Share of an unprofiled training step spent outside ATen ops.

    torch.profiler gives the time inside the outermost ATen ops (kernels and their dispatch);
    the rest of an unprofiled step's wall time is Python, the autograd engine's bookkeeping
    and the optimizer's loops. The profiled run's own wall time is not used, since the
    profiler adds its cost between ops.
    """
    from torch.profiler import ProfilerActivity, profile

    def timed() -> float:
        start = time.perf_counter()
        train_steps(trainer, steps)
        return time.perf_counter() - start

    timed()  # warm up
    plain = min(timed(), timed())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timed()
    inside = sum(e.cpu_time_total for e in prof.events() if _outermost_aten(e)) / 1e6
    return max(0.0, 1.0 - inside / plain)


# torch.profiler's op names, in the groups a step's time is told in
OP_GROUPS = {"matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::linear"),
             "attention": ("aten::_scaled_dot_product",), "ReLU": ("aten::clamp_min", "aten::threshold_backward",
                                                                  "aten::relu"),
             "LayerNorm": ("aten::native_layer_norm",), "copies": ("aten::copy_",),
             "AdamW update": ("aten::_fused_adamw",), "gradient norm and clip": ("aten::_foreach_norm",
                                                                               "aten::linalg_vector_norm",
                                                                               "aten::_foreach_mul")}


def op_shares(trainer: Trainer, steps: int = 50) -> dict[str, float]:
    """Each group's share of the self CPU time of ``steps`` profiled training steps."""
    from torch.profiler import ProfilerActivity, profile

    train_steps(trainer, 10)  # warm up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_steps(trainer, steps)
    averages = prof.key_averages()
    total = sum(a.self_cpu_time_total for a in averages)
    shares = {group: sum(a.self_cpu_time_total for a in averages if a.key.startswith(names)) / total
              for group, names in OP_GROUPS.items()}
    return {**shares, "everything else": 1.0 - sum(shares.values())}


def nanogpt_shape(args) -> None:
    from vs_nanogpt import recipe

    config = with_overrides(load_config(REPO / "configs" / "chapter19.toml"),
                            {**recipe(WARMUP + args.steps), "data": str(REPO / "data" / "orders.txt")})
    rates: dict[bool, list[float]] = {True: [], False: []}
    overhead, shares = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for health in ((True, False) if round_ % 2 == 0 else (False, True)):
                rate, trainer = engine_steps_per_sec(with_overrides(config, {"health": health}), args.steps,
                                                     Path(tmp))
                rates[health].append(rate)
                if health:
                    overhead.append(python_overhead(trainer))
                    shares.append(op_shares(trainer))
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(f"nanoGPT's CPU recipe shape (char-level data/orders.txt), {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}, median of {args.rounds} rounds")
    print(f"engine, health on:  {on:.1f} steps/s ({1000 / on:.1f} ms a step)")
    print(f"engine, health off: {off:.1f} steps/s; health costs {off / on - 1:+.1%} (rounds: "
          f"{', '.join(f'{b / a - 1:+.1%}' for a, b in zip(rates[True], rates[False]))})")
    print(f"engine Python overhead per step: {statistics.median(overhead):.1%} of step time")
    print("\n| where a step's time goes (torch.profiler, self CPU time) | share |\n|---|---:|")
    for group in shares[0]:
        print(f"| {group} | {statistics.median(s[group] for s in shares):.1%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shape", choices=("chapter19", "nanogpt"), default="chapter19")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    if args.shape == "nanogpt":
        nanogpt_shape(args)
        return
    config = load_config(REPO / "configs" / "chapter19.toml", {"dropout": 0.1})
    raw = torch.from_numpy(load_tokens(resolve_data_path(""), get_tokenizer("cl100k_base")).astype("int64"))
    max_vocab = int(raw.max()) + 1
    split = int(0.9 * len(raw))
    c = config
    results: dict[str, list[float]] = {"chapter": [], "engine_max": [], "engine": [], "engine_nohealth": [],
                                       "nanogpt": []}
    overhead = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            torch.manual_seed(c.TORCH_SEED)
            chapter = ChapterModel(max_vocab, c.d_model, c.num_blocks, c.num_heads, c.context_length, c.dropout)
            train = raw[:split]
            results["chapter"].append(time_loop(
                chapter, lambda: chapter_get_batch(train, c.batch_size, c.context_length),
                max(20, args.steps // 4), WARMUP, c.learning_rate))
            rate, _ = engine_steps_per_sec(with_overrides(c, {"vocab": "max"}), args.steps, Path(tmp))
            results["engine_max"].append(rate)
            # health on (the default) and off back to back, in alternating order: their ratio is the
            # cost of the gradient norms and per-block figures, with the machine's drift paired out
            trainers = {}
            for health in ((True, False) if len(overhead) % 2 == 0 else (False, True)):
                rate, trainers[health] = engine_steps_per_sec(with_overrides(c, {"health": health}), args.steps,
                                                              Path(tmp))
                results["engine" if health else "engine_nohealth"].append(rate)
            trainer = trainers[True]
            overhead.append(python_overhead(trainer))
            compact_train = trainer.corpus.train.long()
            torch.manual_seed(c.TORCH_SEED)
            nano = GPT(model_config(c, trainer.vocab.size))
            results["nanogpt"].append(time_loop(
                nano, lambda: nanogpt_get_batch(compact_train, c.batch_size, c.context_length),
                args.steps, WARMUP, c.learning_rate))
    med = {k: statistics.median(v) for k, v in results.items()}
    vocab_compact = trainer.vocab.size
    print(f"configs/chapter19.toml on data/orders.txt, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"median of {args.rounds} rounds")
    print("| loop | vocabulary | steps/s | vs chapter loop |")
    print("|---|---|---:|---:|")
    rows = [("chapter-style naive loop", f"max id + 1 = {max_vocab:,}", "chapter"),
            ("engine, vocab=max", f"{max_vocab:,}", "engine_max"),
            ("nanoGPT-style clean loop", f"compact = {vocab_compact:,}", "nanogpt"),
            ("engine, health off", f"{vocab_compact:,}", "engine_nohealth"),
            ("engine, default (compact, health on)", f"{vocab_compact:,}", "engine")]
    for name, vocab, key in rows:
        print(f"| {name} | {vocab} | {med[key]:.1f} | {med[key] / med['chapter']:.2f}x |")
    print()
    checks = [("engine default vs chapter loop", med["engine"] / med["chapter"], 10.0),
              ("engine vocab=max vs chapter loop", med["engine_max"] / med["chapter"], 1.4),
              ("engine default vs nanoGPT-style loop", med["engine"] / med["nanogpt"], 1.0)]
    for name, ratio, target in checks:
        print(f"{name}: {ratio:.2f}x (target >= {target}x) {'OK' if ratio >= target else 'MISSED'}")
    cost = statistics.median(off / on - 1 for on, off in zip(results["engine"], results["engine_nohealth"]))
    print(f"health (grad norms every step, per-block figures every log interval): {cost:+.1%} of step time, "
          f"median of the rounds' paired ratios (target < 3%) {'OK' if cost < 0.03 else 'MISSED'}")
    share = statistics.median(overhead)
    print(f"engine Python overhead per step: {share:.1%} of step time (target < 10%) "
          f"{'OK' if share < 0.10 else 'MISSED'}")


if __name__ == "__main__":
    main()
