"""Starting a torchrun job on this machine when ``processes`` > 1, for the CLI and the app."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import INVOCATION_KEYS, TrainConfig, save_config
from .rundir import make_folder, refuse_existing_run, unwritable
from .runlock import RunLock


def torchrun_command(processes: int, train_args: list[str]) -> list[str]:
    """``torchrun --standalone --nproc_per_node=N -m tui_trainer train ...`` with this Python."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "tui_trainer", "train", *train_args]


def prepare_run_dir(config: TrainConfig, run_dir: Path) -> list[str]:
    """Write ``config`` into ``run_dir``; returns the train arguments that run it there."""
    RunLock.refuse_if_held(run_dir)
    refuse_existing_run(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, run_dir / "config.toml")
    except OSError as exc:
        raise unwritable(run_dir, exc) from None
    # config.toml never holds the command (config.INVOCATION_KEYS): it travels as an argument.
    return ["--config", str(run_dir / "config.toml"), "--out", str(run_dir),
            *_set_args({key: getattr(config, key) for key in INVOCATION_KEYS if getattr(config, key)})]


def resume_args(source: Path, run_dir: Path, overrides: dict[str, Any]) -> list[str]:
    """The train arguments that resume ``source`` (``run_dir`` or a checkpoint in it) with
    ``overrides`` (config keys) applied; refused at once while another process writes the run
    (torchrun's rank 0 would be refused later)."""
    RunLock.refuse_if_held(run_dir)
    return ["--resume", str(source), *_set_args(overrides)]


def fork_args(source: str | Path, overrides: dict[str, Any], run_dir: Path) -> list[str]:
    """The train arguments that fork ``source`` into ``run_dir`` (named here, so that every
    rank writes the same one), which must not hold a run yet."""
    RunLock.refuse_if_held(run_dir)
    refuse_existing_run(run_dir)
    make_folder(run_dir)  # torchrun's log goes there before rank 0 starts
    return ["--fork", str(source), "--out", str(run_dir), *_set_args(overrides)]


def _set_args(overrides: dict[str, Any]) -> list[str]:
    return [f"--set={key}={value}" for key, value in overrides.items()]


def launch_job(processes: int, train_args: list[str], log: Path | None = None) -> subprocess.Popen:
    """Start torchrun with ``processes`` ranks running ``gpt-tui train train_args``.

    With ``log``, the job's output goes to that file and the job gets its own session, so a
    closed terminal or a Ctrl+C reaches only the app, which then asks the job to stop (the app
    follows the run through its files). Without, the job shares this terminal (the CLI)."""
    command = torchrun_command(processes, train_args)
    # The trainer sets each rank's threads itself; saying so also spares torchrun's OMP warning.
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1)
                                                                                        // processes)))}
    if log is None:
        return subprocess.Popen(command, env=env)
    with open(log, "ab") as output:
        return subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                stderr=subprocess.STDOUT, start_new_session=True)


def launch_sweep(sweep_file: Path, sweep_dir: Path, workers: int = 1) -> subprocess.Popen:
    """``gpt-tui sweep SWEEP_FILE --out SWEEP_DIR`` in its own session, its output in
    SWEEP_DIR/sweep.log: the app watches it through its files, and quitting the app (or losing
    its terminal) leaves it running; ``gpt-tui sweep --watch`` opens it again."""
    return _sweep_process([str(sweep_file), "--out", str(sweep_dir)], sweep_dir, workers)


def resume_sweep(sweep_dir: Path, workers: int = 1) -> subprocess.Popen:
    """``gpt-tui sweep --resume SWEEP_DIR`` as :func:`launch_sweep` starts a sweep."""
    return _sweep_process(["--resume", str(sweep_dir)], sweep_dir, workers)


def _sweep_process(args: list[str], sweep_dir: Path, workers: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "tui_trainer", "sweep", *args, "--workers", str(workers)]
    with open(sweep_dir / "sweep.log", "ab") as output:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)
