"""Evaluation inside a run: held-out pass@1, cons@k, length, format and how often the model writes reasoning.

Generation uses the trainer's own engine; scoring, metric names and events are the evaluate CLI's
(r1model.evaluate.runner.score_generations / write_eval_events), so an in-run number and a CLI number on
the same completions are the same number (the answer policy: r1model.evaluate.answer_check). Emits one
`eval` event per (benchmark, metric), the same numbers as `eval/<benchmark>/<metric>` metrics, and whole
traces (source "eval") so a reviewer can read what the model writes: a few problems' at each evaluation of a
training run, every sample in an evaluate job (as the evaluate CLI writes them), which is what a chain's
comparison counts (e.g. the mixing rate, r1model.train.chains.run_summary).
"""
from __future__ import annotations

import dataclasses
import time

import torch

from r1model.evaluate.runner import budget_benchmark, score_generations, write_eval_events
from r1model.train import modeling
from r1model.train.context import RunContext
from r1model.train.data import DataSource, step_seed

EVAL_TRACES = 4  # problems whose first completion is written as a trace at each evaluation of a training run
EVAL_CHUNK = 256  # prompts per generate call


def benchmark_problems(name: str, data: DataSource):
    if name == "heldout":
        return data.eval_problems()
    from r1model.evaluate.benchmarks import load_benchmark

    return load_benchmark(name)


def evaluate_model(ctx: RunContext, model, tokenizer, engine, data: DataSource, step: int) -> dict[str, float]:
    """Evaluate every configured benchmark at `step`, and again at each think budget B (benchmark
    '<name>@think<=B'); returns {"<benchmark>/<metric>": value}."""
    results: dict[str, float] = {}
    for name in ctx.config.evaluation.benchmarks:
        problems = benchmark_problems(name, data)
        if problems:
            for budget in [None, *ctx.config.evaluation.think_budgets]:
                label = budget_benchmark(name, budget)
                values = _evaluate(ctx, model, tokenizer, engine, name, problems, step, think_budget=budget)
                results.update({f"{label}/{k}": v for k, v in values.items()})
    return results


def _evaluate(ctx: RunContext, model, tokenizer, engine, benchmark: str, problems, step: int,
              think_budget: int | None = None) -> dict[str, float]:
    """One benchmark; with `think_budget` the think is cut at that many tokens (r1model.generation.budget) and the
    events carry the benchmark name '<benchmark>@think<=B'."""
    from r1model.generation.budget import generate_with_think_budget

    config, ev = ctx.config, ctx.config.evaluation
    seed_name = benchmark
    benchmark = budget_benchmark(benchmark, think_budget)
    started = time.perf_counter()
    k = ev.samples_per_problem
    prompt_texts = [modeling.prompt_text(tokenizer, p.problem, config.template, config.prompt_format)
                    for p in problems for _ in range(k)]
    prompts = [modeling.encode(tokenizer, text) for text in prompt_texts]
    params = modeling.sampling_params(
        tokenizer,
        temperature=ev.temperature,
        top_p=ev.top_p,
        top_k=0,
        max_new_tokens=ev.max_new_tokens or config.sampling.max_new_tokens,
        seed=step_seed(config.seed, step, f"eval-{seed_name}") % (2**31),
    )
    model.eval()
    completions = []
    with torch.no_grad(), ctx.autocast():
        modeling.sync_engine(engine, model)
        for start in range(0, len(prompts), EVAL_CHUNK):
            chunk, chunk_params = prompts[start : start + EVAL_CHUNK], dataclasses.replace(params, seed=params.seed + start)
            completions.extend(engine.generate(chunk, chunk_params) if think_budget is None
                               else generate_with_think_budget(engine, tokenizer, chunk, chunk_params, think_budget))
    result = score_generations(problems, completions, k, benchmark=benchmark, truncated_is_wrong=config.truncated_is_wrong)
    traced = None if config.kind == "evaluate" else EVAL_TRACES
    with ctx.events.batch():
        values = write_eval_events(ctx.events, step, benchmark, result, prompt_texts, k, trace_problems=traced,
                                   trace_id=f"eval-{benchmark}-{step}")
        ctx.events.metric(step, {f"eval/{benchmark}/{m}": v for m, v in values.items()}
                          | {"time/eval": time.perf_counter() - started}, phase="eval")
    ctx.progress.message(
        f"eval {benchmark} step {step}: pass@1 {values.get('pass@1', 0.0):.3f}, "
        f"mean length {values.get('mean_length', 0.0):.1f}, worked {values.get('worked_ratio', 0.0):.2f} "
        f"(n={result.summary['judged_samples']})"
    )
    return values
