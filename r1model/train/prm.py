"""Train a process reward model on labelled steps of sampled traces (the prm-vs-orm chain's `prm` data stage).

    summary = build_prm("stages/02-samples/rollouts.jsonl", "stages/03-prm/data.jsonl")

1. Every unique sampled completion is cut into steps and each step labelled by the task's own rules
   (r1model.tasks.steps): the label cost is counted (labels made, checker calls, seconds).
2. Problems are split by a hash of their id: 1 in HELDOUT_EVERY is held out, so no held-out problem is seen.
3. The PRM (r1model.model.prm: the sampling run's policy body + a scalar head) is trained with binary
   cross-entropy on the step-end positions, EPOCHS passes over the training steps (at most MAX_STEPS updates).
4. Held-out step accuracy at 0.5 is measured against the majority-class rate, with the balanced accuracy.

Writes `data.jsonl` (one row per completion: its steps, labels and, for held-out ones, the PRM's scores),
the PRM under `checkpoints/step-N/` beside it (a chain artifact, `From("prm")`), and returns the summary.
DeepSeek-R1 §4.2 names the label cost and the reliability of automatic labels as reasons PRMs were dropped.
"""
from __future__ import annotations

import json
import math
import random
import shutil
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from r1model.model.config import ModelConfig, is_model_folder
from r1model.model.prm import ProcessRewardModel, encode_steps
from r1model.model.scalar_head import right_padded
from r1model.model.tokenizer import R1Tokenizer
from r1model.tasks.base import stable_hash
from r1model.tasks.problem import Problem
from r1model.tasks.steps import check_step_task, label_steps

HELDOUT_EVERY = 5  # 20% of the problems are held out
EPOCHS = 4
MAX_STEPS = 400
BATCH_SIZE = 32
LEARNING_RATE = 5e-4


def _task_of(row: dict) -> str:
    """A built-in problem's task: its id is '<task>-<hash>'."""
    return str(row.get("task") or str(row.get("id", "")).rsplit("-", 1)[0])


def _policy(source: str, overrides: dict) -> tuple[ProcessRewardModel, R1Tokenizer]:
    if is_model_folder(source):
        return ProcessRewardModel.from_policy(source), R1Tokenizer.load(source)
    config = ModelConfig.preset(source, **overrides)
    return ProcessRewardModel(config), R1Tokenizer.for_config(config)


def label_rollouts(rows: list[dict]) -> tuple[list[dict], dict]:
    """(one record per unique (problem, completion) with its labelled steps, the label cost). ValueError naming
    the task of a row whose task has no step labels."""
    records, seen, calls = [], set(), 0
    started = time.perf_counter()
    for row in rows:
        key = (row.get("id"), row.get("completion"))
        if key in seen:
            continue
        seen.add(key)
        task = check_step_task(_task_of(row), f"task of rollout {row.get('id')!r}")
        problem = Problem(id=str(row["id"]), problem=str(row["problem"]), answer=str(row["answer"]), task=task)
        labelled = label_steps(task, problem, str(row.get("completion") or ""), truncated=bool(row.get("truncated")))
        calls += len(labelled)
        records.append({"id": problem.id, "problem": problem.problem, "answer": problem.answer,
                        "completion": row.get("completion") or "", "truncated": bool(row.get("truncated")),
                        "split": "heldout" if stable_hash(problem.id) % HELDOUT_EVERY == 0 else "train",
                        "steps": [{"kind": s.step.kind, "text": s.step.text, "start": s.step.start, "end": s.step.end,
                                   "correct": s.correct, "reason": s.reason} for s in labelled]})
    seconds = time.perf_counter() - started
    labels = sum(len(r["steps"]) for r in records)
    return records, {"labels": labels, "checker_calls": calls, "label_seconds": seconds,
                     "labels_per_second": labels / seconds if seconds > 0 else None, "completions": len(records)}


def _examples(records: list[dict], tokenizer) -> list[tuple[list[int], list[int], list[float], int]]:
    """(ids, step-end positions, labels, record index) of every record with at least one scored step."""
    from r1model.tasks.steps import Step

    out = []
    for index, record in enumerate(records):
        steps = [Step(s["kind"], s["text"], s["start"], s["end"]) for s in record["steps"]]
        ids, ends = encode_steps(tokenizer, record["problem"], record["completion"], steps)
        if ends:
            out.append((ids, ends, [float(s["correct"]) for s in record["steps"][:len(ends)]], index))
    return out


def _scores(prm, batch, pad, device) -> list[torch.Tensor]:
    ids, mask = right_padded([b[0] for b in batch], pad, device)
    logits = prm(ids, mask)
    return [logits[row, b[1]] for row, b in enumerate(batch)]


