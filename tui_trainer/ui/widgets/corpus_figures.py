"""The corpus figures the form shows (tokens, vocabulary), read in a worker thread."""
from __future__ import annotations

from typing import Callable

from ...engine.config import TrainConfig
from ...engine.errors import GptTuiError
from ..messages import CorpusInfo

ASK_ABOVE_BYTES = 64 << 20  # a corpus larger than this is read for the figures only on Enter


def corpus_key(config: TrainConfig) -> tuple:
    """What the corpus figures depend on."""
    return config.data, config.tokenizer, config.vocab


def read_figures(key: tuple, confirmed: bool, progress: Callable[[int, int], None]) -> CorpusInfo:
    """The figures of the corpus ``key`` names (tokenized into the cache on first use). One
    larger than ASK_ABOVE_BYTES is read only when ``confirmed``: a typo can name a whole disk."""
    from ...engine.data import build_corpus, corpus_bytes
    from ...engine.tokenizer import get_tokenizer

    data, tokenizer, vocab = key
    try:
        if not confirmed:
            size = corpus_bytes(data)
            if size > ASK_ABOVE_BYTES:
                return CorpusInfo(key, None, None, f"{size / 2**20:,.0f} MB to read: press Enter in the data field "
                                                   "to read it", ask=True)
        corpus = build_corpus(data, get_tokenizer(tokenizer), vocab, progress=progress)
        return CorpusInfo(key, corpus.raw_count, corpus.vocab.size)
    except GptTuiError as exc:
        return CorpusInfo(key, None, None, str(exc))
