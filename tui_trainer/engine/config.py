"""The training config: the chapter's ``h_params`` plus the options around them.

Every key is a dataclass field whose metadata carries its group (for the app's
form), its help text and its rule. Validation lives in one place,
:func:`find_problems`, and reports every problem at once.
"""
from __future__ import annotations

import math
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (Ubuntu 22.04): the same parser, from PyPI
    import tomli as tomllib

from .atomic import write_text_atomic
from .errors import ConfigError, missing
from .safe_text import visible

GROUPS = ("Model", "Training", "Evaluation", "Data", "System")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
INT_LIMIT = 2**31 - 1  # no integer key is useful beyond this, and torch sizes overflow soon after


def _key(group: str, help: str, *, min: float | None = None, min_exclusive: bool = False,
         max: float | None = None, max_exclusive: bool = False,
         choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    return {"group": group, "help": help, "min": min, "min_exclusive": min_exclusive,
            "max": max, "max_exclusive": max_exclusive, "choices": choices}


@dataclass(frozen=True)
class TrainConfig:
    # -- Model (the chapter's h_params) --
    d_model: int = field(default=80, metadata=_key("Model", "Width of token embeddings and of every block.", min=1))
    num_blocks: int = field(default=6, metadata=_key("Model", "Number of Transformer blocks.", min=1))
    num_heads: int = field(default=4, metadata=_key("Model", "Attention heads per block; must divide d_model.", min=1))
    context_length: int = field(default=128, metadata=_key("Model", "Tokens the model sees at once (T).", min=1))
    dropout: float = field(default=0.1, metadata=_key("Model", "Dropout probability, in [0, 1).", min=0.0, max=1.0, max_exclusive=True))
    # -- Training --
    batch_size: int = field(default=2, metadata=_key("Training", "Sequences per micro-batch (per process under torchrun).", min=1))
    max_iters: int = field(default=500, metadata=_key("Training", "Optimizer steps to train for.", min=1))
    learning_rate: float = field(default=1e-3, metadata=_key("Training", "Peak AdamW learning rate.", min=0.0, min_exclusive=True))
    lr_schedule: str = field(default="constant", metadata=_key("Training", "'constant' (the chapter), 'cosine' with warmup, or 'wsd': warmup, stable, then a linear decay over the last decay_fraction of max_iters.", choices=("constant", "cosine", "wsd")))
    warmup_iters: int = field(default=0, metadata=_key("Training", "Linear warmup steps for the cosine and wsd schedules.", min=0))
    min_lr: float = field(default=1e-4, metadata=_key("Training", "Final learning rate of the cosine and wsd schedules.", min=0.0))
    decay_fraction: float = field(default=0.2, metadata=_key("Training", "wsd: the share of max_iters, at its end, over which the learning rate decays to min_lr.", min=0.0, min_exclusive=True, max=1.0))
    optimizer: str = field(default="adamw", metadata=_key("Training", "'adamw' (the chapter), or 'muon': Muon for the blocks' matrices (qkv, proj, feed-forward), AdamW for the rest (torch 2.9+).", choices=("adamw", "muon")))
    muon_lr: float = field(default=0.02, metadata=_key("Training", "optimizer = muon: Muon's peak learning rate; it follows the schedule as learning_rate does.", min=0.0, min_exclusive=True))
    weight_decay: float = field(default=0.01, metadata=_key("Training", "AdamW weight decay (PyTorch's default).", min=0.0))
    grad_clip: float = field(default=0.0, metadata=_key("Training", "Clip the gradient norm to this; 0 = off.", min=0.0))
    grad_accum_steps: int = field(default=1, metadata=_key("Training", "Micro-batches summed per optimizer step.", min=1))
    spike_action: str = field(default="warn", metadata=_key("Training", "On a loss spike: 'off', 'warn' (log, mark, notify) or 'rollback' (restore the last interval's weights, skip its batches, lower lr).", choices=("off", "warn", "rollback")))
    spike_factor: float = field(default=3.0, metadata=_key("Training", "A spike is a train loss above this many times its moving average.", min=1.0, min_exclusive=True))
    TORCH_SEED: int = field(default=1337, metadata=_key("Training", "Seed for weights, batches and dropout.", min=0))
    target_val_loss: float = field(default=0.0, metadata=_key("Training", "End the run, saved, once an eval's val loss is at or below this; 0 = off.", min=0.0))
    target_val_bpb: float = field(default=0.0, metadata=_key("Training", "End the run, saved, once an eval's val bits per byte are at or below this; 0 = off.", min=0.0))
    # -- Evaluation --
    eval_interval: int = field(default=50, metadata=_key("Evaluation", "Estimate train/valid loss every N steps.", min=1))
    eval_iters: int = field(default=10, metadata=_key("Evaluation", "Batches per split in each estimate.", min=1))
    sample_interval: int = field(default=0, metadata=_key("Evaluation", "Generate a sample every N steps; 0 = off.", min=0))
    sample_prompt: str = field(default="", metadata=_key("Evaluation", "Prompt for samples; empty = start from a newline."))
    sample_tokens: int = field(default=64, metadata=_key("Evaluation", "Tokens generated per sample.", min=1))
    # -- Data --
    data: str = field(default="", metadata=_key("Data", "Text file, JSONL file or folder; empty = the bundled corpus."))
    tokenizer: str = field(default="cl100k_base", metadata=_key("Data", "'cl100k_base' (tiktoken, offline) or 'byte'.", choices=("cl100k_base", "byte")))
    vocab: str = field(default="compact", metadata=_key("Data", "'compact' (ids seen in the corpus), 'max' (the chapter) or 'full'.", choices=("compact", "max", "full")))
    # -- System --
    device: str = field(default="auto", metadata=_key("System", "'auto' (cuda, then mps, then cpu), 'cpu', 'cuda', 'cuda:N' or 'mps'."))
    dtype: str = field(default="auto", metadata=_key("System", "'auto' = bf16 autocast on a capable GPU, float32 elsewhere.", choices=("auto", "float32", "bfloat16", "float16")))
    compile: bool = field(default=False, metadata=_key("System", "torch.compile the model (first step is slow)."))
    compile_mode: str = field(default="default", metadata=_key("System", "torch.compile's mode when compile is on: 'reduce-overhead' replays CUDA graphs (fewer kernel launches for a small model on a GPU), 'max-autotune' also searches kernels (slow first step).", choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")))
    processes: int = field(default=1, metadata=_key("System", "Processes (DDP through torchrun) when > 1; batch_size is per process.", min=1))
    num_threads: int = field(default=0, metadata=_key("System", "CPU threads for torch; 0 = automatic.", min=0))
    health: bool = field(default=True, metadata=_key("System", "Measure gradient norms and per-block update ratios (the Health tab)."))
    log_interval: int = field(default=10, metadata=_key("System", "Report train loss and speed every N steps.", min=1))
    checkpoint_interval: int = field(default=0, metadata=_key("System", "Save model.ckpt every N steps; 0 = only at the end and on request.", min=0))
    keep_checkpoints: int = field(default=0, metadata=_key("System", "Also keep the last N saves of model.ckpt as ckpt-STEP.ckpt (for Compare); 0 = none.", min=0))
    out_dir: str = field(default="runs", metadata=_key("System", "Folder that holds run directories."))
    run_name: str = field(default="gpt", metadata=_key("System", "Run directory name; a timestamp is appended."))
    wandb: bool = field(default=False, metadata=_key("System", "Log config and losses to Weights & Biases (extra 'wandb')."))
    wandb_project: str = field(default="gpt-tui", metadata=_key("System", "W&B project of the run when wandb is on."))
    notify: str = field(default="end", metadata=_key("System", "Which events notify (terminal notification, bell and notify_command): 'end' (the run finished, stopped or failed), 'all' (also loss spikes and rollbacks) or 'off'.", choices=("all", "end", "off")))
    notify_command: str = field(default="", metadata=_key("System", "A shell command run once per notified event, the event as JSON on stdin (e.g. ntfy publish). Only from --set, --config or your settings.toml, never from a run's files."))
    on_hangup: str = field(default="stop", metadata=_key("System", "When the app's terminal goes away (SIGHUP): 'stop' saves and exits; 'detach' trains on without the UI, as the app's Detach does.", choices=("stop", "detach")))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


FIELDS = {f.name: f for f in fields(TrainConfig)}
# Keys that define the network's shape: a checkpoint fixes them.
ARCH_KEYS = ("d_model", "num_blocks", "num_heads", "context_length", "tokenizer", "vocab")
# Keys of one invocation, never of a run's files: a command to run is the user's own choice, so
# a run folder, checkpoint or preset copied from someone else never carries one (see stored()).
INVOCATION_KEYS = ("notify_command",)
# The chapter's h_params, saved under that name in every checkpoint.
CHAPTER_KEYS = ("d_model", "num_blocks", "num_heads", "batch_size", "context_length", "max_iters",
                "learning_rate", "dropout", "eval_interval", "eval_iters", "device", "TORCH_SEED")


def _type_name(tp: type) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[tp]


def field_type(name: str) -> type:
    return {"int": int, "float": float, "bool": bool, "str": str}[str(FIELDS[name].type)]


def parse_value(name: str, text: str) -> Any:
    """Turn the text of ``--set name=text`` or a form input into the field's type.

    Raises ValueError with a message that names the key and what is allowed.
    """
    tp = field_type(name)
    raw = text.strip()
    if tp is bool:
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    elif tp is int:
        try:
            return int(raw)
        except ValueError as exc:
            if "Exceeds the limit" in str(exc):  # Python reads at most sys.get_int_max_str_digits() digits
                raise ValueError(f"{name} = {quoted(text)}: must be an integer of at most "
                                 f"{sys.get_int_max_str_digits():,} digits") from None
    elif tp is float:
        try:
            value = float(raw)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
            # as typed, not as read: 1e400 and 5,000 pasted digits read as inf
            raise ValueError(f"{name} = {quoted(text)}: must be a finite number")
    else:
        return text
    raise ValueError(f"{name} = {quoted(text)}: must be {_type_name(tp)}")


def quoted(value: Any, limit: int = 40) -> str:
    """A value as typed, quoted (control characters escaped); a long pasted string, or a list
    from a request file, is cut, with its length, so an error stays one line."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({type(value).__name__})"


def value_problem(name: str, value: Any) -> str | None:
    """The problem with one value on its own, or None."""
    tp = field_type(name)
    meta = FIELDS[name].metadata
    ok_type = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        ok_type = True
    if not ok_type:
        return f"{name} = {quoted(value)}: must be {_type_name(tp)}"
    if tp is float and not (abs(value) < 1e308 and math.isfinite(value)):  # an int from JSON may not fit a float
        return f"{name} = {quoted(value)}: must be a finite number"
    if tp is int and abs(value) > INT_LIMIT:  # sizes and counts beyond any machine; torch would overflow
        shown = f"{value:.3e}" if abs(value) < 10**300 else "a number that large"
        return f"{name} = {shown}: must be at most {INT_LIMIT:,}"
    lo, hi = meta["min"], meta["max"]
    if lo is not None and (value < lo or (meta["min_exclusive"] and value == lo)):
        op = ">" if meta["min_exclusive"] else ">="
        return f"{name} = {quoted(value)}: must be {op} {lo:g}"
    if hi is not None and (value > hi or (meta["max_exclusive"] and value == hi)):
        return f"{name} = {quoted(value)}: must be in [{lo:g}, {hi:g})" if meta["max_exclusive"] else f"{name} = {quoted(value)}: must be <= {hi:g}"
    if meta["choices"] and value not in meta["choices"]:
        return f"{name} = {quoted(value)}: must be one of {', '.join(meta['choices'])}"
    if tp is str and visible(value) != value:  # a prompt or a path that would drive the terminal when shown
        return f"{name} = {quoted(value)}: holds control characters ({visible(value)[:40]}); remove them"
    if name == "device" and not DEVICE_PATTERN.match(value):
        return f"device = {quoted(value)}: must be auto, cpu, cuda, cuda:N or mps"
    if name == "run_name" and (not value or "/" in value or value in (".", "..")):
        return f"run_name = {quoted(value)}: must be a non-empty name without '/'"
    return None


def find_problems(values: dict[str, Any]) -> dict[str, str]:
    """Every problem in ``values`` (a full or partial config dict), keyed by field.

    Cross-field rules are reported under the field a user would change.
    """
    problems: dict[str, str] = {}
    for name, value in values.items():
        if name not in FIELDS:
            close = [k for k in FIELDS if k.lower() == name.lower()]
            hint = f" (did you mean {close[0]}?)" if close else f"; known keys: {', '.join(FIELDS)}"
            problems[name] = f"unknown key {quoted(name)}{hint}"
            continue
        problem = value_problem(name, value)
        if problem:
            problems[name] = problem
    merged = {**TrainConfig().to_dict(), **values}
    if "d_model" not in problems and "num_heads" not in problems and merged["d_model"] % merged["num_heads"]:
        problems["d_model"] = (f"d_model {merged['d_model']} is not divisible by num_heads {merged['num_heads']}: "
                               "pick a multiple of num_heads")
    if (merged["lr_schedule"] in ("cosine", "wsd") and "min_lr" not in problems and "learning_rate" not in problems
            and merged["min_lr"] > merged["learning_rate"]):
        problems["min_lr"] = f"min_lr = {merged['min_lr']:g}: must be <= learning_rate {merged['learning_rate']:g}"
    if (merged["compile_mode"] != "default" and not merged["compile"] and "compile_mode" not in problems
            and "compile" not in problems):
        problems["compile_mode"] = (f"compile_mode = {quoted(merged['compile_mode'])} takes effect only with compile "
                                    "= true: set compile = true, or compile_mode = 'default'")
    return problems


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """Build a validated config from a (partial) dict, or raise ConfigError listing every problem."""
    problems = find_problems(values)
    if problems:
        raise ConfigError(list(problems.values()))
    coerced = {k: float(v) if field_type(k) is float else v for k, v in values.items()}
    return TrainConfig(**coerced)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` strings from ``--set``; every malformed item is reported."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. --set learning_rate=3e-4")
        elif key not in FIELDS:
            problems.append(find_problems({key: text})[key])
        else:
            try:
                values[key] = parse_value(key, text)
            except ValueError as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError(problems)
    return values


def read_toml(path: Path, kind: str = "config file", examples: str = "configs/ has presets") -> dict[str, Any]:
    """Read a TOML file (a config, a sweep, settings); a missing or malformed one is a
    ConfigError naming it as ``kind``."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError([f"{kind} {str(path)!r} {missing(Path(path))}: check the path ({examples})"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{kind} {str(path)!r} is a directory: name a .toml file"]) from None
    except PermissionError:
        raise ConfigError([f"{kind} {str(path)!r} cannot be read (permission denied): check its permissions"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{kind} {str(path)!r} is not text (not UTF-8): name a .toml file"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{kind} {str(path)!r} is not valid TOML ({exc}): fix the line it names"]) from None


def load_config(path: str | Path | None = None, overrides: list[str] | dict[str, Any] | None = None) -> TrainConfig:
    """TOML file (optional) plus ``--set`` overrides, validated together."""
    values = read_toml(Path(path)) if path else {}
    if isinstance(overrides, dict):
        values.update(overrides)
    elif overrides:
        values.update(parse_overrides(overrides))
    return config_from_dict(values)


def with_overrides(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """A copy of ``config`` with ``values`` applied and the result validated."""
    return config_from_dict({**config.to_dict(), **values})


def stored(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the keys of one invocation: what a run's files, a checkpoint or a
    preset hold, and all that is ever read back from them."""
    return {key: value for key, value in values.items() if key not in INVOCATION_KEYS}


def to_toml(config: TrainConfig) -> str:
    return tomli_w.dumps(stored(config.to_dict()))


def save_config(config: TrainConfig, path: Path) -> None:
    write_text_atomic(path, to_toml(config))  # rewritten on each live change, read by watchers meanwhile


__all__ = ["TrainConfig", "FIELDS", "GROUPS", "ARCH_KEYS", "CHAPTER_KEYS", "find_problems", "config_from_dict",
           "parse_overrides", "parse_value", "load_config", "with_overrides", "to_toml", "save_config", "read_toml"]
