"""Score completions that came from anywhere (a vLLM server, another lab) against a dataset, and the one
evaluation code path of r1model: `judge_completions` (the answer policy, see answer_check), `problem_score`
(one problem's judged samples), `summarise` and `eval_metrics` (the metric names every evaluation emits).

    python -m r1model score --dataset D.jsonl --predictions P.jsonl [--table] [--k K] [--mode auto]

D rows: id, problem, answer (any format load_dataset reads). P rows: id, completion, and optionally
truncated (bool) or finish_reason ("length" = cut at the token limit); several rows per id are several
samples. The last line printed is one JSON object: {"n", "samples", "pass@1", "cons@k", "format_rate", ...}.

Standard library only (no torch): the rewards, the trainer's in-run evaluation and the evaluate CLI all
score through this module.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from r1model.evaluate.answer_check import check_answer, extract_answer
from r1model.evaluate.metrics import EVAL_METRICS, majority_vote, pass_at_k
from r1model.tasks import TASKS
from r1model.tasks.dataset_io import DatasetError, load_dataset, read_jsonl, rows_to_problems
from r1model.tasks.problem import CheckResult, Problem
from r1model.template import parse_completion

TRUNCATED_REASON = "truncated: cut off at the token limit, so it has no answer (truncated_is_wrong)"
NO_ANSWER_REASON = "no <answer>…</answer> or \\boxed{} in the completion"


def judge_completions(completions: list[str], problems: list[Problem], *, truncated: list[bool] | None = None,
                      truncated_is_wrong: bool = True, timeout: float = 5.0) -> list[CheckResult]:
    """Judge each completion against its problem by the one answer policy (answer_check's docstring):
    a truncated completion has no answer (when truncated_is_wrong), else the answer is the last
    `<answer>` or, without one, the last `\\boxed{}`, judged by the built-in task's checker (all of one
    task's answers at once: the code judge runs them in parallel) or check_answer in the problem's
    meta['check_mode'] (default auto)."""
    if len(completions) != len(problems):
        raise ValueError(f"{len(completions)} completions but {len(problems)} problems")
    truncated = truncated or [False] * len(completions)
    results: list[CheckResult | None] = [None] * len(completions)
    by_task: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, (completion, problem, cut) in enumerate(zip(completions, problems, truncated, strict=True)):
        if cut and truncated_is_wrong:
            results[i] = CheckResult("unparseable", TRUNCATED_REASON, None)
            continue
        answer = extract_answer(completion)
        if answer is None:
            results[i] = CheckResult("unparseable", NO_ANSWER_REASON, None)
        elif problem.task in TASKS:
            by_task[problem.task].append((i, answer))
        else:
            results[i] = check_answer(completion, problem.answer, mode=problem.meta.get("check_mode", "auto"),
                                      timeout=timeout)
    for task, items in by_task.items():
        checks = TASKS[task].check_many([answer for _, answer in items], [problems[i] for i, _ in items])
        for (i, _), check in zip(items, checks, strict=True):
            results[i] = check
    return results


def trace_verdict(status: str) -> tuple[str, bool | None]:
    """(status, correct) of a judged sample as traces and rollouts.jsonl record it (events.TRACE_STATUSES):
    'error' — the checker could not judge it (gold answer unparseable, sandbox unavailable) — is 'skipped'
    with correct None, never wrong; any other status stays, correct = status == 'correct'. The one mapping
    of the trainer's traces, the rollout job and evaluation."""
    status = "skipped" if status in ("error", "skipped") else status
    return status, None if status == "skipped" else status == "correct"


@dataclass
class ProblemScore:
    id: str
    samples: int
    correct: int
    unparseable: int
    skipped: int
    pass_at_1: float | None
    cons: float | None
    majority: str | None
    truncated: int = 0
    well_formed: int = 0
    worked: int = 0
    statuses: list[str] = field(default_factory=list)
    extracted: list[str | None] = field(default_factory=list)


def problem_score(problem: Problem, completions: list[str], checks: list[CheckResult], truncated: list[bool],
                  k: int | None = None) -> ProblemScore:
    """The ProblemScore of samples already judged by judge_completions (callers that judge many problems
    at once, so that code runs in parallel)."""
    parsed = [parse_completion(c, truncated=cut) for c, cut in zip(completions, truncated, strict=True)]
    judged = [c for c in checks if c.status != "error"]
    correct = sum(c.correct for c in judged)
    voters = checks[: k or len(checks)]
    majority, majority_correct = majority_vote([c.status for c in voters], [c.extracted for c in voters])
    return ProblemScore(
        id=problem.id, samples=len(checks), correct=correct,
        unparseable=sum(c.status == "unparseable" for c in checks),
        skipped=len(checks) - len(judged),
        pass_at_1=correct / len(judged) if judged else None,
        cons=(1.0 if majority_correct else 0.0) if judged else None, majority=majority,
        truncated=sum(truncated), well_formed=sum(p.well_formed for p in parsed), worked=sum(bool(p.think) for p in parsed),
        statuses=[c.status for c in checks], extracted=[c.extracted for c in checks],
    )


def summarise(scores: list[ProblemScore], k: int | None = None, lengths: list[int] | None = None) -> dict:
    """n (judged problems), samples, judged_samples, k, the EVAL_METRICS (mean_length and token_efficiency
    only with `lengths`, pass@k only with k), unparseable and skipped counts."""
    judged = [s for s in scores if s.pass_at_1 is not None]
    samples = sum(s.samples for s in scores)

    def mean(values):
        return round(sum(values) / len(values), 6) if values else None

    summary = {
        "n": len(judged),
        "samples": samples,
        "judged_samples": samples - sum(s.skipped for s in scores),
        "k": k,
        "pass@1": mean([s.pass_at_1 for s in judged]),
        "cons@k": mean([s.cons for s in judged]),
        "format_rate": sum(s.well_formed for s in scores) / samples if samples else None,
        "worked_ratio": sum(s.worked for s in scores) / samples if samples else None,
        "truncated_ratio": sum(s.truncated for s in scores) / samples if samples else None,
        "unparseable_rate": sum(s.unparseable for s in scores) / samples if samples else None,
        "unparseable": sum(s.unparseable for s in scores),
        "skipped": sum(s.skipped for s in scores),
    }
    if lengths is not None:
        summary["mean_length"] = statistics.fmean(lengths) if lengths else None
        if summary["pass@1"] is not None and summary["mean_length"]:
            summary["token_efficiency"] = summary["pass@1"] / summary["mean_length"]
    if k:
        eligible = [s for s in judged if s.samples - s.skipped >= k]
        summary["pass@k"] = mean([pass_at_k(s.samples - s.skipped, s.correct, k) for s in eligible])
    return summary


def eval_metrics(summary: dict) -> dict[str, float]:
    """The EVAL_METRICS present in a summary, by their one name (what `eval` events carry)."""
    return {name: summary[name] for name in EVAL_METRICS if summary.get(name) is not None}


def score_samples(problems: list[Problem], samples: dict[str, list[str]], k: int | None = None,
                  timeout: float = 5.0, *, truncated: dict[str, list[bool]] | None = None,
                  truncated_is_wrong: bool = True) -> tuple[dict, list[ProblemScore]]:
    """(summary, per-problem scores) for the problems that have at least one sample."""
    truncated = truncated or {}
    scored = [p for p in problems if samples.get(p.id)]
    cuts = {p.id: truncated.get(p.id) or [False] * len(samples[p.id]) for p in scored}
    checks = judge_completions([c for p in scored for c in samples[p.id]],
                               [p for p in scored for _ in samples[p.id]],
                               truncated=[cut for p in scored for cut in cuts[p.id]],
                               truncated_is_wrong=truncated_is_wrong, timeout=timeout)
    scores, start = [], 0
    for p in scored:
        n = len(samples[p.id])
        scores.append(problem_score(p, samples[p.id], checks[start : start + n], cuts[p.id], k))
        start += n
    return summarise(scores, k), scores


def read_predictions(path: Path) -> tuple[dict[str, list[str]], dict[str, list[bool]]]:
    """(id → completions, id → truncated flags) from a predictions JSONL; a row is truncated when it says
    `"truncated": true` or `"finish_reason": "length"` (vLLM / OpenAI)."""
    samples: dict[str, list[str]] = defaultdict(list)
    truncated: dict[str, list[bool]] = defaultdict(list)
    for number, record in read_jsonl(path, max_row_bytes=16 << 20):
        if "id" not in record or "completion" not in record:
            raise DatasetError(f"{path}: line {number}: a prediction needs 'id' and 'completion' "
                               f"(found {sorted(record)})")
        samples[str(record["id"])].append(str(record["completion"] or ""))
        truncated[str(record["id"])].append(record.get("truncated") is True or record.get("finish_reason") == "length")
    return samples, truncated


def _table(scores: list[ProblemScore]) -> str:
    lines = [f"{'id':<24} {'samples':>7} {'correct':>7} {'pass@1':>7} {'cons':>5} {'unparse':>7}  majority"]
    for s in scores:
        p1 = "-" if s.pass_at_1 is None else f"{s.pass_at_1:.3f}"
        cons = "-" if s.cons is None else f"{s.cons:.0f}"
        lines.append(f"{s.id[:24]:<24} {s.samples:>7} {s.correct:>7} {p1:>7} {cons:>5} {s.unparseable:>7}  "
                     f"{(s.majority or '')[:40]}")
    return "\n".join(lines)


def score_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m r1model score", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="problems: JSONL/CSV/Parquet with id, problem, answer")
    parser.add_argument("--predictions", required=True, help="JSONL with id, completion (one row per sample)")
    parser.add_argument("--table", action="store_true", help="print a per-problem table first")
    parser.add_argument("--k", type=int, default=None, help="also report unbiased pass@k (as 'pass@k'); "
                        "cons@k uses the first k samples of each problem")
    parser.add_argument("--mode", default="auto", choices=["auto", "math", "numeric", "exact", "choice"],
                        help="answer checking for rows without a built-in task (default auto)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per answer check")
    parser.add_argument("--credit-truncated", action="store_true", help="judge the answer of a truncated "
                        "prediction too (default: a truncated prediction has no answer, as truncated_is_wrong)")
    parser.add_argument("--per-problem", default=None, help="write per-problem results to this JSONL")
    args = parser.parse_args(argv)
    try:
        rows = load_dataset(args.dataset).rows
        samples, truncated = read_predictions(Path(args.predictions))
    except (DatasetError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = rows_to_problems(rows, task="math", check_mode=args.mode)
    for problem, row in zip(problems, rows):
        if row["meta"].get("task") in TASKS:  # rows exported from a built-in task keep their checker
            problem.task = row["meta"]["task"]
            problem.meta.update(row["meta"].get("meta") or {})
    known = {p.id for p in problems}
    unknown = sorted(set(samples) - known)
    missing = [p.id for p in problems if p.id not in samples]
    if unknown:
        print(f"warning: {len(unknown)} prediction id(s) not in the dataset, e.g. {unknown[:3]}", file=sys.stderr)
    if missing:
        print(f"warning: {len(missing)} dataset id(s) have no prediction, e.g. {missing[:3]}", file=sys.stderr)
    summary, scores = score_samples(problems, samples, args.k, args.timeout, truncated=truncated,
                                    truncated_is_wrong=not args.credit_truncated)
    summary["missing"] = len(missing)
    if args.table:
        print(_table(scores))
    if args.per_problem:
        with open(args.per_problem, "w", encoding="utf-8") as f:
            for s in scores:
                f.write(json.dumps(asdict(s), ensure_ascii=False) + "\n")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(score_main())
