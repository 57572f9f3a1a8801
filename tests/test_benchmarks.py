"""The GPU check is ready for the day a GPU is there, and harmless until then."""
from __future__ import annotations

import os
import subprocess
import sys

from .conftest import REPO


def test_gpu_check_without_cuda_says_it_skipped_and_exits_0(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(tmp_path)}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "no CUDA device here: skipped" in result.stdout
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_gpu_checks_new_rows_run_on_the_cpu_path(tmp_path):
    """--allow-cpu tries the script itself: Muon against AdamW and gpt2-small.toml's row run
    through the real engine at the tiny config, and the table lands under --out."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--allow-cpu", "--steps", "12",
                             "--only", "headless", "muon", "gpt2", "modes", "--out", str(tmp_path)],
                            capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "gpu_check.md").read_text()
    assert "FAIL" not in table, table
    for row in ("headless gpu.toml, compile off", "Muon + WSD vs AdamW, steps/s", "headless gpt2-small.toml",
                "compile modes | CUDA graphs need a GPU: skipped"):
        assert row in table, table
