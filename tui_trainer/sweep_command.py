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
from .engine.rundir import free_path, make_folder
from .signals import SignalHandlers

EXIT_INPUT = 2


def sweep(args: argparse.Namespace) -> int:
    from .engine.sweep_study import (clear_stop, create_study, load_study, local_storage, read_record,
                                     storage_field, write_record)

    _refuse_mixed(args)
    if args.watch:
        from .commands import open_app_on_sweep

        return open_app_on_sweep(Path(args.watch))
    salt = args.worker_index * 1000
    if args.resume:
        sweep_dir = Path(args.resume).expanduser()
        record = read_record(sweep_dir)
        if not isinstance(record.get("study_name"), str) or "storage" not in record:
            raise ConfigError([f"{str(sweep_dir)!r} holds no sweep (no readable sweep.json): pass the folder "
                               "`gpt-tui sweep` made"])
        storage, name = local_storage(sweep_dir, record["storage"]), record["study_name"]
        trials = record.get("trials")
        study, spec = load_study(name, storage, salt + (len(trials) if isinstance(trials, list) else 0))
    elif args.join:
        storage, name = args.join, args.study
        study, spec = load_study(name, storage, salt + os.getpid())
        sweep_dir = Path(args.out or Path(spec.trial_values({}).get("out_dir", "runs")) / name).expanduser()
        make_folder(sweep_dir)
    else:
        from .engine.sweep_spec import read_sweep_file

        spec = read_sweep_file(args.file)
        check_base(spec)
        sweep_dir = _new_sweep_dir(args, spec)
        storage, name = storage_field(sweep_dir, args.storage), sweep_dir.name
        study = create_study(spec, name, storage, salt)
    if args.resume or args.join:
        check_base(spec)
    if not args.child:
        # the spec as a sweep file of its own (what the Sweep screen reads, and a record of what ran)
        (sweep_dir / "sweep.toml").write_text(spec.to_toml(), encoding="utf-8")
        clear_stop(sweep_dir)
        write_record(study, spec, sweep_dir, storage)
        print(f"sweep {name}: {_budget(spec)}, {spec.sampler} + {spec.pruner}, in {sweep_dir}", flush=True)
    if args.workers > 1:
        return _supervise(args, spec, sweep_dir, name, storage)
    return _work(study, spec, sweep_dir, storage, args)


def check_base(spec) -> None:
    """The trials' config without the searched keys must make a run (a fork's checkpoint must
    have steps to train; the user's settings must read): said once, before any trial, rather
    than by every trial as it fails."""
    from .engine.config import config_from_dict
    from .engine.run_plan import RunPlan
    from .engine.settings import with_user_settings

    if spec.fork:
        RunPlan.fork(spec.fork, spec.fixed).config  # noqa: B018 - reads the checkpoint, checks max_iters
    else:
        with_user_settings(config_from_dict(spec.trial_values({})))


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
        path = free_path(Path(spec.trial_values({}).get("out_dir", "runs")).expanduser()
                         / f"sweep-{Path(args.file).stem}-{stamp}")
    make_folder(path)
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
    import optuna

    with SignalHandlers(on_signal) as signals:
        try:
            worker.run()
        except optuna.exceptions.OptunaError as exc:  # the storage failed under it (an RDB that went away)
            from .engine.sweep_study import SweepStorageError

            raise SweepStorageError(f"the sweep's storage failed: {exc}; its trials so far are kept: "
                                    "gpt-tui sweep --resume SWEEP_DIR (or --join) goes on") from None
    if worker.failed_input:
        return EXIT_INPUT
    if not args.child:
        _summary(best_trial(study), sweep_dir)
    return signals.exit_code or 0


def _summary(best, sweep_dir: Path) -> None:
    if best is None:
        print("no trial completed yet", flush=True)
        return
    from .engine.sweep_spec import params_text

    shown = params_text(best.params)
    run_dir = best.user_attrs.get("run_dir", "")
    print(f"best: trial {best.number}, val_loss {best.value:.4f}: {shown}\n"
          f"  its config: {sweep_dir / 'best.toml'} (gpt-tui --config)\n"
          f"  train it on: gpt-tui train --fork {run_dir} --set max_iters=N", flush=True)


def _supervise(args: argparse.Namespace, spec, sweep_dir: Path, name: str, storage) -> int:
    """--workers N: N worker processes, each on its own GPU where there are GPUs, else on its
    share of the CPU's cores; this process forwards signals and waits for them."""
    children = []
    on_cpu = str(spec.trial_values({}).get("device", "auto")) == "cpu"
    gpus = [] if on_cpu else _visible_gpus()
    threads = 0 if gpus else max(1, (os.cpu_count() or 1) // args.workers)
    for index in range(args.workers):
        env = dict(os.environ)
        if gpus:  # each worker sees one of the GPUs this process may use
            env["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
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


def _visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (its own list, if set)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    inherited = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return inherited[:count] if inherited else [str(i) for i in range(count)]

