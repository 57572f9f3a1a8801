"""The app in a terminal that the caller owns: a pty pair, for gpu_check.py and the tests.

It reads everything the app draws (so the app never blocks on a full terminal), types keys,
and hangs up by closing its side, as a dropped SSH connection does.
"""
from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import termios
import threading
import time
from pathlib import Path

KEYS = {"ctrl+s": b"\x13", "f7": b"\x1b[18~", "ctrl+q": b"\x11"}


class PtyApp:
    """The app in a terminal this script owns: it reads the screen output (so the app never
    blocks on a full pty), types keys, and hangs up by closing the terminal."""

    def __init__(self, command: list[str], cols: int = 120, rows: int = 40, log: Path | None = None):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: size the terminal before the app reads it, then become the app
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.execvpe(command[0], command, {**os.environ, "TERM": "xterm-256color"})
        self.log = open(log, "wb") if log else None
        self.tail = b""
        self.code: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                return
            if not data:
                return
            self.tail = (self.tail + data)[-65536:]
            if self.log:
                self.log.write(data)

    def press(self, key: str) -> None:
        os.write(self.fd, KEYS[key])

    def hang_up(self) -> None:
        os.close(self.fd)  # the session leader gets SIGHUP, as when an SSH connection drops

    def wait(self, timeout: float) -> int | None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
            time.sleep(0.1)
        return None

    def kill(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait(10)
