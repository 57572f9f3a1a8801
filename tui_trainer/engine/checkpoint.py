"""Checkpoints: a plain dict, written atomically, read only with ``weights_only=True``.

Keys: model_state_dict, h_params (the chapter's names plus max_token_value),
optimizer_state_dict, step, config, tokenizer, best_val_loss, format_version, and
trainer_state (RNG states and the lr scale) so a resumed run continues exactly.
"""
from __future__ import annotations

import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .config import ARCH_KEYS, CHAPTER_KEYS, TrainConfig, config_from_dict, stored, with_overrides
from .errors import CheckpointError, ConfigError, missing
from .model import GPT, ModelConfig
from .tokenizer import VocabMap

FORMAT_VERSION = 1
REQUIRED_KEYS = ("model_state_dict", "h_params", "config", "tokenizer", "step", "format_version")


def h_params(config: TrainConfig, vocab_size: int) -> dict[str, Any]:
    """The chapter's h_params dict, so code written for the chapter finds what it expects."""
    params = {key: getattr(config, key) for key in CHAPTER_KEYS}
    params["max_token_value"] = vocab_size
    return params


def write_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """torch.save, synced to disk; a failed write leaves the previous file as it was."""
    with atomic_path(path, durable=True) as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)


def resolve_checkpoint(path: str | Path, prefer: tuple[str, ...] = ("model.ckpt",)) -> Path:
    """A checkpoint file, or the first of ``prefer`` inside a run directory."""
    path = Path(path).expanduser()
    if path.is_dir():
        for name in prefer:
            if (path / name).is_file():
                return path / name
        raise CheckpointError(f"run directory {str(path)!r} has no {' or '.join(prefer)}: train it first, "
                              "or name a .ckpt file")
    if not path.exists():
        raise CheckpointError(f"checkpoint {str(path)!r} {missing(path)}: check the path")
    return path


def _starts_as_pickle(path: Path) -> bool:
    """A torch zip archive (``PK``), or a pickle of protocol 2 or later (``0x80``)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return True  # unread: say what is safe, that it was refused
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and check a checkpoint; anything that is not ours, or is unsafe, is refused."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the outcome is what matters
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f"checkpoint {str(path)!r} {missing(path)}: check the path") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {str(path)!r} is a directory: name a .ckpt file or a run directory") from None
    except pickle.UnpicklingError:
        # weights_only refuses pickles that would import or call anything: never retry without it.
        # Bytes that are no pickle at all fail there too. Told apart by how the file starts (a
        # torch zip, or a pickle's PROTO opcode), never by torch's message, which also says
        # "Unsupported operand" of a protocol-4 pickle that would run code.
        if not _starts_as_pickle(path):
            raise CheckpointError(f"checkpoint {str(path)!r} is not a readable torch file (it is not a pickle); it "
                                  "may be truncated or not a checkpoint") from None
        raise CheckpointError(f"checkpoint {str(path)!r} was refused: it holds Python objects other than tensors "
                              "and plain data, which could run code when loaded; only load files you trust") from None
    except Exception as exc:  # torch raises many types for garbage and truncated files
        raise CheckpointError(f"checkpoint {str(path)!r} is not a readable torch file ({type(exc).__name__}); "
                              "it may be truncated or not a checkpoint") from None
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in REQUIRED_KEYS):
        raise CheckpointError(f"checkpoint {str(path)!r} is a torch file but not a gpt-tui checkpoint "
                              f"(it needs the keys {', '.join(REQUIRED_KEYS)})")
    if ckpt["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {str(path)!r} has format {ckpt['format_version']}, newer than this "
                              f"gpt-tui ({FORMAT_VERSION}): upgrade gpt-tui")
    if not isinstance(ckpt["model_state_dict"], dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has no weights (its model_state_dict is not a dict)")
    broken = [name for name, tensor in ckpt["model_state_dict"].items()
              if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise CheckpointError(f"checkpoint {str(path)!r} holds weights that are NaN or inf ({broken[0]}"
                              f"{f' and {len(broken) - 1} more' if len(broken) > 1 else ''}): it cannot be sampled "
                              "or trained on; use an earlier checkpoint")
    return ckpt


def config_of(ckpt: dict[str, Any], path: Path | str = "checkpoint") -> TrainConfig:
    try:
        return config_from_dict(stored(ckpt["config"]))
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} holds an invalid config: {'; '.join(exc.problems)}") from None


def model_config(config: TrainConfig, vocab_size: int) -> ModelConfig:
    return ModelConfig(vocab_size=vocab_size, d_model=config.d_model, num_blocks=config.num_blocks,
                       num_heads=config.num_heads, context_length=config.context_length, dropout=config.dropout)


def model_from_checkpoint(ckpt: dict[str, Any], path: Path | str = "checkpoint"
                          ) -> tuple[GPT, TrainConfig, VocabMap]:
    """Rebuild the model (on CPU, eval mode) and its vocabulary from a loaded checkpoint."""
    config = config_of(ckpt, path)
    vocab = VocabMap.from_state(ckpt["tokenizer"])
    model = GPT(model_config(config, vocab.size))
    try:
        model.load_state_dict(ckpt["model_state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} weights do not match its config: "
                              f"{str(exc).splitlines()[0][:160]}") from None
    model.eval()
    return model, config, vocab


@dataclass(frozen=True)
class Resumption:
    """A checkpoint read once for resuming: its config with the overrides applied, the checkpoint
    itself and where it was found."""
    config: TrainConfig
    checkpoint: dict[str, Any]
    path: Path


def read_resumption(checkpoint: str | Path, overrides: dict[str, Any] | None = None,
                    doing: str = "resuming") -> Resumption:
    """The checkpoint's config with ``overrides`` applied; shape-defining keys cannot change
    (the weights would not load), whether ``doing`` is resuming or forking."""
    path = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(path)
    config = config_of(ckpt, path)
    overrides = dict(overrides or {})
    changed = [k for k in ARCH_KEYS if k in overrides and overrides[k] != getattr(config, k)]
    if changed:
        raise ConfigError([f"{k} = {overrides[k]!r}: cannot change when {doing} (the checkpoint's weights have "
                           f"{k} = {getattr(config, k)!r}); start a new run instead" for k in changed])
    return Resumption(with_overrides(config, overrides), ckpt, path)