def train_prm(prm: ProcessRewardModel, tokenizer, train: list, *, seed: int, epochs: int = EPOCHS,
              max_steps: int = MAX_STEPS, batch_size: int = BATCH_SIZE, lr: float = LEARNING_RATE) -> dict:
    """BCE on the step ends; returns {steps, seconds, first_loss, last_loss}."""
    device = torch.device("cpu")
    prm.to(device).train()
    optimizer = torch.optim.AdamW(prm.parameters(), lr=lr, weight_decay=0.0)
    rng = random.Random(f"prm|{seed}")
    steps = min(max_steps, math.ceil(epochs * len(train) / batch_size)) if train else 0
    order: list[int] = []
    losses = []
    started = time.perf_counter()
    for _ in range(steps):
        if len(order) < batch_size:
            more = list(range(len(train)))
            rng.shuffle(more)
            order += more
        batch = [train[i] for i in order[:batch_size]]
        del order[:batch_size]
        logits = torch.cat(_scores(prm, batch, tokenizer.pad_id, device))
        labels = torch.tensor([y for b in batch for y in b[2]], dtype=torch.float32)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(prm.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return {"train_steps": steps, "train_seconds": time.perf_counter() - started,
            "first_loss": losses[0] if losses else None, "last_loss": sum(losses[-10:]) / len(losses[-10:]) if losses else None}


@torch.no_grad()
def evaluate_prm(prm: ProcessRewardModel, tokenizer, examples: list, records: list[dict]) -> dict:
    """Held-out step accuracy at 0.5, the majority-class rate, balanced accuracy, answer-step accuracy; the
    scores are written into the records' steps (`score`)."""
    prm.eval()
    tp = tn = fp = fn = answer_right = answers = 0
    for start in range(0, len(examples), 64):
        batch = examples[start:start + 64]
        for example, logits in zip(batch, _scores(prm, batch, tokenizer.pad_id, torch.device("cpu"))):
            probs = torch.sigmoid(logits).tolist()
            record = records[example[3]]
            for step, label, p in zip(record["steps"], example[2], probs):
                step["score"] = round(p, 4)
                predicted = p >= 0.5
                tp += predicted and label == 1.0
                tn += (not predicted) and label == 0.0
                fp += predicted and label == 0.0
                fn += (not predicted) and label == 1.0
                if step["kind"] == "answer":
                    answers += 1
                    answer_right += predicted == (label == 1.0)
    n = tp + tn + fp + fn
    positives, negatives = tp + fn, tn + fp
    recall = [tp / positives if positives else None, tn / negatives if negatives else None]
    known = [r for r in recall if r is not None]
    return {"heldout_steps": n, "heldout_step_accuracy": (tp + tn) / n if n else None,
            "heldout_majority_accuracy": max(positives, negatives) / n if n else None,
            "heldout_balanced_accuracy": sum(known) / len(known) if known else None,
            "heldout_correct_recall": recall[0], "heldout_wrong_recall": recall[1],
            "heldout_answer_accuracy": answer_right / answers if answers else None,
            "heldout_positive_rate": positives / n if n else None}


def build_prm(source: str | Path, out: str | Path) -> dict:
    """The data stage: label the sampling run's rollouts (its config.json beside them says which policy and
    tasks), train and evaluate the PRM, write data.jsonl and checkpoints/step-N; the summary."""
    from r1model.train.filters import read_jsonl, write_jsonl

    source, out = Path(source), Path(out)
    config_path = source.parent / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{source}: no config.json beside the rollouts (which model and tasks sampled them?)")
    config = json.loads(config_path.read_text())
    for i, spec in enumerate(config.get("datasets") or []):
        if spec.get("task") is not None:
            check_step_task(spec["task"], f"datasets.{i}.task")
    seed = int(config.get("seed", 0))
    torch.manual_seed(seed)
    torch.set_num_threads(int(config.get("threads", 1)))
    records, cost = label_rollouts(read_jsonl(source))
    if not records:
        raise ValueError(f"{source}: no rollouts to label")
    model = config.get("model") or {}
    prm, tokenizer = _policy(str(model.get("source", "tiny")), dict(model.get("overrides") or {}))
    examples = _examples(records, tokenizer)
    train = [e for e in examples if records[e[3]]["split"] == "train"]
    heldout = [e for e in examples if records[e[3]]["split"] == "heldout"]
    if not train:
        raise ValueError(f"{source}: no labelled step among the training problems' rollouts")
    training = train_prm(prm, tokenizer, train, seed=seed)
    quality = evaluate_prm(prm, tokenizer, heldout, records)
    labels = [s["correct"] for r in records for s in r["steps"]]
    summary = {**cost, "correct_labels": sum(labels), "wrong_labels": len(labels) - sum(labels),
               "train_completions": len(train), "heldout_completions": len(heldout),
               "train_labels": sum(len(e[2]) for e in train), **training, **quality,
               "aggregation": "min over steps (think lines and the answer); 0 without a complete answer",
               "policy": str(model.get("source", "tiny")), "seed": seed}
    write_jsonl(out, records)
    checkpoints = out.parent / "checkpoints"
    if checkpoints.exists():  # a re-run: its inputs were rebuilt
        shutil.rmtree(checkpoints)
    step = training["train_steps"]
    tmp = checkpoints / f".tmp-step-{step}"  # complete or absent, as every checkpoint
    prm.save(tmp, tokenizer, {k: v for k, v in summary.items() if not isinstance(v, (list, dict))})
    (tmp / "trainer_state.json").write_text(json.dumps({"step": step, "phase": "prm"}) + "\n")
    tmp.rename(checkpoints / f"step-{step}")
    return summary
