"""Synthetic run data for demos, benchmarks and browser tests: plausible GRPO curves and traces,
bulk-inserted in batches (the whole history is never held in memory).

Curves follow the R1-Zero picture: response length and accuracy rise, format rate saturates early,
entropy decays, KL creeps up. Trace text mixes in reflection markers as length grows.
"""
from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

from django.db import transaction

from lab.models import CheckpointRecord, EvalResult, Metric, Run, RunStatus, Trace
from lab.services.ingest import store_summaries

CORE_METRICS = (
    "reward", "reward_std", "rewards/accuracy/mean", "rewards/format/mean", "accuracy", "format_rate",
    "completions/mean_length", "completions/p10_length", "completions/p90_length", "completions/max_length",
    "completions/truncated_ratio", "frac_reward_zero_std", "kl", "entropy", "clip_ratio/low_mean",
    "clip_ratio/high_mean", "loss", "grad_norm", "lr", "moe/max_violation", "time/generate", "time/score",
    "time/update", "throughput/tokens_per_s",
)
BATCH = 5000


def metric_names(count: int) -> list[str]:
    names = list(CORE_METRICS[:count])
    names += [f"extra/metric_{i:02d}" for i in range(count - len(names))]
    return names


def _value(name: str, t: float, rng: random.Random) -> float:
    """t in [0, 1]: progress through the run."""
    noise = rng.gauss(0, 1)
    length = 20 + 140 * t / (0.3 + t) + 4 * noise
    table = {
        "completions/mean_length": length,
        "completions/p10_length": length * 0.6,
        "completions/p90_length": length * 1.45,
        "completions/max_length": min(256.0, length * 2.1 + abs(noise) * 8),
        "accuracy": min(1.0, max(0.0, 0.1 + 0.65 * t + 0.04 * noise)),
        "rewards/accuracy/mean": min(1.0, max(0.0, 0.1 + 0.65 * t + 0.04 * noise)),
        "format_rate": min(1.0, 1 - 0.8 * math.exp(-12 * t) + 0.01 * noise),
        "rewards/format/mean": min(1.0, 1 - 0.8 * math.exp(-12 * t) + 0.01 * noise),
        "reward": 0.2 + 1.0 * t + 0.05 * noise,
        "reward_std": 0.35 - 0.1 * t + 0.02 * noise,
        "completions/truncated_ratio": max(0.0, 0.02 + 0.03 * t + 0.01 * noise),
        "frac_reward_zero_std": min(1.0, max(0.0, 0.45 - 0.25 * t + 0.05 * noise)),
        "kl": max(0.0, 0.002 + 0.02 * t + 0.002 * noise),
        "entropy": max(0.05, 1.2 * math.exp(-1.5 * t) + 0.03 * noise),
        "clip_ratio/low_mean": max(0.0, 0.01 + 0.003 * noise),
        "clip_ratio/high_mean": max(0.0, 0.008 + 0.003 * noise),
        "loss": 0.01 * noise,
        "grad_norm": abs(0.8 + 0.3 * noise),
        "lr": 3e-6 * min(1.0, t * 20),
        "moe/max_violation": abs(0.3 * math.exp(-3 * t) + 0.05 * noise),
        "time/generate": 2.0 + 3 * t + 0.2 * noise,
        "time/score": 0.1 + 0.01 * noise,
        "time/update": 1.0 + 0.1 * noise,
        "throughput/tokens_per_s": 900 + 40 * noise,
    }
    return table.get(name, noise)


def _bulk(model, rows: Iterator, on_batch=None) -> int:
    """bulk_create `rows` a batch per transaction; `on_batch(batch)` runs in each batch's transaction."""
    count = 0
    rows = iter(rows)
    while batch := list(itertools.islice(rows, BATCH)):
        with transaction.atomic():
            model.objects.bulk_create(batch, batch_size=1000)
            if on_batch is not None:
                on_batch(batch)
        count += len(batch)
    return count


THINK_SNIPPETS = (
    "Add the units first: {a} + {b}.",
    "Carry the one to the next column.",
    "Wait, let me check the tens column again.",
    "Let me verify by subtracting: the difference should match.",
    "Hmm, that does not look right; re-evaluate the carry.",
    "So the sum is {s}.",
)


