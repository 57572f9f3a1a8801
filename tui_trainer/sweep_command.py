"""``gpt-tui sweep``: start, resume or join an Optuna study whose trials are gpt-tui runs, with
one or more workers on this machine; or open the app on a sweep to watch it (``--watch``)."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from .engine.errors import ConfigError
from .signals import SignalHandlers

EXIT_INPUT = 2


def sweep(args: argparse.Namespace) -> int:
    from .engine.sweep_study import (clear_stop, create_study, load_study, read_record, storage_field,
                                     write_record)

    _refuse_mixed(args)
    if args.watch:
        from .commands import open_app_on_sweep

        return open_app_on_sweep(Path(args.watch))
    salt = args.worker_index * 1000
    if args.resume:
        sweep_dir = Path(args.resume).expanduser()
        record = read_record(sweep_dir)
        if not record.get("study_name") or "storage" not in record:
            raise ConfigError([f"{str(sweep_dir)!r} holds no sweep (no readable sweep.json): pass the folder "
                               "`gpt-tui sweep` made"])
        storage, name = record["storage"], record["study_name"]
        study, spec = load_study(name, storage, salt + len(record.get("trials", [])))
    elif args.join:
        storage, name = args.join, args.study
        study, spec = load_study(name, storage, salt + os.getpid())
        sweep_dir = Path(args.out or Path(spec.trial_values({}).get("out_dir", "runs")) / name).expanduser()
        sweep_dir.mkdir(parents=True, exist_ok=True)
    else:
        from .engine.sweep_spec import read_sweep_file

        spec = read_sweep_file(args.file)
        sweep_dir = _new_sweep_dir(args, spec)
        storage, name = storage_field(sweep_dir, args.storage), sweep_dir.name
        study = create_study(spec, name, storage, salt)
    if not args.child:
        # the spec as a sweep file of its own (what the Sweep screen reads, and a record of what ran)
        (sweep_dir / "sweep.toml").write_text(spec.to_toml(), encoding="utf-8")
        clear_stop(sweep_dir)
        write_record(study, spec, sweep_dir, storage)
        print(f"sweep {name}: {_budget(spec)}, {spec.sampler} + {spec.pruner}, in {sweep_dir}", flush=True)
    if args.workers > 1:
        return _supervise(args, sweep_dir, name, storage)
    return _work(study, spec, sweep_dir, storage, args)


def _refuse_mixed(args: argparse.Namespace) -> None:
    named = [flag for flag, value in (("SWEEP.toml", args.file), ("--resume", args.resume), ("--join", args.join),
                                      ("--watch", args.watch)) if value]
    if len(named) != 1:
        raise ConfigError([f"{' and '.join(named) or 'nothing'}: name one of SWEEP.toml (a new sweep), --resume "
                           "SWEEP_DIR, --join URL --study NAME, or --watch SWEEP_DIR"])
    if args.join and not args.study:
        raise ConfigError(["--join needs --study NAME: the study's name, as `gpt-tui sweep` printed it"])
    if args.storage and not args.file:
        raise ConfigError(["--storage is for a new sweep; --resume reads it from sweep.json, --join takes the URL"])
    if args.out and (args.resume or args.watch):
        raise ConfigError(["--out names a new sweep's folder; --resume and --watch take the sweep folder itself"])


def _new_sweep_dir(args: argparse.Namespace, spec) -> Path:
    from .engine.sweep_study import holds_sweep

    if args.out:
        path = Path(args.out).expanduser()
        if holds_sweep(path):
            raise ConfigError([f"--out {str(path)!r} holds a sweep already: continue it with "
                               f"`gpt-tui sweep --resume {path}`, or name a new folder"])
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        from .engine.rundir import free_path

        path = free_path(Path(spec.trial_values({}).get("out_dir", "runs")).expanduser()
                         / f"sweep-{Path(args.file).stem}-{stamp}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _budget(spec) -> str:
    parts = [f"{spec.trials} trials" if spec.trials else "", f"{spec.minutes:g} minutes" if spec.minutes else ""]
    return " or ".join(p for p in parts if p)


def _work(study, spec, sweep_dir: Path, storage, args: argparse.Namespace) -> int:
    """This process is a worker: trials one after another until the budget is met."""
    from .engine.sweep_study import best_trial
    from .engine.sweep_worker import SweepWorker

    prefix = f"[{args.worker_name}] " if args.worker_name else ""

    def say(line: str) -> None:
        print(prefix + line, flush=True)
    worker = SweepWorker(study, spec, sweep_dir, storage, say, threads=args.threads)

    def on_signal(signum: int) -> None:
        worker.stop(f"received {signal.Signals(signum).name}")
    with SignalHandlers(on_signal) as signals:
        worker.run()
    if worker.failed_input:
        return EXIT_INPUT
    if not args.child:
        _summary(best_trial(study), sweep_dir)
    return signals.exit_code or 0


def _summary(best, sweep_dir: Path) -> None:
    if best is None:
        print("no trial completed yet", flush=True)
        return
    shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
    run_dir = best.user_attrs.get("run_dir", "")
    print(f"best: trial {best.number}, val_loss {best.value:.4f}: {shown}\n"
          f"  its config: {sweep_dir / 'best.toml'} (gpt-tui --config)\n"
          f"  train it on: gpt-tui train --fork {run_dir} --set max_iters=N", flush=True)


def _supervise(args: argparse.Namespace, sweep_dir: Path, name: str, storage) -> int:
    """--workers N: N worker processes, each on its own GPU where there are GPUs, else on its
    share of the CPU's cores; this process forwards signals and waits for them."""
    children = []
    gpus = _gpu_count()
    threads = 0 if gpus else max(1, (os.cpu_count() or 1) // args.workers)
    for index in range(args.workers):
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
        command = [sys.executable, "-m", "tui_trainer", "sweep", "--child", "--workers", "1",
                   "--worker-index", str(index + 1), "--worker-name", f"w{index + 1}", "--threads", str(threads)]
        command += (["--resume", str(sweep_dir)] if not args.join else
                    ["--join", args.join, "--study", name, "--out", str(sweep_dir)])
        children.append(subprocess.Popen(command, env=env))

    def forward(signum: int) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)
    with SignalHandlers(forward) as signals:
        codes = [child.wait() for child in children]
    from .engine.sweep_study import best_trial, load_study

    study, _ = load_study(name, storage)
    _summary(best_trial(study), sweep_dir)
    if signals.exit_code:
        return signals.exit_code
    return EXIT_INPUT if EXIT_INPUT in codes else next((code for code in codes if code), 0)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0

