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
