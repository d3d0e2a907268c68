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
                                                         "run `make vllm-venv`)"),
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


def _hf_job(folder: Path, kind: str, **changes) -> dict:
    return {"kind": kind, "model": {"source": str(folder)}, "template": "r1-zero", "prompt_format": "plain",
            "datasets": [{"task": "addition", "difficulty": {"digits": 1}, "eval_size": 4}], "seed": 0,
            "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5}],
            "total_steps": 3, "checkpoint_interval": 1, "traces_per_step": 1,
            "grpo": {"group_size": 4, "prompts_per_step": 2, "beta": 0.0, "learning_rate": 1e-3,
                     "logprob_check_interval": 1, "logprob_max_diff": TOLERANCE},
            "sampling": {"engine": "vllm", "vllm_mode": "server", "vllm_python": PYTHON, "max_new_tokens": 16},
            "evaluation": {"benchmarks": ["heldout"], "at_start": False, "temperature": 0.0, "top_p": 1.0},
            **changes}


@pytest.mark.timeout(1800)  # two server start-ups (~1 min each on 2 idle cores, several under load)
def test_grpo_three_steps_and_an_evaluation_sample_through_the_vllm_server(tmp_path):
    """The real runner with sampling.engine vllm (server mode): 3 GRPO steps whose rollouts come from the
    server, each checked against the trainer's logprobs and the weights pushed after each optimizer step;
    then an evaluate job of the trained checkpoint through the server."""
    from r1model.events import read_events
    from r1model.testing.fixtures import make_tiny_hf_model
    from r1model.train.config import validate_run_config
    from r1model.train.runner import run

    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")
    assert run(validate_run_config(_hf_job(folder, "grpo")), tmp_path / "grpo", progress_stream=open(os.devnull, "w"),
               install_signals=False) == 0
    events = read_events(tmp_path / "grpo" / "events.jsonl")
    steps = [e for e in events if e["type"] == "metric" and e.get("phase", "grpo") == "grpo" and "loss" in e["values"]]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(e["values"]["rollout/logprob_diff"] < TOLERANCE for e in steps)  # after each push, too
    assert (tmp_path / "grpo" / "vllm").is_dir()  # the server's weights and log live in the run
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [1, 2, 3]
    assert {e["metric"] for e in events if e["type"] == "eval" and e["benchmark"] == "heldout"} >= {"pass@1"}

    checkpoint = tmp_path / "grpo" / "checkpoints" / "step-3"
    evaluate = _hf_job(checkpoint, "evaluate", total_steps=0, evaluation={
        "benchmarks": ["heldout"], "at_start": True, "samples_per_problem": 2, "temperature": 0.6, "top_p": 0.95})
    assert run(validate_run_config(evaluate), tmp_path / "eval", progress_stream=open(os.devnull, "w"),
               install_signals=False) == 0
    results = [e for e in read_events(tmp_path / "eval" / "events.jsonl") if e["type"] == "eval"]
    assert {e["metric"] for e in results} >= {"pass@1", "format_rate"}
    assert results[0]["n"] == 4 * 2  # judged samples: 4 held-out problems × 2 samples each


@pytest.mark.timeout(1800)
def test_grpo_three_steps_with_vllm_colocated_in_the_trainers_process(tmp_path):
    """vllm_mode colocate: the trainer runs in the vLLM Python (one process, vllm.LLM in it), the weights pushed
    in one call after each optimizer step; every step's rollouts checked against the trainer's logprobs."""
    import json
    import subprocess
    import sys

    from r1model.events import read_events
    from r1model.testing.fixtures import make_tiny_hf_model

    folder = make_tiny_hf_model(tmp_path / "qwen", "qwen2")
    job = _hf_job(folder, "grpo", evaluation={"benchmarks": [], "at_start": False})
    job["sampling"] = {"engine": "vllm", "vllm_mode": "colocate", "max_new_tokens": 16}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([PYTHON, "-m", "r1model", "train", str(tmp_path / "job.json"), "--run-dir",
                           str(tmp_path / "run"), "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert sys.executable != PYTHON  # the trainer ran in the vLLM Python, not this one
    events = read_events(tmp_path / "run" / "events.jsonl")
    steps = [e for e in events if e["type"] == "metric" and "loss" in e["values"]]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert all(e["values"]["rollout/logprob_diff"] < TOLERANCE for e in steps)
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [1, 2, 3]
