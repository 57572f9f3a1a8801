"""Every GPU path of gpt-tui in one command, one table: run it the moment a CUDA machine is there.

    python benchmarks/gpu_check.py [--steps 300] [--out DIR] [--nanogpt PATH]

1. `gpt-tui info`.
2. configs/gpu.toml headless for --steps steps, compile off and on: tokens/s, MFU, peak memory.
3. A nanoGPT-style loop written here (its get_batch with pinned memory, bf16 autocast, fused
   AdamW, grad clip, torch.compile, the loss read at each log interval), same config and GPU:
   tokens/s against gpt-tui's.
4. With --nanogpt: nanoGPT's own train.py, unmodified, at gpu.toml's shape (its
   shakespeare_char shape), char-level on the bundled corpus, beside gpt-tui at that shape.
5. gpu.toml under compile_mode "reduce-overhead" (CUDA graphs) against the default mode.
6. Muon + WSD at gpu.toml: steps/s against AdamW's.
7. configs/gpt2-small.toml: tokens/s and MFU (goal on an H100: >= 40%).
8. The app in a terminal (a pty this script owns, 120x40) against `gpt-tui train`, same config,
   --ratio-steps each: steps/s from each run's metrics.jsonl after warm-up, and the app's UI
   thread's CPU time (from /proc) while it trains.
9. A batch that cannot fit, resumed from the run of (2): one clear OOM line, exit 1, and the
   checkpoint unchanged.
10. ctrl+s, then a closed terminal (SIGHUP), in the app on the GPU: checkpoint step >= logged step.
11. With 2+ GPUs: torchrun over NCCL with 2 processes, then that checkpoint resumed in one.

Without CUDA it says it skipped and exits 0. ``--allow-cpu`` runs the same checks on the CPU
with a tiny config and compile off (to try the script itself without a GPU). The table is
printed and, with --out (default: $OUT when set), written to gpu_check.md there after every
check; runs, caches and logs go to a work folder the table names.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
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
CHECKS = ("info", "headless", "reference", "nanogpt", "modes", "muon", "gpt2", "app", "oom", "hangup", "ddp")  # in the order they run
CPU_TINY = {"d_model": 64, "num_blocks": 2, "num_heads": 2, "context_length": 64, "batch_size": 8,
            "tokenizer": "byte", "eval_iters": 2, "sample_interval": 0, "checkpoint_interval": 0, "compile": False}


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

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


def headless_in_process(report: Report, config, name: str, slug: str, out: Path, **changes):
    """One headless run through the engine, reported as ``name``; returns (tokens/s, MFU or
    None, run dir), tokens/s NaN when the run failed."""
    import torch

    from tui_trainer.engine.config import with_overrides
    from tui_trainer.engine.events import RunFailed, StepMetrics
    from tui_trainer.engine.trainer import Trainer

    run_dir = out / f"headless-{slug}"
    cfg = with_overrides(config, changes)
    seen: list[StepMetrics] = []
    fresh_compiler()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer = Trainer(cfg, on_event=lambda e: seen.append(e) if isinstance(e, StepMetrics) else None,
                      run_dir=run_dir)
    result = trainer.run()
    wall = time.perf_counter() - started
    if isinstance(result, RunFailed):
        report.add(name, result.message, "FAIL")
        return float("nan"), None, run_dir
    timed = [e for e in seen if e.step > WARMUP] or seen
    rate = statistics.median(e.tokens_per_sec for e in timed)
    mfu = [e.mfu for e in timed if e.mfu is not None]
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    shown_mfu = f"{100 * statistics.median(mfu):.1f}%" if mfu else "unknown"
    report.add(name, f"{rate:,.0f} tok/s, {rate / cfg.batch_size / cfg.context_length:.1f} steps/s, "
               f"MFU {shown_mfu}", "ok")
    report.add(f"{name}: peak memory, wall", f"{peak:.2f} GiB allocated, {wall:.0f} s for {cfg.max_iters} steps "
               f"(dtype {trainer.dtype}, fused AdamW {trainer.updater.fused})")
    return rate, statistics.median(mfu) if mfu else None, run_dir


def fresh_compiler() -> None:
    """Every in-process run compiles the same GPT.forward, and torch.compile's cache of it (and
    its recompile limit) is shared by all of them: start each run afresh, so none is measured
    eager or with dynamic shapes because of the runs before it."""
    import torch

    torch.compiler.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def nanogpt_reference(config, steps: int) -> float:
    """nanoGPT's train.py loop over the engine's model class: tokens/s after warm-up."""
    import torch

    from tui_trainer.engine.checkpoint import model_config
    from tui_trainer.engine.data import build_corpus
    from tui_trainer.engine.device import resolve_device, resolve_dtype
    from tui_trainer.engine.model import GPT
    from tui_trainer.engine.tokenizer import get_tokenizer

    fresh_compiler()
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


def compile_modes(report: Report, config, out: Path, default_rate: float) -> None:
    """gpu.toml under torch.compile's modes that cut kernel launches, against the default mode."""
    mode = "reduce-overhead"  # CUDA graphs; the max-autotune modes' kernel search alone outlasts the check
    rate, _, _ = headless_in_process(report, config, f"headless gpu.toml, compile_mode {mode}", f"mode-{mode}",
                                     out, compile=True, compile_mode=mode)
    report.add(f"compile_mode {mode} vs default", f"{rate / default_rate:.2f}x the default mode's tokens/s")


