"""Evaluate a model on a benchmark with the R1 report's protocol: k samples per problem at temperature
0.6 and top-p 0.95, pass@1 = mean correctness over the samples, cons@k = majority vote over the
checker's verdicts, unbiased pass@k; greedy decoding available (k = 1).

    result = evaluate(model, tokenizer, load_benchmark("addition-test"), k=8, template="mini")
    python -m r1model evaluate --checkpoint DIR --benchmark NAME [--k K] [--think-budgets 8,16,32] [--run-dir DIR]

`score_generations` and `write_eval_events` are the one path from generated completions to numbers and
`eval` events: this CLI and the trainer's in-run evaluation (r1model.train.evaluation) both use them, so
both judge answers by the same policy (r1model.evaluate.answer_check) and emit the same metric names
(r1model.evaluate.score.EVAL_METRICS).

This is the one module of r1model.evaluate that imports torch (it generates; torch is imported lazily).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from r1model.evaluate.benchmarks import load_benchmark
from r1model.evaluate.score import eval_metrics, judge_completions, problem_score, summarise, trace_verdict
from r1model.tasks.problem import Problem
from r1model.template import R1_ZERO_TEMPLATE, parse_completion, resolve_template

CHUNK = 256  # prompts per generate call


@dataclass
class EvalResult:
    """summary: score.summarise's keys ('n', 'samples', 'judged_samples', 'k', 'pass@1', 'cons@k', 'pass@k',
    'mean_length', 'format_rate', 'worked_ratio', 'truncated_ratio', 'unparseable_rate', 'unparseable',
    'skipped') and 'seconds', 'generate_seconds', 'problems_per_s', 'tokens_per_s';
    problems: one dict per problem with its samples (completion, answer, status, tokens, truncated)."""

    benchmark: str
    summary: dict
    problems: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _generate(engine, tokenizer, prompts: list[str], params, seed: int, think_budget: int | None = None):
    import torch

    from r1model.generation.budget import generate_with_think_budget

    generator = torch.Generator(device="cpu").manual_seed(seed)
    completions = []
    with torch.no_grad():
        for start in range(0, len(prompts), CHUNK):
            ids = [tokenizer.encode(p) for p in prompts[start : start + CHUNK]]
            completions.extend(engine.generate(ids, params, generator) if think_budget is None
                               else generate_with_think_budget(engine, tokenizer, ids, params, think_budget, generator))
    return completions


def evaluate(model, tokenizer, problems: list[Problem], k: int = 8, temperature: float = 0.6, top_p: float = 0.95,
             max_new_tokens: int = 512, template: str = R1_ZERO_TEMPLATE, greedy: bool = False, seed: int = 0,
             engine=None, events=None, step: int = 0, benchmark: str = "custom", traces: bool = True,
             timeout: float = 5.0, truncated_is_wrong: bool = True, prompt_format: str = "auto",
             think_budget: int | None = None) -> EvalResult:
    """Sample k completions per problem, check them, and summarise. With `events` (an EventWriter) one
    `eval` event per metric and one `trace` event per sample (source 'eval') are written. `think_budget`: the
    think is cut at that many tokens and `</think><answer>` forced (r1model.generation.budget); the result's
    benchmark is then '<benchmark>@think<=B' (budget_benchmark). The engine and the
    prompt text (prompt_format: auto | plain | chat) are the trainer's (r1model.train.modeling), so a
    transformers model is sampled and prompted as in training."""
    from r1model.generation import SamplingParams
    from r1model.train.modeling import make_engine, prompt_text

    if greedy:
        k, temperature, top_p = 1, 0.0, 1.0
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    if not problems:
        raise ValueError("no problems to evaluate")
    engine = engine or make_engine(model, tokenizer)
    params = SamplingParams(temperature=temperature, top_p=top_p, top_k=0, max_new_tokens=max_new_tokens,
                            stop_token_ids=[tokenizer.eos_id], seed=seed)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    started = time.perf_counter()
    template = resolve_template(template)
    prompts = [prompt_text(tokenizer, p.problem, template, prompt_format) for p in problems for _ in range(k)]
    completions = _generate(engine, tokenizer, prompts, params, seed, think_budget)
    generated_s = time.perf_counter() - started
    if was_training:
        model.train()
    benchmark = budget_benchmark(benchmark, think_budget)
    result = score_generations(problems, completions, k, benchmark=benchmark, timeout=timeout,
                               truncated_is_wrong=truncated_is_wrong)
    seconds = time.perf_counter() - started
    tokens = sum(sample["tokens"] for row in result.problems for sample in row["samples"])
    result.summary.update({
        "seconds": round(seconds, 3),
        "generate_seconds": round(generated_s, 3),
        "problems_per_s": len(problems) / seconds if seconds > 0 else None,
        "tokens_per_s": tokens / generated_s if generated_s > 0 else None,
    })
    if events is not None:
        write_eval_events(events, step, benchmark, result, prompts, k, trace_problems=None if traces else 0)
    return result


def budget_benchmark(benchmark: str, think_budget: int | None) -> str:
    """The benchmark name an evaluation at a think budget reports: '<benchmark>@think<=B' (the plain name
    without a budget), so the lab's benchmark table shows each budget as a benchmark of its own."""
    return benchmark if think_budget is None else f"{benchmark}@think<={think_budget}"


