"""After the dashboard failed: where the traceback goes, and the one line the terminal gets.

By the time this runs, the app's crash barrier (``GptTuiApp._handle_exception``) has asked the
app's own run to stop and save, and Textual has waited for the training thread, so the
checkpoint is on disk. A watched run or a torchrun job was left alone and goes on.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..engine.events import RunFailed, RunFinished

EXIT_CRASHED = 1


def _write_log(folders: list[Path], name: str, text: str) -> Path | None:
    """Append ``text`` to ``name`` in the first folder that takes it."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"--- gpt-tui dashboard failure, {stamp} ---\n{text}\n")
            return path
        except OSError:
            continue
    return None


def report_crash(app) -> tuple[int, str]:
    """Write the traceback where the user will look for it; return (exit code, the one line)."""
    error = app.crash
    what = f"the dashboard failed ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
    session = app.dashboard.session
    result = session.result if session else None
    followed = session.run_dir if session and not session.in_this_process else None
    if followed is not None:  # another process's run, or the torchrun job: it goes on untouched
        log = _write_log([Path(followed), Path(tempfile.gettempdir())], "watch-error.log", app.crash_traceback)
        outcome = f"the run goes on; follow it again with: gpt-tui watch {followed}"
    elif isinstance(result, (RunFinished, RunFailed)):
        log = _write_log([Path(result.run_dir), Path(tempfile.gettempdir())], "error.log", app.crash_traceback)
        saved = Path(result.run_dir) / "model.ckpt"
        if isinstance(result, RunFinished) and saved.exists():
            outcome = (f"training {result.status} at step {result.step} with {saved} saved; "
                       f"continue with: gpt-tui train --resume {result.run_dir}")
        else:
            outcome = f"the run ended at step {result.step}: {getattr(result, 'message', result.status)}"
    else:
        out_dir = Path((app.dashboard.form_config or app.config).out_dir).expanduser()
        log = _write_log([out_dir, Path(tempfile.gettempdir())], "gpt-tui-error.log", app.crash_traceback)
        outcome = "no run was going on"
    where = f"traceback in {log}" if log else "the traceback could not be written anywhere"
    return (app.signal_exit or EXIT_CRASHED), f"gpt-tui: error: {what}; {outcome}; {where}"
