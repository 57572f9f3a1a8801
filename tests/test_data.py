import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tui_trainer.engine.data import Batcher, build_corpus, load_tokens
from tui_trainer.engine.errors import DataError
from tui_trainer.engine.tokenizer import CL100K_SHA256, ByteTokenizer, VocabMap, cl100k_file, get_tokenizer


def test_cl100k_is_offline_and_matches_tiktoken_ids():
    import hashlib

    assert hashlib.sha256(cl100k_file().read_bytes()).hexdigest() == CL100K_SHA256
    tok = get_tokenizer("cl100k_base")
    assert tok.encode("hello world") == [15339, 1917]  # cl100k_base's well-known ids
    for text in ["【限时特惠】山禾 有机燕麦片 500g *2袋", "Greek Yogurt 0添加 x12", "训练一个GPT 🚀"]:
        assert tok.decode(tok.encode(text)) == text


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    assert tok.decode(tok.encode("订单 name")) == "订单 name"


def test_compact_vocab_maps_seen_ids_and_unknowns():
    tokens = np.array([5, 9, 5, 200, 9], dtype=np.uint32)
    vocab = VocabMap.build("compact", tokens, ByteTokenizer())
    assert vocab.size == 4 and vocab.unknown_id == 3
    assert vocab.to_model(np.array([5, 9, 200, 7, 255])).tolist() == [0, 1, 2, 3, 3]
    assert vocab.to_tokenizer([0, 1, 2, 3]) == [5, 9, 200]
    assert VocabMap.from_state(vocab.to_state()) .to_model(np.array([9])).tolist() == [1]


def test_max_vocab_is_the_chapters_max_id_plus_one():
    vocab = VocabMap.build("max", np.array([3, 17, 4], dtype=np.uint32), ByteTokenizer())
    assert vocab.size == 18
    assert vocab.to_model(np.array([3, 40])).tolist() == [3]  # out of range ids are dropped


def test_compact_vocab_is_small_on_the_corpus(corpus):
    c = build_corpus(str(corpus), get_tokenizer("cl100k_base"), "compact")
    assert 100 < c.vocab.size < 2000
    assert int(c.train.max()) < c.vocab.size


def test_token_cache_reopens_as_memmap(corpus):
    first = load_tokens(corpus, ByteTokenizer())
    again = load_tokens(corpus, ByteTokenizer())
    assert isinstance(again, np.memmap)
    assert np.array_equal(first, again)
    assert len(first) == len(corpus.read_bytes())


def test_jsonl_and_directory_inputs(tmp_path):
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": f"doc {i} 商品"}) for i in range(3)) + "\n", encoding="utf-8")
    tokens = load_tokens(jsonl, ByteTokenizer())
    assert bytes(tokens.astype(np.uint8)).decode() == "doc 0 商品\ndoc 1 商品\ndoc 2 商品\n"
    folder = tmp_path / "dir"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second\n")
    (folder / "sub" / "a.md").write_text("first\n")
    (folder / "image.bin").write_bytes(b"\x00\x01\x02")
    tokens = load_tokens(folder, ByteTokenizer())
    assert bytes(tokens.astype(np.uint8)).decode() == "second\nfirst\n"  # sorted: b.txt < sub/a.md; binary skipped


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.txt", "does not exist"),
    (lambda p: (p / "empty.txt").write_text("") and None or p / "empty.txt", "is empty"),
    (lambda p: (p / "bin.dat").write_bytes(b"abc\x00\x01" * 10) and None or p / "bin.dat", "looks binary"),
    (lambda p: (p / "latin.txt").write_bytes("caf\xe9 au lait".encode("latin-1")) and None or p / "latin.txt",
     "is not UTF-8"),
    (lambda p: (p / "emptydir").mkdir() or p / "emptydir", "holds no text files"),
])
def test_bad_data_paths(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        build_corpus(str(make(tmp_path)), ByteTokenizer(), "compact")


def test_corpus_too_short_names_context_length(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("just a few words of text\n" * 4)
    corpus = build_corpus(str(path), ByteTokenizer(), "compact")
    with pytest.raises(DataError, match=r"context_length \+ 1 = 129"):
        corpus.check_fits(128)


def test_batches_are_shifted_windows(corpus):
    c = build_corpus(str(corpus), ByteTokenizer(), "compact")
    batcher = Batcher(c, batch_size=4, context_length=16, device=torch.device("cpu"))
    x, y = batcher.get("train", torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])


def test_large_corpus_progress_and_memory_mapped_model_ids(tmp_path):
    from tui_trainer.engine.data import BATCH_BLOCKS, BLOCK_BYTES

    path = tmp_path / "big.txt"
    line = "0123456789 abcdefghij\n"
    path.write_text(line * ((BLOCK_BYTES * BATCH_BLOCKS * 2) // len(line)), encoding="utf-8")  # 3 flushes
    calls = []
    corpus = build_corpus(str(path), get_tokenizer("byte"), "compact", progress=lambda d, t: calls.append((d, t)))
    size = path.stat().st_size
    assert len(calls) >= 2 and calls[-1] == (size, size) and calls == sorted(calls)
    from tui_trainer.engine.data import cache_dir

    # batches gather from the memory-mapped model ids, written once beside the token cache
    assert any(p.stat().st_size == 4 * corpus.raw_count for p in cache_dir().glob("*.i32"))
    again = build_corpus(str(path), get_tokenizer("byte"), "compact", progress=lambda d, t: calls.append("again"))
    assert "again" not in calls  # the second open reads the caches only
    assert torch.equal(again.train[:1000], corpus.train[:1000]) and again.vocab.size == corpus.vocab.size == 22 + 1  # + the unknown row


def test_read_only_token_cache_still_opens(corpus, tmp_path, monkeypatch):
    import tempfile

    from tui_trainer.engine.data import cache_dir

    monkeypatch.setenv("GPT_TUI_CACHE", str(tmp_path / "cache"))
    first = build_corpus(str(corpus), get_tokenizer("byte"), "max")  # fills the cache
    for path in cache_dir().glob("*.i32"):
        path.unlink()
    real_mkstemp = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):  # as in a shared cache this user cannot write
        if dir is not None and Path(dir) == cache_dir():
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    again = build_corpus(str(corpus), get_tokenizer("byte"), "max")
    assert torch.equal(again.train, first.train)
    assert not list(cache_dir().glob("*.i32"))  # the map went to a private temp folder
