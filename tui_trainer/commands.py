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
from .cli import EXIT_INTERRUPTED
from .engine.resources import default_config_path
from .engine.settings import with_user_settings
from .signals import SignalHandlers

EXIT_FAILED = 1


def run_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = parse_overrides(args.overrides)
    if args.data:
        overrides["data"] = args.data
    return overrides


def run_config(args: argparse.Namespace) -> TrainConfig:
    """--config (or configs/default.toml) plus --data and --set, validated together, and the
    user's settings file for what they leave out."""
    return with_user_settings(load_config(args.config or default_config_path(), run_overrides(args)))


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
    from .engine.control import TrainingControl
    from .engine.distributed import under_torchrun
    from .engine.events import RunFailed
    from .engine.trainer import Trainer

    plan = run_plan(args)
    config = plan.config  # a resume or fork reads its checkpoint here, once: its config decides on torchrun
    if config.processes > 1 and not under_torchrun():
        return _train_with_torchrun(plan, config)
    reporter = ConsoleReporter()
    control = TrainingControl()
    trainer = Trainer(plan, reporter, control, progress=reporter.tokenizing)
    with stop_on_signals(control) as signals:
        result = trainer.run()
    reporter.close()
    if isinstance(result, RunFailed):
        return 2 if result.kind == "input" else EXIT_FAILED
    return signals.exit_code or 0


def run_plan(args: argparse.Namespace):
    """A new run (--config, --data, --set), or --resume / --fork with --set as its overrides."""
    from .engine.run_plan import RunPlan

    if args.resume and args.fork:
        raise ConfigError(["--resume and --fork cannot be combined: --resume continues a run in its folder, "
                           "--fork starts a new one from it"])
    if (args.resume or args.fork) and args.config:
        raise ConfigError([f"--config cannot be combined with --{'resume' if args.resume else 'fork'}: the "
                           "checkpoint holds the config; change keys with --set"])
    if args.resume and args.out:
        raise ConfigError([f"--out cannot be combined with --resume: a resume continues in its own folder; "
                           f"for a new one from it, use --fork {args.resume} --out {args.out}"])
    if args.resume:
        return RunPlan.resume(args.resume, run_overrides(args))
    if args.fork:
        return RunPlan.fork(args.fork, run_overrides(args), args.out)
    return RunPlan.new(run_config(args), args.out)


def _train_with_torchrun(plan, config: TrainConfig) -> int:
    """``processes`` > 1: run the same training under torchrun on this machine, sharing this
    terminal (rank 0 draws the progress). A signal sent to this process alone is passed on."""
    from .engine.launch import launch_job

    train_args = plan.torchrun_args(plan.job_dir(config))
    print(f"starting torchrun with {config.processes} processes (batch_size {config.batch_size} per process)",
          flush=True)
    job = launch_job(config.processes, train_args)
    with SignalHandlers(job.send_signal) as signals:
        code = job.wait()
    return signals.exit_code or code


