"""Corpus reading, the on-disk token cache, the 90/10 split and batch sampling.

Text is read and tokenized in blocks that end at a newline, so a corpus of hundreds of
MB never sits in memory as Python ints. Token ids are cached as a flat uint32 file keyed
by the corpus content and the tokenizer, and the model ids (after the vocabulary map) as
an int32 file beside it; reopening the same corpus hashes it and maps both files.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .atomic import atomic_path
from .errors import DataError, missing
from .resources import BUNDLED_CORPUS, bundled_path
from .tokenizer import SLICE, Tokenizer, VocabMap

BLOCK_BYTES = 1 << 20          # text handed to the tokenizer at once
BATCH_BLOCKS = 16              # blocks tokenized in parallel
CACHE_FORMAT = 1
TRAIN_FRACTION = 0.9           # the chapter's split

Progress = Callable[[int, int], None]  # (bytes done, bytes total)


def resolve_data_path(data: str) -> Path:
    """The corpus path a config names; empty means the bundled corpus."""
    path = Path(data).expanduser() if data else bundled_path(BUNDLED_CORPUS)
    if not path.exists():
        raise DataError(f"data path {str(path)!r} {missing(path)}: check the path, or leave data empty "
                        "for the bundled corpus")
    return path.resolve()


def _corpus_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = [p for p in sorted(path.rglob("*")) if p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    texts = [p for p in files if _looks_like_text(p)]
    if not texts:
        raise DataError(f"data folder {str(path)!r} holds no text files: add .txt, .md, .csv or .jsonl files")
    return texts


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(8192)
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a multi-byte character cut at the edge
    return True


def _read_blocks(path: Path) -> Iterator[bytes]:
    """Raw blocks of a file, each ending at a newline (or at the end of the file)."""
    with open(path, "rb") as handle:
        rest = b""
        while chunk := handle.read(BLOCK_BYTES):
            buffer = rest + chunk
            cut = buffer.rfind(b"\n") + 1
            if cut == 0:  # one very long line: cut anywhere, UTF-8 safe below
                cut = len(buffer)
            block, rest = buffer[:cut], buffer[cut:]
            yield block
        if rest:
            yield rest


def _decode(block: bytes, path: Path, offset: int) -> str:
    nul = block.find(b"\0")
    if nul >= 0:
        raise DataError(f"data file {str(path)!r} looks binary (NUL byte at byte {offset + nul}): "
                        "use a UTF-8 text, .jsonl or folder of text files")
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"data file {str(path)!r} is not UTF-8 text (bad byte at {offset + exc.start}): "
                        "convert it to UTF-8 first") from None


def _jsonl_text(block: str, path: Path) -> str:
    texts = []
    for line in block.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"data file {str(path)!r} has a line that is not JSON ({line[:40]!r}): "
                            "each line must be an object with a \"text\" field") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise DataError(f"data file {str(path)!r} has a line without a string \"text\" field ({line[:40]!r})")
        texts.append(record["text"])
    return "\n".join(texts) + "\n" if texts else ""


def iter_text(path: Path) -> Iterator[tuple[str, int]]:
    """(text block, raw bytes consumed) over the whole corpus."""
    for file in _corpus_files(path):
        offset = 0
        for raw in _read_blocks(file):
            text = _decode(raw, file, offset)
            offset += len(raw)
            yield (_jsonl_text(text, file) if file.suffix == ".jsonl" else text), len(raw)


def corpus_size(path: Path) -> int:
    return sum(f.stat().st_size for f in _corpus_files(path))


def corpus_bytes(data: str) -> int:
    """Bytes of every file under the corpus a config names, without reading any of them."""
    path = resolve_data_path(data)
    return path.stat().st_size if path.is_file() else sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file())


def corpus_fingerprint(path: Path, tokenizer_name: str) -> str:
    digest = hashlib.sha256(f"v{CACHE_FORMAT}:{tokenizer_name}".encode())
    for file in _corpus_files(path):
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def cache_dir() -> Path:
    root = os.environ.get("GPT_TUI_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gpt-tui"
    return Path(root) / "tokens"


def tokenize_to_file(path: Path, tokenizer: Tokenizer, target: Path, progress: Progress | None = None,
                     num_threads: int | None = None) -> int:
    """Stream the corpus through the tokenizer into ``target`` as uint32; returns the token count."""
    threads = num_threads or os.cpu_count() or 1
    total, done, count = corpus_size(path), 0, 0
    with open(target, "wb") as out:
        pending: list[str] = []
        pending_bytes = 0

        def flush() -> None:
            nonlocal count, done, pending_bytes
            for ids in tokenizer.encode_batch(pending, threads):
                np.asarray(ids, dtype=np.uint32).tofile(out)
                count += len(ids)
            done += pending_bytes
            pending.clear()
            pending_bytes = 0
            if progress:
                progress(done, total)

        for text, consumed in iter_text(path):
            pending.append(text)
            pending_bytes += consumed
            if len(pending) >= BATCH_BLOCKS:
                flush()
        flush()
        out.flush()
        os.fsync(out.fileno())
    return count


def _writable(path: Path) -> Path:
    """``path``, or the same name in a private temp folder when the cache cannot be written
    (a read-only or shared cache): the run goes on, it only tokenizes again next time."""
    try:  # tried, not os.access: root passes that, and network file systems lie to it
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path.parent)
        os.close(fd)
        os.unlink(probe)
        return path
    except OSError:
        return Path(tempfile.mkdtemp(prefix="gpt-tui-")) / path.name


def load_tokens(path: Path, tokenizer: Tokenizer, progress: Progress | None = None) -> np.ndarray:
    """The corpus as tokenizer ids, memory-mapped from the cache (tokenized on first use)."""
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(f"data file {str(path)!r} is empty: give it some text")
    key = corpus_fingerprint(path, tokenizer.name)
    cached = cache_dir() / f"{key}.u32"
    if not cached.exists():
        cached = _writable(cached)
        with atomic_path(cached) as tmp:
            tokenize_to_file(path, tokenizer, tmp, progress)
    if cached.stat().st_size == 0:
        raise DataError(f"data {str(path)!r} holds no text: give it some text")
    return np.memmap(cached, dtype=np.uint32, mode="r")


@dataclass
class Corpus:
    """Model-id tokens split 90/10, plus the vocabulary that maps them."""

    path: Path
    vocab: VocabMap
    train: torch.Tensor  # int32 model ids
    val: torch.Tensor
    raw_count: int

    def check_fits(self, context_length: int) -> None:
        need = context_length + 1
        for split, data in (("train", self.train), ("valid", self.val)):
            if len(data) <= need:
                raise DataError(
                    f"corpus {str(self.path)!r} has {self.raw_count} tokens, so its {split} split has {len(data)}; "
                    f"each split needs more than context_length + 1 = {need}: use a longer corpus or a smaller "
                    "context_length")


def bytes_per_token(ids: torch.Tensor, vocab: VocabMap, tokenizer: Tokenizer) -> float:
    """UTF-8 bytes per token of a split of model ids: what turns nats per token into bits per
    byte (the byte tokenizer: exactly 1). Counted in slices, so a large split is never copied."""
    def length(model_id: int) -> int:
        try:
            return len(tokenizer.token_bytes(vocab.to_tokenizer([model_id])[0]))
        except (IndexError, KeyError, ValueError):  # the compact vocabulary's unknown row, an unused id
            return 0
    counts = torch.zeros(vocab.size, dtype=torch.int64)
    for start in range(0, len(ids), SLICE):
        counts += torch.bincount(ids[start:start + SLICE].long(), minlength=vocab.size)[:vocab.size]
    seen = torch.nonzero(counts).flatten().tolist()  # only the ids the split has: a full vocabulary is 100k
    total = sum(int(counts[i]) * length(i) for i in seen)
    return total / max(1, len(ids))


def model_ids(tokens: np.memmap, vocab: VocabMap) -> np.ndarray:
    """The corpus as model ids (int32), memory-mapped from a cache file beside the token cache,
    written in slices on first use. Batches gather from it, so a corpus never has to fit in RAM
    and torchrun's ranks share one copy in the page cache."""
    path = Path(tokens.filename).with_suffix(f".{vocab.digest()}.i32")
    if not path.exists():
        path = _writable(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as out:
            for start in range(0, len(tokens), SLICE):
                part = tokens[start:start + SLICE]
                (vocab.to_model(part) if vocab.mode == "compact" else part).astype(np.int32).tofile(out)
    return np.memmap(path, dtype=np.int32, mode="c")  # copy-on-write: torch may wrap it, nothing writes


def build_corpus(data: str, tokenizer: Tokenizer, vocab_mode: str, vocab: VocabMap | None = None,
                 progress: Progress | None = None) -> Corpus:
    """Load the corpus a config names. ``vocab`` (from a checkpoint) overrides building one."""
    path = resolve_data_path(data)
    try:
        tokens = load_tokens(path, tokenizer, progress)
    except OSError as exc:  # a file that cannot be read: one line naming it, not a traceback
        where = exc.filename or path
        raise DataError(f"data file {str(where)!r} cannot be read ({exc.strerror or exc}): check its permissions, "
                        "or leave it out of the data folder") from None
    vocab = vocab or VocabMap.build(vocab_mode, tokens, tokenizer)
    if vocab.mode != "compact" and int(tokens.max()) >= vocab.size:
        raise DataError(f"corpus {str(path)!r} has token ids beyond the model's vocabulary of {vocab.size}: "
                        "train a new model on it, or use vocab = \"compact\"")
    ids = torch.from_numpy(model_ids(tokens, vocab))
    split = int(TRAIN_FRACTION * len(ids))
    return Corpus(path, vocab, ids[:split], ids[split:], len(ids))


class Batcher:
    """Random (x, y) windows from a split: one vectorized gather, no Python loop over rows."""

    def __init__(self, corpus: Corpus, batch_size: int, context_length: int, device: torch.device):
        self.splits = {"train": corpus.train, "val": corpus.val}
        self.batch_size = batch_size
        self.offsets = torch.arange(context_length + 1)
        self.device = device
        self.pin = device.type == "cuda"

    def get(self, split: str, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        data = self.splits[split]
        starts = torch.randint(len(data) - len(self.offsets) + 1, (self.batch_size,), generator=generator)
        window = data[starts[:, None] + self.offsets].long()  # (B, T+1)
        if self.pin:
            window = window.pin_memory().to(self.device, non_blocking=True)
        elif self.device.type != "cpu":
            window = window.to(self.device)
        return window[:, :-1], window[:, 1:]
