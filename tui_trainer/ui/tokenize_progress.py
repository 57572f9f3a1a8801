"""First-time tokenization of a corpus, reported from whichever worker does it (the form's
corpus read, or a run being built) as ``TokenizeProgress`` messages."""
from __future__ import annotations

from typing import Callable

from textual.message_pump import MessagePump
from textual.worker import get_current_worker

from .messages import TokenizeProgress


class CorpusReadCancelled(Exception):
    """A corpus read overtaken by a newer path (or by quitting): stopped between blocks."""


def tokenize_progress(target: MessagePump) -> Callable[[int, int], None]:
    """The engine's progress callback, called on a worker thread: it posts to ``target``, and
    stops the read between blocks once the worker was cancelled."""
    def progress(done: int, total: int) -> None:
        if get_current_worker().is_cancelled:
            raise CorpusReadCancelled
        target.post_message(TokenizeProgress(done, total))
    return progress
