"""Leaving the terminal while the run trains on in this process (F10, or a hang-up with
on_hangup = "detach"), like tmux's detach without tmux.

The app has exited; its training thread goes on (Python waits for it before the process
ends, so the process exits when the run does). What is left to do here, once Textual has
given the terminal back: say where the run is, point every standard descriptor away from
the terminal (it may vanish at any moment, and a write must never block on it), and hand
the shell its prompt back.
"""
from __future__ import annotations

import os
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

TERMINAL_THREADS = ("textual-input", "textual-output")
RELEASE_AFTER = 0.2  # seconds the process is stopped so that the shell takes its terminal back


def _terminal_restored(timeout: float = 5.0) -> None:
    """Wait (a little) until Textual has let the terminal go: its input and output threads
    ended and the terminal back in line mode; then a moment more for its last writes (leaving
    the alternate screen) to land before ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (_line_mode() is False or any(
            t.name in TERMINAL_THREADS and t.is_alive() for t in threading.enumerate())):
        time.sleep(0.02)
    time.sleep(0.2)


def _line_mode() -> bool | None:
    """Whether the terminal is back in line (canonical) mode; None without a terminal."""
    try:
        return bool(termios.tcgetattr(0)[3] & termios.ICANON)
    except (termios.error, OSError):
        return None


def _in_foreground() -> bool:
    """Whether this process is the shell's foreground job on a terminal (then the shell waits for it)."""
    try:
        return os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


def _away_from_terminal(log: Path) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)


def _release_shell() -> None:
    """A shell waits for its foreground job until the job ends or stops: stop this process for
    a moment (a helper continues it), and the shell has its prompt back with the job running in
    the background. The training thread stops for those RELEASE_AFTER seconds, and no longer."""
    subprocess.Popen(["sh", "-c", f"sleep {RELEASE_AFTER}; kill -CONT {os.getpid()}"], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.kill(os.getpid(), signal.SIGSTOP)


def finish_detach(line: str | None, log: Path) -> None:
    """Run on a thread of its own once the app is closing (the main thread then waits for the
    run). ``line`` is shown when the terminal is still there (F10); None after a hang-up."""
    _terminal_restored()
    foreground = line is not None and _in_foreground()
    if line is not None:
        try:
            os.write(1, (line + "\n").encode())
        except OSError:
            pass  # the terminal went away meanwhile
    _away_from_terminal(log)
    if foreground:
        _release_shell()


def start_detach(line: str | None, log: Path) -> None:
    """Ignore further hang-ups, and let a stop and a continue be plain ones again rather than
    Textual's suspend and resume of its screen (signal handlers are set on the main thread);
    then finish on a thread."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTSTP, signal.SIG_DFL)
    signal.signal(signal.SIGCONT, signal.SIG_DFL)
    threading.Thread(target=finish_detach, args=(line, log), name="gpt-tui-detach", daemon=True).start()
