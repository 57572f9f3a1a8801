"""Keep native stderr off the screen while the app runs.

Textual draws on file descriptor 2 (``sys.__stderr__``). C/C++ code (torch, BLAS, CUDA)
also writes to fd 2, which would tear the screen over SSH. So the terminal gets a fresh
descriptor of its own for Textual, and fd 2 points at a log file: first one in out_dir,
then ``RUN_DIR/stderr.log`` once a run has a directory. Logs left empty are removed at the end.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


class NativeStderr:
    def __init__(self) -> None:
        self._terminal_fd: int | None = None
        self._saved_dunder = sys.__stderr__
        # The logs and the folders made for them: an app that wrote nothing natively leaves
        # none of them behind (opening it on --out NEW made NEW/ and an empty log before).
        self._made: list[Path] = []

    def start(self, path: Path) -> None:
        """Give Textual its own copy of the terminal, then send fd 2 to ``path``."""
        self._terminal_fd = os.dup(2)
        sys.__stderr__ = os.fdopen(os.dup(self._terminal_fd), "w", encoding="utf-8", errors="replace")
        self.redirect(path)

    def redirect(self, path: Path) -> None:
        self._made += [folder for folder in reversed(path.parents) if not folder.exists()]
        if not path.exists():
            self._made.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 2)
        os.close(fd)

    def stop(self) -> None:
        """Point fd 2 back at the terminal."""
        if self._terminal_fd is None:
            return
        os.dup2(self._terminal_fd, 2)
        os.close(self._terminal_fd)
        self._terminal_fd = None
        sys.__stderr__ = self._saved_dunder
        self.tidy()

    def tidy(self) -> None:
        """Remove the logs this made that are still empty, and the folders made for them that
        are empty now. Safe to call again, and from the thread that ends a stuck exit."""
        for made in reversed(self._made):  # a file before its folder, a folder before its parent
            try:
                if made.is_dir():
                    made.rmdir()  # only if empty
                elif made.stat().st_size == 0:
                    made.unlink()
            except OSError:
                continue  # not empty, or gone: either way nothing to tidy