def _traces(run: Run, steps: int, traces_per_step: int, group_size: int, seed: int, seq_start: int) -> Iterator[Trace]:
    rng = random.Random(seed)
    seq = seq_start
    prompts_per_step = max(1, traces_per_step // group_size)
    for step in range(1, steps + 1):
        t = step / steps
        for p in range(prompts_per_step):
            a, b = rng.randint(100, 999), rng.randint(100, 999)
            prompt_id = f"add-{(p * 7919 + step // 10) % 50:03d}"
            group = f"s{step}-p{p}"
            rewards = []
            rows = []
            for g in range(group_size):
                correct = rng.random() < 0.1 + 0.7 * t
                answer = str(a + b if correct else a + b + rng.choice((-10, -1, 1, 10)))
                n_lines = 1 + int(5 * t * rng.random() + 3 * t)
                think = " ".join(THINK_SNIPPETS[rng.randrange(len(THINK_SNIPPETS))].format(a=a, b=b, s=answer) for _ in range(n_lines))
                unparseable = rng.random() < 0.05 * (1 - t)
                reward = (1.0 if correct else 0.0) + (0.0 if unparseable else 0.5)
                rewards.append(reward)
                tokens = len(think) // 3 + 6
                rows.append(
                    Trace(
                        run=run, seq=seq, step=step, group_id=group, prompt_id=prompt_id,
                        prompt=f"User: What is {a} + {b}? Assistant:",
                        completion=f"<think>{think}</think><answer>{answer}</answer>" if not unparseable else think,
                        think=think, answer="" if unparseable else answer, gold=str(a + b), reward=reward,
                        rewards={"accuracy": 1.0 if correct else 0.0, "format": 0.0 if unparseable else 0.5},
                        status="unparseable" if unparseable else ("correct" if correct else "wrong"),
                        tokens=tokens, truncated=tokens > 200, has_reflection="wait" in think.lower() or "verify" in think.lower(),
                        language_mix=0.0, source="train",
                    )
                )
                seq += 1
            mean = sum(rewards) / len(rewards)
            std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
            for row, r in zip(rows, rewards):
                row.advantage = (r - mean) / std if std > 0 else 0.0
                yield row


def make_synthetic_run(
    *, team, user=None, name: str = "synthetic", steps: int = 200, n_metrics: int = 24, traces_per_step: int = 8,
    group_size: int = 4, eval_every: int = 50, status: str = RunStatus.COMPLETED, seed: int = 0, project=None,
) -> Run:
    """A run with `steps` × `n_metrics` metric rows, `steps × traces_per_step` traces, checkpoints and evals."""
    run = Run.objects.create(
        team=team, project=project, name=name, kind="grpo", config={"kind": "grpo", "total_steps": steps}, status=status,
        created_by=user, step=steps if status == RunStatus.COMPLETED else steps // 2, total_steps=steps,
    )
    rng = random.Random(seed)
    names = metric_names(n_metrics)

    def metric_rows():
        for step in range(1, steps + 1):
            for name in names:
                yield Metric(run=run, seq=step, step=step, name=name, value=_value(name, step / steps, rng))

    def summarise(batch):
        store_summaries(run.id, [(m.run_id, m.seq, m.step, m.name, m.value) for m in batch])

    _bulk(Metric, metric_rows(), on_batch=summarise)
    seq_start = steps + 1
    seq_start += _bulk(Trace, _traces(run, steps, traces_per_step, group_size, seed, seq_start))
    evals, checkpoints = [], []
    for step in range(eval_every, steps + 1, eval_every):
        t = step / steps
        checkpoints.append(CheckpointRecord(run=run, seq=seq_start, step=step, path=f"{run.run_dir or '/runs/synthetic'}/checkpoints/step-{step}"))
        seq_start += 1
        for benchmark, base in (("addition-test", 0.1), ("gsm8k", 0.02)):
            for metric, bonus in (("pass@1", 0.0), ("cons@k", 0.08)):
                evals.append(EvalResult(run=run, seq=seq_start, step=step, benchmark=benchmark, metric=metric, value=min(1.0, base + 0.6 * t + bonus), n=8 * 100))
                seq_start += 1
    CheckpointRecord.objects.bulk_create(checkpoints)
    EvalResult.objects.bulk_create(evals)
    Run.objects.filter(id=run.id).update(ingested_seq=seq_start - 1, compute_seconds=steps * 6.5)
    run.refresh_from_db()
    return run
