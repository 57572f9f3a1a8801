"""The bodies of `gpt-tui` commands; each imports torch (and textual) only when it runs."""
from __future__ import annotations

import argparse
import json
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from .engine.config import TrainConfig, load_config, parse_overrides
from .engine.errors import CheckpointError, ConfigError
from .engine.resources import default_config_path
from .signals import SignalHandlers

EXIT_FAILED = 1


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = parse_overrides(args.overrides)
    if args.data:
        overrides["data"] = args.data
    return overrides


def run_config(args: argparse.Namespace) -> TrainConfig:
    """--config (or configs/default.toml) plus --data and --set, validated together."""
    return load_config(args.config or default_config_path(), run_overrides(args))


def stop_on_signals(control) -> SignalHandlers:
    """SIGINT, SIGTERM and SIGHUP ask the trainer to stop at the next step boundary and save.
    A second Ctrl+C interrupts at once, for a user who really means it."""
    interrupted = []

    def stop(signum: int) -> None:
        if signum == signal.SIGINT:
            if interrupted:
                raise KeyboardInterrupt
            interrupted.append(signum)
        control.stop(f"received {signal.Signals(signum).name}")
    return SignalHandlers(stop)


def train(args: argparse.Namespace) -> int:
    from .console import ConsoleReporter
    from .engine.checkpoint import read_resumption
    from .engine.control import TrainingControl
    from .engine.distributed import under_torchrun
    from .engine.events import RunFailed
    from .engine.trainer import Trainer

    source = args.resume or args.fork
    if args.resume and args.fork:
        raise ConfigError(["--resume and --fork cannot be combined: --resume continues a run in its folder, "
                           "--fork starts a new one from it"])
    if source and args.config:
        raise ConfigError([f"--config cannot be combined with --{'resume' if args.resume else 'fork'}: the "
                           "checkpoint holds the config; change keys with --set"])
    # The checkpoint is read once: its config decides on torchrun, then the trainer starts from it.
    read = read_resumption(source, run_overrides(args), "resuming" if args.resume else "forking") if source else None
    config = read.config if read else run_config(args)
    if config.processes > 1 and not under_torchrun():
        return _train_with_torchrun(args, config)
    reporter = ConsoleReporter()
    control = TrainingControl()
    trainer = Trainer(None if read else config, reporter, control, run_dir=args.out,
                      resume=read if args.resume else None, fork=read if args.fork else None,
                      progress=reporter.tokenizing)
    with stop_on_signals(control) as signals:
        result = trainer.run()
    reporter.close()
    if isinstance(result, RunFailed):
        return 2 if result.kind == "input" else EXIT_FAILED
    return signals.exit_code or 0


def _train_with_torchrun(args: argparse.Namespace, config: TrainConfig) -> int:
    """``processes`` > 1: run the same training under torchrun on this machine, sharing this
    terminal (rank 0 draws the progress). A signal sent to this process alone is passed on."""
    from pathlib import Path

    from .engine.launch import fork_args, launch_job, prepare_run_dir, resume_args
    from .engine.rundir import new_run_dir

    if args.resume:
        train_args = resume_args(args.resume, run_overrides(args))
    else:
        run_dir = Path(args.out) if args.out else new_run_dir(config)
        train_args = fork_args(args.fork, run_overrides(args), run_dir) if args.fork else prepare_run_dir(config, run_dir)
    print(f"starting torchrun with {config.processes} processes (batch_size {config.batch_size} per process)",
          flush=True)
    job = launch_job(config.processes, train_args)
    with SignalHandlers(job.send_signal) as signals:
        code = job.wait()
    return signals.exit_code or code


