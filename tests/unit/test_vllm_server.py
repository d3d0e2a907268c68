"""vLLM server mode end to end on a tiny Qwen2: sampled tokens' logprobs against the trainer's teacher-forced
ones, then new weights pushed (reload in place) change the samples. Needs a Python with vLLM: env
R1LAB_VLLM_PYTHON or .venv-vllm/bin/python (make vllm-venv); skipped otherwise."""
import os
from pathlib import Path

import pytest
import torch

from r1model.generation.engine import SamplingParams
from r1model.generation.logprob_check import LogprobCheck, logprob_diff

ROOT = Path(__file__).resolve().parents[2]
PYTHON = os.environ.get("R1LAB_VLLM_PYTHON") or str(ROOT / ".venv-vllm" / "bin" / "python")
TOLERANCE = 1e-3  # fp32 on CPU: measured mean |Δ| ~1e-6 (bench/RESULTS.md)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(PYTHON).exists(), reason=f"no vLLM Python at {PYTHON} (set R1LAB_VLLM_PYTHON or "
                                                         "create .venv-vllm, see bench/vllm_cpu.py)"),
]


def test_server_samples_with_the_trainers_logprobs_and_follows_pushed_weights(tmp_path):
    from r1model.generation.vllm_engine import make_vllm_engine
    from r1model.testing.fixtures import make_tiny_hf_model
    from r1model.train import modeling

    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")
    model, tokenizer = modeling.load_model(folder, torch.device("cpu"))
    engine = make_vllm_engine(model, tokenizer, mode="server", python=PYTHON, workdir=tmp_path / "vllm", seed=0)
    try:
        prompts = [tokenizer.encode("The quick brown fox"), tokenizer.encode("def f(x):")]
        rows = [p for p in prompts for _ in range(4)]
        params = SamplingParams(temperature=1.0, max_new_tokens=24, seed=3,
                                stop_token_ids=(tokenizer.eos_id,))
        completions = engine.generate(rows, params)
        assert len(completions) == 8 and all(c.token_ids for c in completions)
        assert all(len(c.logprobs) == len(c.token_ids) for c in completions)
        assert len({tuple(c.token_ids) for c in completions[:4]}) > 1  # G samples of a prompt differ
        assert all(c.finish_reason in ("stop", "length") for c in completions)

        def trainer(ps, cs):
            with torch.no_grad():
                return modeling.completion_logprobs(model, ps, cs, tokenizer.pad_id)[0]

        values = LogprobCheck(interval=1, max_diff=TOLERANCE, engine_name="vLLM")(1, completions, trainer)
        print("logprob_diff", values)
        assert values["rollout/logprob_diff"] < TOLERANCE

        # new weights: pushed (reload in place), the samples and logprobs follow them
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.2)
        greedy = SamplingParams(temperature=0.0, max_new_tokens=16, seed=0, stop_token_ids=(tokenizer.eos_id,))
        before = [c.token_ids for c in completions]
        after = engine.generate(rows, params)
        assert len(engine.push_seconds) == 2  # the first checkpoint, then one push
        assert [c.token_ids for c in after] != before
        mean, _ = logprob_diff([c.logprobs for c in after], trainer([c.prompt_ids for c in after],
                                                                    [c.token_ids for c in after]))
        assert mean < TOLERANCE
        engine.generate(prompts, greedy)
        assert len(engine.push_seconds) == 2  # unchanged weights are not pushed again
    finally:
        engine.close()
