"""Evaluation inside a run: held-out accuracy, length and how often the model writes reasoning.

Emits one `eval` event per (benchmark, metric), the same numbers as `eval/<benchmark>/*` metrics, and a
few whole traces (source "eval") so a reviewer can read what the model writes at each evaluation.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from r1model.rewards import compute_rewards
from r1model.template import parse_completion, render_prompt
from r1model.train import modeling
from r1model.train.context import RunContext
from r1model.train.data import DataSource, step_seed

EVAL_TRACES = 4  # problems whose completions are written as traces at each evaluation
EVAL_CHUNK = 256  # prompts per generate call


def benchmark_problems(name: str, data: DataSource):
    if name == "heldout":
        return data.eval_problems()
    from r1model.evaluate.benchmarks import load_benchmark

    return load_benchmark(name)


def evaluate_model(ctx: RunContext, model, tokenizer, engine, data: DataSource, step: int) -> dict[str, float]:
    """Evaluate every configured benchmark at `step`; returns {"<benchmark>/<metric>": value}."""
    results: dict[str, float] = {}
    for name in ctx.config.evaluation.benchmarks:
        problems = benchmark_problems(name, data)
        if problems:
            results.update({f"{name}/{k}": v for k, v in _evaluate(ctx, model, tokenizer, engine, name, problems, step).items()})
    return results


def _evaluate(ctx: RunContext, model, tokenizer, engine, benchmark: str, problems, step: int) -> dict[str, float]:
    config, ev = ctx.config, ctx.config.evaluation
    started = time.perf_counter()
    k = ev.samples_per_problem
    expanded = [p for p in problems for _ in range(k)]
    prompts = [modeling.encode(tokenizer, render_prompt(p.problem, config.template)) for p in expanded]
    params = modeling.sampling_params(
        tokenizer,
        temperature=ev.temperature,
        top_p=ev.top_p,
        top_k=0,
        max_new_tokens=ev.max_new_tokens or config.grpo.max_new_tokens,
        seed=step_seed(config.seed, step, f"eval-{benchmark}") % (2**31),
    )
    model.eval()
    completions = []
    with torch.no_grad(), ctx.autocast():
        modeling.sync_engine(engine, model)
        for start in range(0, len(prompts), EVAL_CHUNK):
            completions.extend(engine.generate(prompts[start : start + EVAL_CHUNK], dataclasses.replace(params, seed=params.seed + start)))
    texts = [c.text for c in completions]
    truncated = [modeling.is_truncated(c) for c in completions]
    _, components = compute_rewards(texts, expanded, {"accuracy": 1.0, "format": 1.0}, truncated=truncated)
    accuracy = components["accuracy"]
    judged = [r for r in accuracy if r.value is not None]
    lengths = [len(c.token_ids) for c in completions]
    parsed = [parse_completion(t, truncated=cut) for t, cut in zip(texts, truncated)]
    values = {
        "accuracy": sum(r.value for r in judged) / max(1, len(judged)),
        "mean_length": statistics.fmean(lengths) if lengths else 0.0,
        "worked_ratio": sum(1 for p in parsed if p.think) / max(1, len(parsed)),
        "format_rate": sum(1 for r in components["format"] if r.value == 1.0) / max(1, len(texts)),
    }
    n = len(judged)
    events = ctx.events
    with events.batch():
        for metric, value in values.items():
            events.eval(step, benchmark, metric, value, n)
        events.metric(step, {f"eval/{benchmark}/{m}": v for m, v in values.items()} | {"time/eval": time.perf_counter() - started}, phase="eval")
        for i in range(min(EVAL_TRACES, len(problems))):
            j = i * k
            status = accuracy[j].status
            events.trace(
                step, f"eval-{benchmark}-{step}-{i}", render_prompt(problems[i].problem, config.template), texts[j],
                parsed[j].think, parsed[j].answer, {"accuracy": accuracy[j].value, "format": components["format"][j].value},
                float(accuracy[j].value or 0.0), None, status == "correct" if status != "error" else None,
                {"error": "skipped"}.get(status, status), lengths[j], truncated[j],
                prompt_id=problems[i].id, source="eval",
            )
    ctx.progress.message(
        f"eval {benchmark} step {step}: accuracy {values['accuracy']:.3f}, mean length {values['mean_length']:.1f}, "
        f"worked {values['worked_ratio']:.2f} (n={n})"
    )
    return values