def muon_against_adamw(report: Report, config, out: Path, adamw_rate: float) -> None:
    """Muon + WSD at gpu.toml: its steps/s against AdamW's (the Newton-Schulz steps' cost)."""
    rate, _, _ = headless_in_process(report, config, "headless gpu.toml, Muon + WSD", "muon", out,
                                     optimizer="muon", lr_schedule="wsd", muon_lr=0.02)
    report.add("Muon + WSD vs AdamW, steps/s", f"{rate / adamw_rate:.2f}x AdamW's")


def gpt2_small(report: Report, overrides: dict, out: Path) -> None:
    """configs/gpt2-small.toml: tokens/s and MFU; nanochat logs about 40% MFU at that depth on an H100."""
    from tui_trainer.engine.config import load_config

    config = load_config(REPO / "configs" / "gpt2-small.toml", overrides)
    _, mfu, _ = headless_in_process(report, config, "headless gpt2-small.toml", "gpt2-small", out)
    if mfu is not None and config.device != "cpu":
        report.add("gpt2-small MFU", f"{100 * mfu:.1f}% (goal on an H100: >= 40%)", verdict(mfu >= 0.40))


def nanogpt_own(report: Report, nanogpt: Path | None, config, out: Path, steps: int, on_gpu: bool) -> None:
    """nanoGPT's own train.py (unmodified, from a scratch folder) at gpu.toml's shape, char-level
    on the bundled corpus, beside gpt-tui at the same shape and tokenizer (bytes: the corpus's
    characters): tokens/s and MFU."""
    if nanogpt is None:
        report.add("nanoGPT's own train.py", "no --nanogpt PATH given: skipped")
        return
    if not (nanogpt / "train.py").is_file():
        report.add("nanoGPT's own train.py", f"no train.py in {nanogpt}: skipped", "FAIL")
        return
    from vs_nanogpt import prepare_nanogpt

    scratch = prepare_nanogpt(nanogpt.resolve(), out)
    shape = {"n_layer": config.num_blocks, "n_head": config.num_heads, "n_embd": config.d_model,
             "block_size": config.context_length, "batch_size": config.batch_size, "dropout": config.dropout}
    # It reads the loss (a device sync) at each log interval: gpt-tui's, so both sync as often.
    args = [f"--{k}={v}" for k, v in shape.items()] + [
        "--dataset=orders", f"--device={'cuda' if on_gpu else 'cpu'}", f"--compile={config.compile}",
        f"--dtype={'bfloat16' if on_gpu else 'float32'}", f"--max_iters={steps}", f"--lr_decay_iters={steps}",
        f"--eval_interval={steps}", "--eval_iters=5", f"--log_interval={config.log_interval}",
        f"--out_dir={scratch / 'out'}"]
    # Its own "time Xms" is one iteration's, and the one that syncs: time the log lines as they come.
    stamps: list[tuple[float, int, float]] = []  # (arrival, iteration, its MFU figure)
    log = []
    proc = subprocess.Popen([sys.executable, "-u", "train.py", "config/train_shakespeare_char.py", *args],
                            cwd=scratch, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in proc.stdout:
            log.append(line)
            found = re.match(r"iter (\d+): loss [\d.]+, time [\d.]+ms, mfu (-?[\d.]+)%", line)
            if found:
                stamps.append((time.perf_counter(), int(found.group(1)), float(found.group(2))))
        code = proc.wait(timeout=900)
    finally:
        proc.kill()
    (out / "nanogpt.log").write_text("".join(log))
    timed = [(t, i, m) for t, i, m in stamps if WARMUP <= i < steps]  # the eval at iter `steps` left out
    if code or len(timed) < 2:
        report.add("nanoGPT's own train.py", f"exit {code}, {len(timed)} log lines after warm-up "
                   f"(--steps must exceed {WARMUP + 2 * config.log_interval}): {''.join(log)[-200:]}", "FAIL")
        return
    (t0, i0, _), (t1, i1, mfu_theirs) = timed[0], timed[-1]
    theirs = (i1 - i0) * config.batch_size * config.context_length / (t1 - t0)
    report.add("nanoGPT's own train.py, gpu.toml's shape, char-level",
               f"{theirs:,.0f} tok/s, MFU {mfu_theirs:.1f}% (its own figure, against an A100's 312 TFLOP/s)")
    ours, mfu, _ = headless_in_process(report, config, "gpt-tui, the same shape, byte tokenizer", "nanogpt-shape",
                                       out, tokenizer="byte")
    shown = f"; gpt-tui's MFU restated against an A100's 312: {100 * mfu * peak_tflops() / 312:.1f}%" \
        if mfu is not None and on_gpu else ""
    report.add("gpt-tui vs nanoGPT's train.py, tokens/s", f"{ours / theirs:.2f}x{shown}", verdict(ours >= theirs))


def peak_tflops() -> float:
    """This device's peak in TFLOP/s as gpt-tui's MFU uses it (to restate an MFU against another peak)."""
    import torch

    from tui_trainer.engine.mfu import peak_flops

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return (peak_flops(device, torch.bfloat16 if device.type == "cuda" else torch.float32) or float("nan")) / 1e12


def thread_cpu_seconds(pid: int) -> tuple[float, float]:
    """(the main thread's, the whole process's) CPU seconds so far, from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")

    def seconds(stat: Path) -> float:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime + stime

    return seconds(Path(f"/proc/{pid}/task/{pid}/stat")), seconds(Path(f"/proc/{pid}/stat"))


def app_against_headless(report: Report, config_args: list[str], out: Path, steps: int) -> None:
    head_dir, app_dir = out / "ratio-headless", out / "ratio-app"
    run = subprocess.run(cli("train", *config_args, "--out", str(head_dir)), capture_output=True, text=True,
                         timeout=240)
    (out / "ratio-headless.log").write_text(run.stdout + run.stderr)
    app = PtyApp(cli(*config_args, "--out", str(app_dir), "--start"), log=out / "ratio-app.tty")
    try:
        wait_until(lambda: last_step(app_dir) >= WARMUP, 240)
        cpu_before, wall_before, step_before = thread_cpu_seconds(app.pid), time.perf_counter(), last_step(app_dir)
        finished = wait_until(lambda: run_status(app_dir) in ("finished", "stopped", "failed"), 240)
        cpu_after, wall_after, step_after = thread_cpu_seconds(app.pid), time.perf_counter(), last_step(app_dir)
        app.press("ctrl+q")  # the app stays open on a finished run until the user quits
        ended = app.wait(30)
    finally:
        app.kill()  # never left holding the GPU for the checks after this one
    head, in_app = steps_per_sec(head_dir), steps_per_sec(app_dir)
    ok = run.returncode == 0 and finished and in_app / head >= 0.95
    report.add(f"app (pty 120x40) vs headless, {steps} steps", f"{in_app:.1f} vs {head:.1f} steps/s = "
               f"{in_app / head:.2f}x (goal >= 0.95x; app quit with exit {ended})", verdict(ok))
    ui, process = (after - before for after, before in zip(cpu_after, cpu_before))
    wall, steps_seen = wall_after - wall_before, max(1, step_after - step_before)
    report.add("app: the UI thread's CPU time while training", f"{100 * ui / wall:.0f}% of one core "
               f"({1000 * ui / steps_seen:.2f} ms per step; the whole process {100 * process / wall:.0f}%)")


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
    parser.add_argument("--nanogpt", type=Path, help="an unmodified nanoGPT checkout, for its own train.py's row")
    parser.add_argument("--allow-cpu", action="store_true", help="run the checks on the CPU, tiny config")
    parser.add_argument("--only", nargs="+", choices=CHECKS, metavar="CHECK",
                        help=f"run only these checks: {', '.join(CHECKS)} (reference, modes, muon and oom need headless)")
    args = parser.parse_args()
    import torch

    on_gpu = torch.cuda.is_available()
    if not on_gpu and not args.allow_cpu:
        print("gpu_check: no CUDA device here: skipped (run it on a GPU machine)")
        return 0
    from tui_trainer.engine.config import load_config

    # Runs, caches and logs go to a work folder; --out gets gpu_check.md alone (a device
    # machine sends back a few files only), rewritten after every check so a timeout keeps it.
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    out = args.out or work
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GPT_TUI_CACHE", str(work / "token-cache"))
    overrides = {"max_iters": args.steps, "eval_interval": args.steps, "sample_interval": 0,
                 "checkpoint_interval": 0, "out_dir": str(work)}
    if not on_gpu:
        overrides.update(CPU_TINY, device="cpu")
    config = load_config(REPO / "configs" / "gpu.toml", overrides)
    config_args = ["--config", str(REPO / "configs" / "gpu.toml"), *sets(overrides)]
    report = Report()
    started = time.time()
    steps = [("info", lambda: info(report, work))]
    state: dict = {}

    def needs_headless(name: str, check):
        """A check that compares with the headless runs' figures: skipped when they are not there."""
        return lambda: check() if "on" in state else report.add(name, "needs the headless check: skipped")

    def headless_both() -> None:
        state["off"], _, state["run_dir"] = headless_in_process(report, config, "headless gpu.toml, compile off",
                                                                "compile-off", work, compile=False)
        if on_gpu:  # on a CPU, inductor's compile of even the tiny model outlasts its run
            state["on"], _, _ = headless_in_process(report, config, "headless gpu.toml, compile on", "compile-on",
                                                    work, compile=True)
        else:
            state["on"] = state["off"]

    def reference() -> None:
        ref = nanogpt_reference(config, args.steps)
        ours = state.get("on" if config.compile else "off", float("nan"))
        report.add("nanoGPT-style loop, same config (compile on)", f"{ref:,.0f} tok/s; gpt-tui {ours:,.0f} tok/s = "
                   f"{ours / ref:.2f}x (goal >= 1.0x)", verdict(ours / ref >= 1.0))

    modes = (lambda: compile_modes(report, config, work, state["on"])) if on_gpu else \
        (lambda: report.add("compile modes", "CUDA graphs need a GPU: skipped"))
    steps += [("headless", headless_both), ("reference", needs_headless("reference", reference)),
              ("nanogpt", lambda: nanogpt_own(report, args.nanogpt, config, work, args.steps, on_gpu)),
              ("modes", needs_headless("compile modes", modes)),
              ("muon", needs_headless("Muon + WSD", lambda: muon_against_adamw(report, config, work, state["on"]))),
              ("gpt2", lambda: gpt2_small(report, overrides, work)),
              ("app", lambda: app_against_headless(
                  report, config_args + [f"--set=max_iters={args.ratio_steps}"], work, args.ratio_steps)),
              ("oom", needs_headless("batch_size 32768 (cannot fit)", lambda: oom(report, state["run_dir"], work))),
              ("hangup", lambda: save_and_hang_up(report, config_args, work)),
              ("ddp", lambda: two_gpus(report, config_args, work))]
    device = torch.cuda.get_device_name() if on_gpu else "CPU (--allow-cpu, tiny config)"

    def write_table() -> str:
        table = report.table(f"gpu_check on {device}, torch {torch.__version__}, {args.steps} steps, "
                             f"{time.time() - started:.0f} s so far; runs and logs in {work}")
        (out / "gpu_check.md").write_text(table + "\n")
        return table

    for name, step in steps:
        if args.only and name not in args.only:
            continue
        try:
            step()
        except Exception as exc:  # one broken check must not hide the others
            report.add(name, f"{type(exc).__name__}: {exc}", "FAIL")
        write_table()
    print("\n" + write_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
