"""bench/gpu_check.sh, the prepared GPU check, on a machine without CUDA: it runs its CPU-safe sections, says
what it skipped and why, writes $OUT/gpu_check.json and summary.txt, and ends on a line of name=value pairs."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("fp8", "grpo", "vllm", "zero2")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU machine runs the GPU sections (minutes), not this check")
def test_gpu_check_runs_its_cpu_safe_parts_and_names_what_it_skipped(tmp_path):
    out = tmp_path / "gpu_check"
    env = {**os.environ, "OUT": str(out), "OMP_NUM_THREADS": "1", "GPU_CHECK_TIMEOUT_S": "400"}
    proc = subprocess.run(["bash", "bench/gpu_check.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["device"] == "cpu" and set(report["sections"]) == set(SECTIONS)
    sections = report["sections"]
    for name in ("fp8", "vllm"):  # need CUDA: skipped, each with its reason
        assert sections[name]["status"] == "skipped" and "CUDA" in sections[name]["skipped"], sections[name]
    assert sections["fp8"]["emulation_rel_err"] > 0  # the emulation half of the FP8 comparison still runs
    for name in ("grpo", "zero2"):  # CPU-safe: a real step each
        assert sections[name]["status"] == "ok", sections[name]
        assert sections[name]["tokens_per_s"] > 0
    summary = (out / "summary.txt").read_text()
    assert "fp8: skipped" in summary and "grpo: ok" in summary
    last = proc.stdout.strip().splitlines()[-1]
    pairs = dict(word.split("=", 1) for word in last.split())
    assert pairs["device"] == "cpu" and pairs["grpo_status"] == "ok" and pairs["vllm_status"] == "skipped"
