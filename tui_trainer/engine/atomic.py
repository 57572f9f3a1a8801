"""Writing a file so that a reader, a crash or a full disk never leaves half of it: write a
temp file beside it, then rename it over the old one. Used for checkpoints, run.json, the
token caches and request files."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


def _fsync(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, durable: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``path`` to write; once the block ends, rename it over ``path``.

    A failure at any point leaves the previous file untouched and removes the temp file. Its
    name starts with a dot, so folder scans (requests, runs) skip it. ``durable`` also syncs
    the file and the rename to disk (checkpoints: what a power cut must not lose)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        with contextlib.suppress(OSError):  # not every file system syncs a folder
            _fsync(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