def score_generations(problems: list[Problem], completions, k: int, *, benchmark: str = "custom",
                      timeout: float = 5.0, truncated_is_wrong: bool = True) -> EvalResult:
    """Judge k generated completions per problem (Completion objects, problem-major order) and summarise
    them: the one scoring path of every evaluation (see the module docstring)."""
    if len(completions) != len(problems) * k:
        raise ValueError(f"{len(completions)} completions for {len(problems)} problems x k={k}")
    truncated = [c.finish_reason == "length" for c in completions]
    texts = [c.text for c in completions]
    checks = judge_completions(texts, [p for p in problems for _ in range(k)], truncated=truncated,
                               truncated_is_wrong=truncated_is_wrong, timeout=timeout)
    rows, scores = [], []
    for index, problem in enumerate(problems):
        part = slice(index * k, (index + 1) * k)
        score = problem_score(problem, texts[part], checks[part], truncated[part])
        scores.append(score)
        samples = [{"completion": c.text, "answer": check.extracted, "status": check.status,
                    "tokens": len(c.token_ids), "truncated": cut}
                   for c, check, cut in zip(completions[part], checks[part], truncated[part])]
        rows.append({"id": problem.id, "problem": problem.problem, "gold": problem.answer, "pass@1": score.pass_at_1,
                     "cons": score.cons, "majority": score.majority, "samples": samples})
    lengths = [len(c.token_ids) for c in completions]
    return EvalResult(benchmark=benchmark, summary=summarise(scores, k, lengths), problems=rows)


def write_eval_events(events, step: int, benchmark: str, result: EvalResult, prompts: list[str], k: int,
                      trace_problems: int | None = None, trace_id: str | None = None) -> dict[str, float]:
    """One `eval` event per metric of EVAL_METRICS (n = judged samples) and `trace` events (source
    'eval'): every sample when trace_problems is None, else the first sample of the first trace_problems
    problems. trace_id: the group id prefix (default eval-<benchmark>). Returns the metrics written."""
    metrics = eval_metrics(result.summary)
    prefix = trace_id or f"eval-{benchmark}"
    with events.batch():
        for metric, value in metrics.items():
            events.eval(step, benchmark, metric, value, result.summary["judged_samples"])
        for index, row in enumerate(result.problems):
            if trace_problems is not None and index >= trace_problems:
                break
            for j, sample in enumerate(row["samples"] if trace_problems is None else row["samples"][:1]):
                parsed = parse_completion(sample["completion"], truncated=sample["truncated"])
                status, correct = trace_verdict(sample["status"])
                rewards = {"accuracy": None if correct is None else float(correct),
                           "format": float(parsed.well_formed)}
                events.trace(step, f"{prefix}-{row['id']}", prompts[index * k + j], sample["completion"],
                             parsed.think, parsed.answer, rewards, float(bool(correct)), None, correct, status,
                             sample["tokens"], sample["truncated"], prompt_id=row["id"], source="eval",
                             gold=row["gold"])
    return metrics


