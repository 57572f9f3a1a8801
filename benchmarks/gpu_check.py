"""Every GPU path of gpt-tui in one command, one table: run it the moment a CUDA machine is there.

    python benchmarks/gpu_check.py [--steps 300] [--out DIR]

1. `gpt-tui info`.
2. configs/gpu.toml headless for --steps steps, compile off and on: tokens/s, MFU, peak memory.
3. A nanoGPT-style loop written here (its get_batch with pinned memory, bf16 autocast, fused
   AdamW, grad clip, torch.compile, the loss read at each log interval), same config and GPU:
   tokens/s against gpt-tui's.
4. The app in a terminal (a pty this script owns, 120x40) against `gpt-tui train`, same config,
   --ratio-steps each: steps/s from each run's metrics.jsonl after warm-up.
5. A batch that cannot fit, resumed from the run of (2): one clear OOM line, exit 1, and the
   checkpoint unchanged.
6. ctrl+s, then a closed terminal (SIGHUP), in the app on the GPU: checkpoint step >= logged step.
7. With 2+ GPUs: torchrun over NCCL with 2 processes, then that checkpoint resumed in one.

Without CUDA it says it skipped and exits 0. ``--allow-cpu`` runs the same checks on the CPU
with a tiny config (to try the script itself without a GPU). The table is printed and, with
--out (default: $OUT when set), written to gpu_check.md there, with each run's log beside it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from pty_terminal import PtyApp  # noqa: E402
WARMUP = 50  # steps left out of every rate (compile, allocator, first layouts)
CHECKS = ("info", "headless", "reference", "app", "oom", "hangup", "ddp")  # in the order they run
CPU_TINY = {"d_model": 64, "num_blocks": 2, "num_heads": 2, "context_length": 64, "batch_size": 8,
            "tokenizer": "byte", "eval_iters": 2, "sample_interval": 0, "checkpoint_interval": 0}


class Report:
    def __init__(self, out: Path | None):
        self.rows: list[tuple[str, str, str]] = []
        self.out = out

    def add(self, check: str, result: str, verdict: str = "") -> None:
        self.rows.append((check, result, verdict))
        print(f"[{verdict or 'info':>4}] {check}: {result}", flush=True)

    def table(self, header: str) -> str:
        lines = [header, "", "| check | result | |", "|---|---|---|"]
        lines += [f"| {c} | {r.replace('|', '/')} | {v} |" for c, r, v in self.rows]
        return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tui_trainer", *args]


def sets(values: dict) -> list[str]:
    return [f"--set={k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items()]


def records(run_dir: Path, kind: str) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("event") == kind:
            rows.append(row)
    return rows


def run_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "run.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def last_step(run_dir: Path) -> int:
    return max((r["step"] for r in records(run_dir, "step")), default=-1)


def steps_per_sec(run_dir: Path) -> float:
    steps = [r for r in records(run_dir, "step") if r["step"] >= WARMUP]
    if len(steps) < 2:
        return float("nan")
    return (steps[-1]["step"] - steps[0]["step"]) / (steps[-1]["time"] - steps[0]["time"])


def wait_until(condition, timeout: float) -> bool:
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.1)
    return True


def info(report: Report, out: Path) -> None:
    result = subprocess.run(cli("info"), capture_output=True, text=True, timeout=120)
    (out / "info.txt").write_text(result.stdout + result.stderr)
    for line in result.stdout.splitlines():
        key, _, value = line.partition("  ")
        if key.strip() in ("device", "name", "compute_capability", "bf16", "gpu_memory_total_mb", "torch", "cuda",
                           "nccl", "driver", "peak_bf16_tflops", "cpu_matmul_gflops"):
            report.add(f"info: {key.strip()}", value.strip())
    if result.returncode:
        report.add("gpt-tui info", f"exit {result.returncode}: {result.stderr.strip()[-200:]}", "FAIL")


def headless_in_process(report: Report, config, compile_on: bool, out: Path):
    """One headless run through the engine; returns (tokens/s, run dir)."""
    import torch

    from tui_trainer.engine.config import with_overrides
    from tui_trainer.engine.events import RunFailed, StepMetrics
    from tui_trainer.engine.trainer import Trainer

    run_dir = out / f"headless-compile-{'on' if compile_on else 'off'}"
    cfg = with_overrides(config, {"compile": compile_on})
    seen: list[StepMetrics] = []
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer = Trainer(cfg, on_event=lambda e: seen.append(e) if isinstance(e, StepMetrics) else None,
                      run_dir=run_dir)
    result = trainer.run()
    wall = time.perf_counter() - started
    name = f"headless gpu.toml, compile {'on' if compile_on else 'off'}"
    if isinstance(result, RunFailed):
        report.add(name, result.message, "FAIL")
        return float("nan"), run_dir
    timed = [e for e in seen if e.step > WARMUP] or seen
    rate = statistics.median(e.tokens_per_sec for e in timed)
    mfu = [e.mfu for e in timed if e.mfu is not None]
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    shown_mfu = f"{100 * statistics.median(mfu):.1f}%" if mfu else "unknown"
    report.add(name, f"{rate:,.0f} tok/s, MFU {shown_mfu}", "ok")
    report.add(f"{name}: peak memory, wall", f"{peak:.2f} GiB allocated, {wall:.0f} s for {cfg.max_iters} steps "
               f"(dtype {trainer.dtype}, fused AdamW {trainer.updater.fused})")
    return rate, run_dir


def nanogpt_reference(config, steps: int) -> float:
    """nanoGPT's train.py loop over the engine's model class: tokens/s after warm-up."""
    import torch

    from tui_trainer.engine.checkpoint import model_config
    from tui_trainer.engine.data import build_corpus
    from tui_trainer.engine.device import resolve_device, resolve_dtype
    from tui_trainer.engine.model import GPT
    from tui_trainer.engine.tokenizer import get_tokenizer

    device = resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, device)
    corpus = build_corpus(config.data, get_tokenizer(config.tokenizer), config.vocab)
    data = corpus.train.long()
    B, T = config.batch_size, config.context_length
    torch.manual_seed(config.TORCH_SEED)
    model = GPT(model_config(config, corpus.vocab.size)).to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.learning_rate,
                                  betas=(0.9, 0.95), fused=device.type == "cuda")
    if config.compile:
        model = torch.compile(model)
    ctx = torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else torch.autocast(device.type,
                                                                                                   enabled=False)

    def get_batch():
        ix = torch.randint(len(data) - T, (B,))
        x = torch.stack([data[i:i + T] for i in ix])
        y = torch.stack([data[i + 1:i + 1 + T] for i in ix])
        if device.type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
        return x, y

    x, y = get_batch()
    for i in range(1, WARMUP + steps + 1):
        if i == WARMUP + 1:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with ctx:
            _, loss = model(x, y)
        x, y = get_batch()  # prefetch while the GPU works, as nanoGPT does
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i % config.log_interval == 0:
            loss.item()  # nanoGPT reads the loss at each log interval: a sync, as gpt-tui's report is
    loss.item()
    return steps * B * T / (time.perf_counter() - start)


def app_against_headless(report: Report, config_args: list[str], out: Path, steps: int) -> None:
    head_dir, app_dir = out / "ratio-headless", out / "ratio-app"
    run = subprocess.run(cli("train", *config_args, "--out", str(head_dir)), capture_output=True, text=True,
                         timeout=240)
    (out / "ratio-headless.log").write_text(run.stdout + run.stderr)
    app = PtyApp(cli(*config_args, "--out", str(app_dir), "--start"), log=out / "ratio-app.tty")
    finished = wait_until(lambda: run_status(app_dir) in ("finished", "stopped", "failed"), 240)
    app.press("ctrl+q")  # the app stays open on a finished run until the user quits
    ended = app.wait(30)
    app.kill()
    head, in_app = steps_per_sec(head_dir), steps_per_sec(app_dir)
    ok = run.returncode == 0 and finished and in_app / head >= 0.95
    report.add(f"app (pty 120x40) vs headless, {steps} steps", f"{in_app:.1f} vs {head:.1f} steps/s = "
               f"{in_app / head:.2f}x (goal >= 0.95x; app quit with exit {ended})", verdict(ok))


def oom(report: Report, run_dir: Path, out: Path) -> None:
    import torch

    if not torch.cuda.is_available():
        report.add("batch_size 32768 (cannot fit)", "CPU: the kernel, not torch, would answer: skipped")
        return
    ckpt = run_dir / "model.ckpt"
    before = hashlib.sha256(ckpt.read_bytes()).hexdigest() if ckpt.exists() else None
    run = subprocess.run(cli("train", "--resume", str(run_dir), "--set=batch_size=32768", "--set=compile=false",
                             "--set=max_iters=100000"), capture_output=True, text=True, timeout=180)
    (out / "oom.log").write_text(run.stdout + run.stderr)
    errors = [line for line in run.stderr.splitlines() if line.startswith("gpt-tui: error:")]
    after = hashlib.sha256(ckpt.read_bytes()).hexdigest() if ckpt.exists() else None
    ok = (run.returncode == 1 and len(errors) == 1 and "out of memory" in errors[0] and before is not None
          and before == after and "Traceback" not in run.stderr)
    report.add("batch_size 32768 (cannot fit)", f"exit {run.returncode}; "
               f"{errors[0][:160] if errors else run.stderr.strip()[-160:]}; checkpoint "
               f"{'unchanged' if before and before == after else 'CHANGED or missing'}", verdict(ok))


def save_and_hang_up(report: Report, config_args: list[str], out: Path) -> None:
    import torch

    run_dir = out / "app-save-hangup"
    app = PtyApp(cli(*config_args, "--set=max_iters=1000000", "--set=compile=false", "--out", str(run_dir),
                     "--start"), log=out / "save-hangup.tty")
    try:
        if not wait_until(lambda: last_step(run_dir) >= 20, 180):
            report.add("app ctrl+s and SIGHUP", "no 20 steps logged in 180 s", "FAIL")
            return
        app.press("ctrl+s")
        saved = wait_until(lambda: (run_dir / "model.ckpt").exists(), 60)
        step_at_save = torch.load(run_dir / "model.ckpt", weights_only=True)["step"] if saved else -1
        report.add("app ctrl+s on the GPU", f"model.ckpt at step {step_at_save}", verdict(step_at_save >= 20))
        wait_until(lambda: last_step(run_dir) >= step_at_save + 20, 60)
        app.hang_up()
        code = app.wait(60)
        status = json.loads((run_dir / "run.json").read_text())
        final = torch.load(run_dir / "model.ckpt", weights_only=True)["step"]
        logged = last_step(run_dir)
        ok = code == 129 and status.get("status") == "stopped" and final >= logged
        report.add("app SIGHUP (terminal closed)", f"exit {code}, run.json {status.get('status')}, checkpoint step "
                   f"{final} >= logged step {logged}", verdict(ok))
    finally:
        app.kill()


def two_gpus(report: Report, config_args: list[str], out: Path) -> None:
    import torch

    if torch.cuda.device_count() < 2:
        report.add("torchrun NCCL, 2 processes", f"{torch.cuda.device_count()} GPU here: skipped")
        return
    run_dir = out / "ddp"
    run = subprocess.run(cli("train", *config_args, "--set=processes=2", "--set=max_iters=100",
                             "--set=compile=false", "--out", str(run_dir)), capture_output=True, text=True,
                         timeout=400)
    (out / "ddp.log").write_text(run.stdout + run.stderr)
    resumed = subprocess.run(cli("train", "--resume", str(run_dir), "--set=processes=1", "--set=max_iters=120"),
                             capture_output=True, text=True, timeout=300)
    (out / "ddp-resume.log").write_text(resumed.stdout + resumed.stderr)
    ok = run.returncode == 0 and resumed.returncode == 0 and last_step(run_dir) == 120
    report.add("torchrun NCCL, 2 processes, 100 steps; resumed in 1", f"exit {run.returncode}, resume exit "
               f"{resumed.returncode}, last step {last_step(run_dir)}", verdict(ok))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--ratio-steps", type=int, default=1200, help="steps of the app-vs-headless runs")
    parser.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None)
    parser.add_argument("--allow-cpu", action="store_true", help="run the checks on the CPU, tiny config")
    parser.add_argument("--only", nargs="+", choices=CHECKS, metavar="CHECK",
                        help=f"run only these checks: {', '.join(CHECKS)} (reference and oom need headless)")
    args = parser.parse_args()
    import torch

    on_gpu = torch.cuda.is_available()
    if not on_gpu and not args.allow_cpu:
        print("gpu_check: no CUDA device here: skipped (run it on a GPU machine)")
        return 0
    from tui_trainer.engine.config import load_config

    out = args.out or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GPT_TUI_CACHE", str(out / "token-cache"))
    overrides = {"max_iters": args.steps, "eval_interval": args.steps, "sample_interval": 0,
                 "checkpoint_interval": 0, "out_dir": str(out)}
    if not on_gpu:
        overrides.update(CPU_TINY, device="cpu")
    config = load_config(REPO / "configs" / "gpu.toml", overrides)
    config_args = ["--config", str(REPO / "configs" / "gpu.toml"), *sets(overrides)]
    report = Report(out)
    started = time.time()
    steps = [("info", lambda: info(report, out))]
    state: dict = {}

    def headless_both() -> None:
        state["off"], state["run_dir"] = headless_in_process(report, config, False, out)
        state["on"], _ = headless_in_process(report, config, True, out)

    def reference() -> None:
        ref = nanogpt_reference(config, args.steps)
        ours = state.get("on" if config.compile else "off", float("nan"))
        report.add("nanoGPT-style loop, same config (compile on)", f"{ref:,.0f} tok/s; gpt-tui {ours:,.0f} tok/s = "
                   f"{ours / ref:.2f}x (goal >= 1.0x)", verdict(ours / ref >= 1.0))

    steps += [("headless", headless_both), ("reference", reference),
              ("app", lambda: app_against_headless(
                  report, config_args + [f"--set=max_iters={args.ratio_steps}"], out, args.ratio_steps)),
              ("oom", lambda: oom(report, state["run_dir"], out)),
              ("hangup", lambda: save_and_hang_up(report, config_args, out)),
              ("ddp", lambda: two_gpus(report, config_args, out))]
    for name, step in steps:
        if args.only and name not in args.only:
            continue
        try:
            step()
        except Exception as exc:  # one broken check must not hide the others
            report.add(name, f"{type(exc).__name__}: {exc}", "FAIL")
    device = torch.cuda.get_device_name() if on_gpu else "CPU (--allow-cpu, tiny config)"
    table = report.table(f"gpu_check on {device}, torch {torch.__version__}, {args.steps} steps, "
                         f"{time.time() - started:.0f} s in all")
    print("\n" + table)
    (out / "gpu_check.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
