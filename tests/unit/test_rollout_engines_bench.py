"""bench/rollout_engines.py: --quick measures the two in-process engines on the same rows and ends with the
headline line; the vLLM Python lookup says why vLLM is skipped. No timings are asserted."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from _generation import vllm_python  # noqa: E402


@pytest.mark.slow
def test_quick_runs_builtin_and_transformers_and_prints_the_headline(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "rollout_engines.py"), "--quick", "--out",
                           str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "rollout_engines_vllm_over_builtin=skipped"
    assert "vLLM skipped: --quick" in lines
    engines = [line for line in lines if "tokens/s" in line]
    assert [line.split(":")[0].strip() for line in engines] == [
        "built-in HFEngine", "transformers Qwen2ForCausalLM.generate"]
    for line in engines:  # 8 prompts × n 2 × 16 tokens, the same count from both
        assert re.search(r"; 256 tokens in \d+\.\d+ s", line), line
    saved = json.loads((tmp_path / "rollout_engines.json").read_text())
    assert [row["tokens"] for row in saved["sizes"]["tiny"]] == [256, 256]
    assert saved["vllm"] == "skipped: --quick"


def test_vllm_python_names_the_missing_path_or_returns_the_configured_one(tmp_path, monkeypatch):
    missing = tmp_path / "no-such" / "python"
    monkeypatch.setenv("R1LAB_VLLM_PYTHON", str(missing))
    python, why = vllm_python()
    assert python is None and str(missing) in why
    present = tmp_path / "python"
    present.write_text("")
    monkeypatch.setenv("R1LAB_VLLM_PYTHON", str(present))
    assert vllm_python() == (str(present), "")
