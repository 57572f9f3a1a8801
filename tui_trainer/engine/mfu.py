"""Model FLOPs utilization: the FLOP/s training achieves over what the device can do.

Training FLOPs per token are estimated as ``6N + 12·L·H·Q·T`` (PaLM appendix B, as nanoGPT
uses): 6 per parameter for forward and backward, plus attention's score and value matmuls.
N counts every parameter, the untied output head included.
"""
from __future__ import annotations

import time

import torch

# Dense bf16/fp16 tensor-core peaks, TFLOP/s, from NVIDIA's datasheets. Longest name first matches.
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10": 125.0,
    "RTX 4090": 165.0,
    "RTX 3090": 71.0,
    "V100": 125.0,
    "T4": 65.0,
}
CPU_MATMUL_SIZE = 1024


def flops_per_token(num_params: int, num_blocks: int, num_heads: int, head_dim: int, context_length: int) -> int:
    return 6 * num_params + 12 * num_blocks * num_heads * head_dim * context_length


def model_flops_per_token(model) -> int:
    """flops_per_token of a GPT, from its own config."""
    mc = model.cfg
    return flops_per_token(model.num_params(), mc.num_blocks, mc.num_heads, mc.d_model // mc.num_heads,
                           mc.context_length)


def gpu_peak_flops(name: str, dtype: torch.dtype) -> float | None:
    """The table's peak for a GPU name; float32 runs on TF32 tensor cores, at half the bf16 rate."""
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            peak = PEAK_TFLOPS[key] * 1e12
            return peak if dtype in (torch.bfloat16, torch.float16) else peak / 2
    return None


def measure_cpu_matmul(size: int = CPU_MATMUL_SIZE, repeats: int = 5) -> float:
    """FLOP/s of a large float32 matmul on this thread's torch threads: the CPU's practical peak."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm up the kernels and caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """Peak FLOP/s of ``device``: the table for a CUDA GPU, a timed matmul on CPU, None if unknown."""
    if device.type == "cuda":
        return gpu_peak_flops(torch.cuda.get_device_name(device), dtype)
    if device.type == "cpu":
        return measure_cpu_matmul()
    return None
