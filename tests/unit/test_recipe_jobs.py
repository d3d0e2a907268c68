"""Kinds sft, rejection_sampling and evaluate through the real CLI (`python -m r1model recipe run ...`) on the tiny
model at --quick sizes, and R1's pipeline in miniature from run directory to run directory:
aha-mini → rejection-sampling from its checkpoint → distill into a fresh student → evaluate the student.

The teacher is aha-mini --quick on 1-digit sums with a longer base stage (60 steps, ~10 s): the first
model that gets some answers right, so rejection sampling has something to keep."""
import json
from pathlib import Path

import pytest

from r1model.events import read_events
from r1model.template import parse_completion
from tests.trainer_cli import r1model, run_quick

ONE_DIGIT = ["--set", 'datasets.0.difficulty={"digits": 1}', "--set", "datasets.0.eval_size=4"]


def recipe_run(name: str, run_dir: Path, *args: str) -> list[dict]:
    run_quick(name, run_dir, *args, timeout=600)
    events = read_events(run_dir)
    assert events[-1]["type"] == "status" and events[-1]["phase"] == "done"
    return events


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def losses(events: list[dict], phase: str) -> list[float]:
    return [e["values"]["train/loss"] for e in events if e["type"] == "metric" and e.get("phase") == phase]


def truly_correct(row: dict) -> bool:
    """The sum worked out here, not by the task's checker: a well-formed answer equal to a+b."""
    parsed = parse_completion(row["completion"])
    a, b = (int(x) for x in row["problem"].split("+"))
    return parsed.well_formed and parsed.answer is not None and parsed.answer.strip() == str(a + b)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("recipes") / "teacher"
    recipe_run("aha-mini", run_dir, *ONE_DIGIT, "--set", "base.steps=60")
    checkpoint = run_dir / "checkpoints" / "step-2"
    assert (checkpoint / "model.safetensors").exists()
    return checkpoint


def test_sft_loss_falls_on_a_prompt_completion_file(tmp_path):
    data = tmp_path / "cot.jsonl"
    pairs = [{"prompt": f"{a}+{a}", "completion": f"<think>{a}+{a}={2 * a}</think><answer>{2 * a}</answer>"}
             for a in range(10, 40)]
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    run_dir = tmp_path / "sft"
    # no base stage: SFT of a fresh tiny model on the file alone, 8 steps of 8 examples
    events = recipe_run("cold-start-sft", run_dir, "--dataset", str(data), "--set", "base.steps=0",
                        "--set", "total_steps=8", "--set", "supervised.learning_rate=0.003")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["kind"] == "sft" and config["datasets"][0]["path"] == str(data)
    sft = losses(events, "sft")
    assert len(sft) == 8 and not losses(events, "pretrain")
    assert sum(sft[-2:]) / 2 < 0.8 * sum(sft[:2]) / 2, sft
    assert (run_dir / "checkpoints" / "step-8" / "model.safetensors").exists()


def test_sft_bad_line_fails_naming_the_file_and_the_line(tmp_path):
    data = tmp_path / "cot.jsonl"
    good = json.dumps({"prompt": "1+1", "completion": "<think></think><answer>2</answer>"})
    data.write_text(f"{good}\n{good}\n{{\"prompt\": \"2+2\", \"completion\n{good}\n")
    run_dir = tmp_path / "sft"
    proc = r1model("recipe", "run", "cold-start-sft", "--quick", "--run-dir", str(run_dir), "--dataset", str(data),
                   "--set", "base.steps=0", timeout=600)
    assert proc.returncode == 1
    assert str(data) in proc.stderr and "line 3" in proc.stderr
    failed = read_events(run_dir)[-1]
    assert failed["phase"] == "failed" and str(data) in failed["message"] and "line 3" in failed["message"]
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_rejection_sampling_keeps_only_correct_samples(teacher, tmp_path):
    run_dir = tmp_path / "rs"
    events = recipe_run("rejection-sampling", run_dir, "--model", str(teacher), *ONE_DIGIT,
                        "--set", "grpo.prompts_per_step=8", "--set", "grpo.group_size=8")
    sampled, accepted = rows(run_dir / "rollouts.jsonl"), rows(run_dir / "accepted.jsonl")
    assert len(sampled) == 2 * 8 * 8  # steps × prompts × G, every sample written
    assert len([e for e in events if e["type"] == "trace" and e.get("source") == "rejection_sampling"]) == len(sampled)
    assert accepted, "the teacher gets some 1-digit sums right"
    assert all(truly_correct(row) for row in accepted)
    correct = {(r["id"], r["completion"]) for r in sampled if r["status"] == "correct"}
    assert {(r["id"].rsplit("-", 1)[0], r["completion"]) for r in accepted} == correct  # all kept, each once
    assert len(accepted) == len(correct)
    assert any(not truly_correct(r) for r in sampled)  # there was something to reject
    metrics = [e["values"] for e in events if e["type"] == "metric" and e.get("phase") == "rejection_sampling"]
    assert sum(m["rejection/accepted"] for m in metrics) == len(accepted)
    assert metrics[-1]["rejection/accepted_total"] == len(accepted)
    assert all(m["rejection/acceptance_rate"] == m["rejection/accepted"] / 64 for m in metrics)


