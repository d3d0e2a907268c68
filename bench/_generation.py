"""Shared pieces of the generation benches (generation_vs_hf.py, vllm_cpu.py, rollout_engines.py): Qwen2
test-fixture folders by size, the addition prompts, transformers' sampling call with a fixed length, the
Python that has vLLM, and the CPU time of a process tree. Not a bench itself (make bench skips bench/_*.py).
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# make_tiny_hf_model sizes (vocab: the fixture's 400-token BPE; 1 KV head). tiny: the test fixture (125,504
# params); 26m: 12 layers × 512, 8 query heads of 64, MLP 1,024 (26.3 M params).
QWEN2_SIZES = {"tiny": {}, "26m": dict(hidden_size=512, head_dim=64, layers=12)}


def qwen2_folder(out: Path, size: str = "tiny") -> Path:
    """The Qwen2 fixture of `size` (random weights, byte-level BPE tokenizer) saved under `out`, built once."""
    from r1model.testing.fixtures import make_tiny_hf_model

    if size not in QWEN2_SIZES:
        raise ValueError(f"size: must be one of {sorted(QWEN2_SIZES)}, got {size!r}")
    folder = Path(out) / ("qwen2_tiny" if size == "tiny" else f"qwen2_{size}")
    if not (folder / "config.json").exists():
        make_tiny_hf_model(folder, "qwen2", **QWEN2_SIZES[size])
    return folder


def load_hf(folder: Path):
    """The folder's transformers model, fp32, eval mode, its own generate."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()


def addition_prompts(tokenizer, count: int) -> list[list[int]]:
    """`count` distinct ragged addition prompts as token ids."""
    return [tokenizer.encode(f"User: What is {1000 + 37 * i} + {5 * i * i}?\nAssistant:") for i in range(count)]


def hf_sample(hf, ids, mask, new_tokens: int, pad_id: int):
    """transformers' generate sampling at T 1 (top-p 1, top-k 0) exactly `new_tokens` per row (no EOS stop);
    returns the output ids (prompt + new tokens)."""
    import torch

    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = pad_id
    with torch.inference_mode():
        return hf.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=True, temperature=1.0, top_p=1.0, top_k=0)


def vllm_python() -> tuple[str | None, str]:
    """(the Python with vLLM, "") — env R1LAB_VLLM_PYTHON or .venv-vllm/bin/python — or (None, why not)."""
    python = os.environ.get("R1LAB_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
    if not Path(python).exists():
        return None, f"{python} missing (make vllm-venv, or set R1LAB_VLLM_PYTHON)"
    return python, ""


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` and its live descendants (0 when it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total
