"""Device and precision choice, and facts about the machine for `gpt-tui info` and the app."""
from __future__ import annotations

import contextlib
import os
import platform
from typing import Any

import torch

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """'auto' tries cuda, then mps, then cpu; a named device must exist here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError([f"device = {name!r}: CUDA is not available here (torch {torch.__version__}); "
                               "use device = \"auto\" or \"cpu\""])
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError([f"device = {name!r}: only {torch.cuda.device_count()} CUDA device(s) here"])
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError([f"device = {name!r}: MPS is not available here; use device = \"auto\" or \"cpu\""])
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """'auto' is bf16 on a CUDA GPU that supports it, float32 elsewhere."""
    if name == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    if name == "float16" and device.type != "cuda":
        raise ConfigError([f"dtype = 'float16' needs a CUDA device, not {device.type}: use \"bfloat16\" or \"float32\""])
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass; a no-op for float32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def configure_torch(device: torch.device, num_threads: int, processes_here: int) -> None:
    """Threads on CPU (``num_threads``, else this machine's cores shared by its processes);
    TF32 matmuls on CUDA."""
    if device.type == "cpu":
        torch.set_num_threads(num_threads or max(1, default_threads() // processes_here))
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def default_threads() -> int:
    """All the cores this process may use. The app too: its UI thread keeps to a time budget
    (see the plot's), so keeping a core from training for it cost more than it gave."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def process_memory_mb() -> float:
    """Resident memory of this process, in MiB."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # psutil is a dependency; this keeps a broken install readable
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_info(device: torch.device | str | None = None) -> dict[str, Any]:
    """Static and live facts about ``device`` (default: what 'auto' picks)."""
    device = torch.device(device) if device else resolve_device("auto")
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "process_memory_mb": round(process_memory_mb(), 1),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update({
            "name": props.name,
            "cuda": torch.version.cuda,
            "compute_capability": f"{props.major}.{props.minor}",
            "bf16": torch.cuda.is_bf16_supported(),
            "gpu_memory_total_mb": round(props.total_memory / 2**20),
            "gpu_memory_allocated_mb": round(torch.cuda.memory_allocated(index) / 2**20, 1),
            "gpu_memory_reserved_mb": round(torch.cuda.memory_reserved(index) / 2**20, 1),
            "gpu_memory_peak_mb": round(torch.cuda.max_memory_allocated(index) / 2**20, 1),
            "nccl": ".".join(map(str, torch.cuda.nccl.version())) if hasattr(torch.cuda, "nccl") else None,
        })
        info.update(_nvml(index))
    elif device.type == "mps":
        info["name"] = "Apple GPU (MPS)"
    else:
        info["name"] = info["cpu"]
    return info


def _nvml(index: int) -> dict[str, Any]:
    """Utilization, temperature and driver from NVML, when nvidia-ml-py is installed."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return {
            "gpu_utilization_pct": pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
            "gpu_temperature_c": pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU),
            "driver": pynvml.nvmlSystemGetDriverVersion(),
        }
    except Exception:  # NVML missing or unsupported: those readings are simply absent
        return {}