@pytest.mark.slow
def test_evaluate_writes_eval_events_for_a_checkpoint(teacher, tmp_path):
    run_dir = tmp_path / "eval"
    events = recipe_run("evaluate", run_dir, "--model", str(teacher), *ONE_DIGIT,
                        "--set", "evaluation.samples_per_problem=2")
    evals = {e["metric"]: e for e in events if e["type"] == "eval"}
    assert {"pass@1", "cons@k", "pass@k", "mean_length", "worked_ratio", "format_rate"} <= set(evals)
    assert all(e["benchmark"] == "heldout" and e["step"] == 0 for e in evals.values())
    assert evals["pass@1"]["n"] == 4 * 2  # problems × samples
    assert 0.0 <= evals["pass@1"]["value"] <= 1.0
    assert [e for e in events if e["type"] == "trace" and e.get("source") == "eval"]
    assert not (run_dir / "checkpoints").exists()  # evaluation trains nothing


@pytest.mark.slow
def test_pipeline_teacher_rejection_sampling_distill_evaluate(teacher, tmp_path):
    samples = tmp_path / "rejection"
    recipe_run("rejection-sampling", samples, "--model", str(teacher), *ONE_DIGIT,
               "--set", "grpo.prompts_per_step=8", "--set", "grpo.group_size=8")
    accepted = rows(samples / "accepted.jsonl")
    assert accepted and all(truly_correct(row) for row in accepted)

    student = tmp_path / "student"
    events = recipe_run("distill", student, "--dataset", str(samples / "accepted.jsonl"))
    config = json.loads((student / "config.json").read_text())
    assert config["kind"] == "sft" and config["datasets"][0]["path"] == str(samples / "accepted.jsonl")
    assert not losses(events, "pretrain")  # a fresh student: SFT only, no base stage, no RL
    assert losses(events, "sft")[-1] < losses(events, "sft")[0]
    student_ckpt = student / "checkpoints" / "step-5"
    shape = json.loads((student_ckpt / "config.json").read_text())
    teacher_shape = json.loads((teacher / "config.json").read_text())
    assert shape["num_hidden_layers"] < teacher_shape["num_hidden_layers"]

    scores = tmp_path / "scores"
    events = recipe_run("evaluate", scores, "--model", str(student_ckpt), *ONE_DIGIT)
    assert json.loads((scores / "config.json").read_text())["model"]["source"] == str(student_ckpt)
    accuracy = [e for e in events if e["type"] == "eval" and e["metric"] == "pass@1"]
    assert len(accuracy) == 1 and accuracy[0]["n"] == 4


@pytest.mark.slow
def test_r1_zero_runs_from_the_cli_with_no_inputs_and_a_kl_reference(tmp_path):
    events = recipe_run("r1-zero", tmp_path / "zero")
    assert losses(events, "pretrain")  # the built-in base stage
    grpo = [e for e in events if e["type"] == "metric" and e.get("phase") == "grpo"]
    assert [e["step"] for e in grpo] == [1, 2]
    # β = 0.001: a frozen reference; the policy moved away from it after the first update
    assert abs(grpo[0]["values"]["kl"]) < 1e-6 and grpo[1]["values"]["kl"] > 1e-5
    assert {e["step"] for e in events if e["type"] == "eval"} == {0, 2}