def _template_of(checkpoint: Path, key: str = "template", default: str = "r1-zero") -> str:
    """The template (or another run setting, `key`) the checkpoint was trained with (its run's config.json),
    else `default` (the R1-Zero template)."""
    for config in (checkpoint / "run_config.json", checkpoint.parent.parent / "config.json"):
        if config.exists():
            try:
                value = json.loads(config.read_text()).get(key)
            except (ValueError, AttributeError):
                continue
            if value:
                return value
    return default


def evaluate_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r1model evaluate",
                                     description="Evaluate a checkpoint on a benchmark (the R1 report's protocol).")
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder (HF layout)")
    parser.add_argument("--benchmark", required=True, help="benchmark name (see --list) or a dataset path")
    parser.add_argument("--k", type=int, default=8, help="samples per problem (default 8; report 64 for cons@64)")
    parser.add_argument("--n", type=int, default=None, help="evaluate only the first n problems")
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding, one sample per problem")
    parser.add_argument("--template", default=None, help="'r1-zero', 'mini' or text with {prompt} "
                        "(default: the checkpoint's run config, else r1-zero)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--credit-truncated", action="store_true", help="judge the answer of a completion cut at "
                        "--max-new-tokens too (default: it has no answer, as RunConfig.truncated_is_wrong)")
    parser.add_argument("--think-budgets", default="", metavar="B1,B2,...",
                        help="also evaluate with the think cut at each budget B (tokens; </think><answer> forced): "
                        "benchmark '<benchmark>@think<=B', an accuracy-vs-budget curve")
    parser.add_argument("--step", type=int, default=0, help="step recorded on the eval events")
    parser.add_argument("--run-dir", default=None, help="write eval/trace events and samples here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (cuda when available)")
    args = parser.parse_args(argv)
    try:
        budgets = sorted({int(b) for b in args.think_budgets.split(",") if b.strip()})
        if any(b < 1 for b in budgets):
            raise ValueError
    except ValueError:
        parser.error(f"--think-budgets: comma-separated token counts >= 1, got {args.think_budgets!r}")

    import torch

    from r1model.train.modeling import load_model

    torch.set_num_threads(args.threads)
    checkpoint = Path(args.checkpoint)
    try:
        problems = load_benchmark(args.benchmark, n=args.n)
    except (KeyError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model, tokenizer = load_model(checkpoint, torch.device(device))
    template = args.template or _template_of(checkpoint)
    events = None
    if args.run_dir:
        from r1model.events import EventWriter

        events = EventWriter(args.run_dir)
    if events is not None:
        events.status("eval", 0, len(problems), message=f"evaluating {args.benchmark}: {len(problems)} problems "
                      f"x k={1 if args.greedy else args.k}")
    curve = {}
    try:
        results = [evaluate(model, tokenizer, problems, k=args.k, temperature=args.temperature, top_p=args.top_p,
                            max_new_tokens=args.max_new_tokens, template=template, greedy=args.greedy, seed=args.seed,
                            events=events, step=args.step, benchmark=args.benchmark,
                            truncated_is_wrong=not args.credit_truncated,
                            prompt_format=_template_of(checkpoint, "prompt_format", "auto"), think_budget=budget)
                   for budget in [None, *budgets]]
        result = results[0]
        curve = {str(budget): {key: r.summary.get(key) for key in ("pass@1", "mean_length", "token_efficiency",
                                                                     "truncated_ratio")}
                 for budget, r in zip(budgets, results[1:])}
    except Exception as exc:
        if events is not None:
            events.status("failed", 0, len(problems), message=f"{type(exc).__name__}: {exc}")
            events.close()
        raise
    if events is not None:
        events.status("done", len(problems), len(problems), eta_s=0.0,
                      message=f"pass@1 {result.summary['pass@1']:.3f}, cons@k {result.summary['cons@k']:.3f}")
        events.close()
    if args.run_dir:
        for budget, each in zip([None, *budgets], results):
            suffix = "" if budget is None else f"-think{budget}"
            out = Path(args.run_dir) / "evals" / f"{Path(args.benchmark).stem}{suffix}-step{args.step}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "w", encoding="utf-8") as f:
                for row in each.problems:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(json.dumps({"benchmark": args.benchmark, **result.summary, **({"think_budgets": curve} if curve else {})}))
    return 0


if __name__ == "__main__":
    sys.exit(evaluate_main())