def lr_find(args: argparse.Namespace) -> int:
    """The learning-rate range test (engine/lr_finder.py): a suggestion, and the curve it came from."""
    from .engine.lr_finder import RULE, find_lr
    from .engine.run_plan import RunPlan

    if args.fork and args.config:
        raise ConfigError(["--config cannot be combined with --fork: the checkpoint holds the config; change keys "
                           "with --set"])
    plan = RunPlan.fork(args.fork, run_overrides(args)) if args.fork else RunPlan.new(run_config(args))
    finding = find_lr(plan, steps=args.steps)
    if args.json:
        print(json.dumps(finding.to_json()))
        return 0
    shown = finding.points[::max(1, len(finding.points) // 12)]
    print("\n".join(f"  lr {lr:9.3g}  loss {loss:.4f}" for lr, loss in shown))
    print(f"{len(finding.points)} learning rates tried; {finding.stopped}")
    if finding.suggestion is None:
        print("no suggestion: the loss did not fall over enough steps; try more --steps or another config")
        return 1
    print(f"suggestion: learning_rate = {finding.suggestion:.3g} ({RULE})\n"
          f"try it: gpt-tui train --set learning_rate={finding.suggestion:.3g}")
    return 0


def fit_batch(args: argparse.Namespace) -> int:
    """The micro-batch to train with (engine/batch_finder.py), and the --set line that uses it."""
    from .engine.batch_finder import describe_trial, fit_batch as find

    config = run_config(args)
    found = find(config, args.tokens_per_step)
    if args.json:
        print(json.dumps(found.to_json()))
        return 0
    print("\n".join(f"  {describe_trial(trial)}" for trial in found.tried))
    print(f"batch_size = {found.batch_size}, grad_accum_steps = {found.grad_accum_steps} on {found.device} "
          f"({found.rule})\ntry it: gpt-tui train --set batch_size={found.batch_size} "
          f"--set grad_accum_steps={found.grad_accum_steps}")
    return 0


def sample(args: argparse.Namespace) -> int:
    """Print samples as they are generated; Ctrl+C ends them with what was generated (exit 130)."""
    from rich.console import Console
    from rich.text import Text

    from .engine.checkpoint import resolve_checkpoint
    from .engine.device import resolve_device
    from .engine.sampling import generate, load_for_sampling, sample_problems
    from .token_text import TERMINAL_COLOURS, legend

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
    console = Console(highlight=False)
    # A Ctrl+C must reach the loop even where SIGINT came ignored (a `&` job of a script, a test runner).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    objects = []
    for path in paths:
        model, tokenizer, vocab, step = load_for_sampling(path, device)
        if args.compare is not None and not args.json:
            console.rule(Text(f"seed {seed} · step {step} · {path}"), style="dim")
        stream = TokenStream(console, args.prompt, args.show_probs, quiet=args.json)
        generation = generate(model, tokenizer, vocab, args.prompt, args.max_new_tokens, args.temperature,
                              args.top_k, args.top_p, seed, on_token=stream.show)
        stream.end(generation)
        objects.append(dict(checkpoint=str(path), step=step, **generation.to_json()))
        if generation.interrupted:
            break
    if args.json:
        print(json.dumps(objects[0] if args.compare is None else {"prompt": args.prompt, "seed": seed,
                                                                   "samples": objects}, ensure_ascii=False))
    elif args.show_probs:
        console.print(legend(TERMINAL_COLOURS), style="dim")
    return EXIT_INTERRUPTED if objects[-1].get("interrupted") else 0


class TokenStream:
    """Prints a generation token by token as it is drawn: the prompt, then each token's piece
    (coloured by its probability with --show-probs). Everything is shown escaped: a prompt or a
    sample is data and never drives the terminal. ``quiet`` (--json) prints nothing."""

    def __init__(self, console, prompt: str, colours: bool, quiet: bool = False):
        from rich.text import Text

        from .engine.safe_text import visible
        from .token_text import TERMINAL_COLOURS, token_text

        self.console, self.quiet, self.last = console, quiet, ""  # last: the piece printed for the latest token
        # A token as printed: coloured by its probability, or its piece plain.
        self.render = (lambda token: token_text("", [token], TERMINAL_COLOURS)) if colours else \
            (lambda token: Text(token["piece"]))
        self.plain = Text
        if not quiet:
            console.print(Text(visible(prompt), style="bold" if colours else ""), end="", soft_wrap=True)

    def show(self, token: dict) -> None:
        self.last = token["piece"]
        if not self.quiet:
            self.console.print(self.render(token), end="", soft_wrap=True)

    def end(self, generation) -> None:
        """The bytes of a character cut off at the end (added to the last token once it ended)."""
        if not self.quiet:
            tail = generation.tokens[-1]["piece"][len(self.last):] if generation.tokens else ""
            self.console.print(self.plain(tail), soft_wrap=True)


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
    config = with_user_settings(config)  # a run this app starts later notifies as the user's settings say
    return _run_app(lambda stderr: create_app(config, stderr=stderr, watch=run_dir), run_dir / "watch-stderr.log")


def open_app_on_sweep(sweep_dir: Path) -> int:
    """``gpt-tui sweep --watch DIR``: the app on the Sweep screen, the form holding the best
    trial's config when there is one (F5 then trains it), else the default config."""
    from .engine.sweep_study import BEST_TOML, holds_sweep
    from .ui.app import create_app

    sweep_dir = Path(sweep_dir).expanduser()
    if not holds_sweep(sweep_dir):
        raise ConfigError([f"{str(sweep_dir)!r} is not a sweep folder (it has no sweep.json): pass the folder "
                           "`gpt-tui sweep` printed"])
    best = sweep_dir / BEST_TOML
    config = with_user_settings(load_config(best if best.is_file() else default_config_path()))
    return _run_app(lambda stderr: create_app(config, run_dir=None, stderr=stderr, sweep=sweep_dir),
                    sweep_dir / "watch-stderr.log")


def set_live(args: argparse.Namespace) -> int:
    """Change live keys of a run another process trains: 0 once the values asked for are in
    force (whoever applied them), 2 for a change the run refuses, 1 when they are not in force
    when the run ends or the timeout passes."""
    import time

    from .engine.config import config_from_dict
    from .engine.control import send_change
    from .engine.errors import RunDirError
    from .engine.events import ChangeRefused, HparamsChanged, RunFailed, RunFinished
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

    def pending() -> dict:  # the keys whose asked-for value is not in force yet (config.toml follows changes)
        return check_live_change(config_from_dict(read_run_config(run_dir)), values, follower.step)

    follower = MetricsFollower(run_dir)
    follower.poll()  # the history so far: only what follows the request answers it
    if not pending():
        print(f"nothing to change: {run_dir} trains with these values already")
        return 0
    request = send_change(run_dir, values, "cli")
    deadline = time.monotonic() + args.timeout
    ended = None
    while time.monotonic() < deadline and ended is None:
        for event in follower.poll():
            if isinstance(event, HparamsChanged) and event.request == request:
                print(event_line(event))
                return 0
            if isinstance(event, ChangeRefused) and event.request == request:
                print(f"gpt-tui: error: {event_line(event)}", file=sys.stderr)
                return 2
            if isinstance(event, (RunFinished, RunFailed)):
                ended = event
        time.sleep(0.1)
    try:
        if not pending():  # applied by another request meanwhile (two clients asked for the same)
            print(f"in force: {', '.join(f'{key} = {value!r}' for key, value in values.items())}")
            return 0
    except ConfigError:
        pass  # the run's config no longer reads: the values are not known to be in force
    if ended is not None:
        print(f"gpt-tui: error: the run ended at step {ended.step} before applying the change", file=sys.stderr)
    else:
        print(f"gpt-tui: error: {run_dir} did not apply the change within {args.timeout:g} s; it applies requests "
              "at step boundaries, so a very slow step delays it: watch its metrics.jsonl for an \"hparams\" line",
              file=sys.stderr)
    return EXIT_FAILED


def runs(args: argparse.Namespace) -> int:
    """The Runs screen's table, for scripts and a quick look over SSH."""
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from .engine.errors import RunDirError, not_a_folder
    from .engine.runs import list_runs
    from .engine.safe_text import visible
    from .runs_table import COLUMNS, run_cells

    if not Path(args.out_dir).is_dir():
        raise RunDirError(f"runs folder {args.out_dir!r}: {not_a_folder(Path(args.out_dir))}; pass the out_dir your "
                          "runs were written to (default: runs)")
    found = list_runs(args.out_dir)
    if args.sort == "best":
        found.sort(key=lambda run: run.best_val_loss)
    rows = [(visible(str(run.path)), *run_cells(run)) for run in found]  # the path, to paste into watch or --resume
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
    from .engine.rundir import unwritable
    from .ui.crash import report_crash
    from .ui.native_stderr import NativeStderr

    stderr = NativeStderr()
    try:
        stderr.start(stderr_log)
    except OSError as exc:  # --out names a file, or a path through one
        raise unwritable(stderr_log.parent, exc) from None
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