def sample(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.text import Text

    from .engine.checkpoint import resolve_checkpoint
    from .engine.device import resolve_device
    from .engine.sampling import generate_from_checkpoint, sample_problems
    from .token_text import TERMINAL_COLOURS, legend, token_text

    problems = sample_problems(args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    if problems:
        # named as the options are: "--top-k 0: must be ..."
        raise ConfigError([f"--{name.replace('_', '-')} {rest}" for name, rest in (p.split(" ", 1) for p in problems)])
    paths = [resolve_checkpoint(args.checkpoint, prefer=("best.ckpt", "model.ckpt"))]
    seed = args.seed
    if args.compare is not None:
        paths += compare_with(paths[0], args.compare)
        if seed is None:
            seed = secrets.randbelow(2**31)  # one seed for all, printed so the comparison can be repeated
    device = resolve_device(args.device)
    samples = [generate_from_checkpoint(path, args.prompt, args.max_new_tokens, args.temperature, args.top_k,
                                        args.top_p, seed, device) for path in paths]
    if args.json:
        objects = [dict(checkpoint=str(path), step=step, **generation.to_json())
                   for path, (generation, step) in zip(paths, samples)]
        print(json.dumps(objects[0] if args.compare is None else {"prompt": args.prompt, "seed": seed,
                                                                   "samples": objects}, ensure_ascii=False))
        return 0
    console = Console(highlight=False)
    for path, (generation, step) in zip(paths, samples):
        if args.compare is not None:
            console.rule(Text(f"seed {seed} · step {step} · {path}"), style="dim")
        if args.show_probs:
            console.print(token_text(generation.prompt, generation.tokens, TERMINAL_COLOURS))
        else:
            console.print(generation.text, markup=False)  # model output is data, not markup
    if args.show_probs:
        console.print(legend(TERMINAL_COLOURS), style="dim")
    return 0


def compare_with(first: Path, named: list[str]) -> list[Path]:
    """The checkpoints `--compare` names; when it names none, those the first one's run kept."""
    from .engine.checkpoint import resolve_checkpoint
    from .engine.rundir import compared_checkpoints

    if named:
        return [resolve_checkpoint(path) for path in named]
    others: list[Path] = []
    for path in compared_checkpoints(first.parent):  # a kept file can be a hard link of model.ckpt: once
        if not any(path.samefile(seen) for seen in [first, *others]):
            others.append(path)
    if not others:
        raise CheckpointError(f"{str(first.parent)!r} kept no other checkpoint to compare with: name some after "
                              "--compare, or train with keep_checkpoints = N")
    return others


def info() -> int:
    import torch

    from .engine.device import device_info
    from .engine.mfu import gpu_peak_flops, measure_cpu_matmul

    details = device_info()
    if details["device"].startswith("cuda"):
        if "driver" not in details:
            details["driver"] = "unknown: pip install 'gpt-tui[gpu]' (nvidia-ml-py) to read it"
        peak = gpu_peak_flops(details["name"], torch.bfloat16)
        details["peak_bf16_tflops"] = f"{peak / 1e12:,.0f} (datasheet, dense)" if peak else "unknown (not in the table)"
    details["cpu_matmul_gflops"] = (f"{measure_cpu_matmul() / 1e9:,.1f} (float32 1024x1024 matmul, "
                                    f"{torch.get_num_threads()} threads, measured now)")
    width = max(map(len, details))
    for key, value in details.items():
        if value is not None:
            print(f"{key:<{width}}  {value}")
    return 0


def check_data(config: TrainConfig) -> tuple[int, int]:
    """Read the corpus once before the app opens, so bad data is a clear line and exit 2.

    Returns (tokens, vocabulary size), which the form shows without reading the corpus again.
    """
    from .console import ConsoleReporter
    from .engine.data import build_corpus
    from .engine.tokenizer import get_tokenizer

    corpus = build_corpus(config.data, get_tokenizer(config.tokenizer), config.vocab,
                          progress=ConsoleReporter.tokenizing)
    corpus.check_fits(config.context_length)
    return corpus.raw_count, corpus.vocab.size


def app(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .ui.app import create_app

    config = run_config(args)
    corpus_figures = check_data(config)
    return _run_app(lambda stderr: create_app(config, run_dir=args.out, start=args.start, stderr=stderr,
                                              corpus_figures=corpus_figures),
                    Path(args.out or config.out_dir) / "gpt-tui-stderr.log")


def watch(args: argparse.Namespace) -> int:
    from .engine.config import config_from_dict
    from .engine.runs import check_run_dir, read_run_config
    from .ui.app import create_app

    run_dir = check_run_dir(args.run_dir)
    # The form shows the run's config when it reads; the dashboard works without it.
    try:
        config = config_from_dict(read_run_config(run_dir))
    except ConfigError:
        config = TrainConfig()
    return _run_app(lambda stderr: create_app(config, stderr=stderr, watch=run_dir), run_dir / "watch-stderr.log")


def set_live(args: argparse.Namespace) -> int:
    """Change live keys of a run another process trains; 0 once applied, 2 for a change it
    refuses, 1 when it did not apply it in time."""
    import time

    from .engine.config import config_from_dict
    from .engine.control import send_change
    from .engine.errors import RunDirError
    from .engine.events import HparamsChanged, LogMessage, RunFailed, RunFinished
    from .engine.follow import MetricsFollower, effective_status, read_status
    from .engine.live import check_live_change
    from .engine.runs import check_run_dir, read_run_config
    from .event_text import event_line

    run_dir = check_run_dir(args.run_dir)
    status = effective_status(read_status(run_dir))
    if status not in ("running", "paused"):
        raise RunDirError(f"run {run_dir} is not training ({status}): change keys as you resume it, with "
                          f"gpt-tui train --resume {run_dir} --set KEY=VALUE")
    values = parse_overrides(args.changes)
    follower = MetricsFollower(run_dir)
    follower.poll()  # the history so far: only what follows the request answers it
    if not check_live_change(config_from_dict(read_run_config(run_dir)), values, follower.step):
        print(f"nothing to change: {run_dir} trains with these values already")
        return 0
    request = send_change(run_dir, values, "cli")
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        for event in follower.poll():
            if isinstance(event, HparamsChanged) and event.request == request:
                print(event_line(event))
                return 0
            if isinstance(event, LogMessage) and event.text.startswith("change from the cli not applied"):
                print(f"gpt-tui: error: {event.text}", file=sys.stderr)
                return 2
            if isinstance(event, (RunFinished, RunFailed)):
                print(f"gpt-tui: error: the run ended at step {event.step} before applying the change", file=sys.stderr)
                return EXIT_FAILED
        time.sleep(0.1)
    print(f"gpt-tui: error: {run_dir} did not apply the change within {args.timeout:g} s; it applies requests at "
          "step boundaries, so a very slow step delays it: watch its metrics.jsonl for an \"hparams\" line",
          file=sys.stderr)
    return EXIT_FAILED


def runs(args: argparse.Namespace) -> int:
    """The Runs screen's table, for scripts and a quick look over SSH."""
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .engine.errors import RunDirError
    from .engine.runs import list_runs
    from .runs_table import COLUMNS, run_cells

    if not Path(args.out_dir).is_dir():
        raise RunDirError(f"runs folder {args.out_dir!r} does not exist: pass the out_dir your runs were written "
                          "to (default: runs)")
    found = list_runs(args.out_dir)
    if args.sort == "best":
        found.sort(key=lambda run: run.best_val_loss)
    rows = [(str(run.path), *run_cells(run)) for run in found]  # the path, to paste into watch or --resume
    if not found:
        print(f"no runs in {args.out_dir}/ yet")
    elif sys.stdout.isatty():
        table = Table(*COLUMNS, box=None)
        for row in rows:
            table.add_row(*map(Text, row))  # run names are data: Text, never console markup
        Console(highlight=False).print(table)
    else:  # tab-separated on a pipe: `gpt-tui runs --sort best | head -2 | cut -f1`
        for row in (COLUMNS, *rows):
            print("\t".join(row))
    return 0


def _run_app(make_app, stderr_log) -> int:
    """Run ``make_app(stderr)`` with native stderr sent to ``stderr_log``; a signal's exit code wins.
    A dashboard that failed exits 1 with one line that names its traceback's file."""
    from .ui.crash import report_crash
    from .ui.native_stderr import NativeStderr

    stderr = NativeStderr()
    stderr.start(stderr_log)
    application = make_app(stderr)
    try:
        result = application.run()  # after a detach, this returns when the run has ended
    finally:
        if not application.detached:  # a detached run's descriptors stay away from the terminal
            stderr.stop()
        application.restore_signals()
    code = application.signal_exit or result or 0
    if application.crash is not None:
        code, line = report_crash(application)
        print(line, file=sys.stderr, flush=True)
    _exit_if_input_thread_stuck(code)
    return code


def _exit_if_input_thread_stuck(code: int) -> None:
    """When the terminal vanished mid-exit, Textual's input thread can spin on the dead tty and
    keep the process alive forever. Everything is on disk by now (the trainer saved and synced
    before reporting its end), so leave without waiting for that thread."""
    import os
    import threading

    for thread in threading.enumerate():
        if thread.name == "textual-input":
            thread.join(1.0)
            if thread.is_alive():
                sys.stdout.flush()
                os._exit(code)
