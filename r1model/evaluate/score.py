"""Score completions that came from anywhere (a vLLM server, another lab) against a dataset.

    python -m r1model score --dataset D.jsonl --predictions P.jsonl [--table] [--k K] [--mode auto]

D rows: id, problem, answer (any format load_dataset reads). P rows: id, completion (several rows per id
are several samples). The last line printed is one JSON object:
{"n", "samples", "pass@1", "cons@k", "unparseable", ...}.

Standard library only (no torch): the lab and the workers call score_samples directly.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from r1model.evaluate.answer_check import check_answer
from r1model.evaluate.metrics import cons_at_k, majority_answer, pass_at_k
from r1model.tasks import TASKS
from r1model.tasks.dataset_io import DatasetError, load_dataset, read_jsonl, rows_to_problems
from r1model.tasks.problem import CheckResult, Problem


def check_sample(completion: str, problem: Problem, timeout: float = 5.0) -> CheckResult:
    """One sample against its problem: the built-in task's checker, the code judge, or answer checking
    in the problem's check mode. Completions without tags are judged too (fallback extraction)."""
    task = TASKS.get(problem.task)
    if task is not None:
        return task.check(completion, problem)
    return check_answer(completion, problem.answer, mode=problem.meta.get("check_mode", "auto"), timeout=timeout)


def answers_agree(answer: str, problem: Problem, timeout: float = 5.0) -> bool:
    """Is this extracted answer correct for the problem (used on the majority answer of cons@k)."""
    return check_sample(f"<answer>{answer}</answer>", problem, timeout).correct


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
    statuses: list[str] = field(default_factory=list)
    extracted: list[str | None] = field(default_factory=list)


def score_problem(problem: Problem, completions: list[str], k: int | None = None,
                  timeout: float = 5.0) -> ProblemScore:
    task = TASKS.get(problem.task)
    if task is not None:  # the task's own batch path (code: parallel sandbox runs)
        checks = task.check_many(completions, [problem] * len(completions))
    else:
        checks = [check_sample(c, problem, timeout) for c in completions]
    judged = [c for c in checks if c.status != "error"]
    correct = sum(c.correct for c in judged)
    # only answers the checker could read take part in the vote (unparseable text is not an answer)
    vote_pool = [c.extracted for c in checks[: k or len(checks)] if c.status in ("correct", "wrong")]
    majority = majority_answer(vote_pool)
    cons = None
    if judged:
        cons = cons_at_k(vote_pool, problem.answer, lambda a, _gold: answers_agree(a, problem, timeout))
    return ProblemScore(
        id=problem.id, samples=len(checks), correct=correct,
        unparseable=sum(c.status == "unparseable" for c in checks),
        skipped=len(checks) - len(judged),
        pass_at_1=correct / len(judged) if judged else None,
        cons=cons, majority=majority,
        statuses=[c.status for c in checks], extracted=[c.extracted for c in checks],
    )


def summarise(scores: list[ProblemScore], k: int | None = None) -> dict:
    judged = [s for s in scores if s.pass_at_1 is not None]
    summary = {
        "n": len(judged),
        "samples": sum(s.samples for s in scores),
        "pass@1": round(sum(s.pass_at_1 for s in judged) / len(judged), 6) if judged else None,
        "cons@k": round(sum(s.cons for s in judged) / len(judged), 6) if judged else None,
        "unparseable": sum(s.unparseable for s in scores),
        "skipped": sum(s.skipped for s in scores),
    }
    if k:
        eligible = [s for s in judged if s.samples - s.skipped >= k]
        summary["k"] = k
        summary[f"pass@{k}"] = (round(sum(pass_at_k(s.samples - s.skipped, s.correct, k) for s in eligible)
                                      / len(eligible), 6) if eligible else None)
    return summary


def score_samples(problems: list[Problem], samples: dict[str, list[str]], k: int | None = None,
                  timeout: float = 5.0) -> tuple[dict, list[ProblemScore]]:
    """(summary, per-problem scores) for the problems that have at least one sample."""
    scores = [score_problem(p, samples[p.id], k, timeout) for p in problems if samples.get(p.id)]
    return summarise(scores, k), scores


def read_predictions(path: Path) -> dict[str, list[str]]:
    samples: dict[str, list[str]] = defaultdict(list)
    for number, record in read_jsonl(path, max_row_bytes=16 << 20):
        if "id" not in record or "completion" not in record:
            raise DatasetError(f"{path}: line {number}: a prediction needs 'id' and 'completion' "
                               f"(found {sorted(record)})")
        samples[str(record["id"])].append(str(record["completion"] or ""))
    return samples


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
    parser.add_argument("--k", type=int, default=None, help="also report unbiased pass@k; cons@k uses the "
                        "first k samples of each problem")
    parser.add_argument("--mode", default="auto", choices=["auto", "math", "numeric", "exact", "choice"],
                        help="answer checking for rows without a built-in task (default auto)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per answer check")
    parser.add_argument("--per-problem", default=None, help="write per-problem results to this JSONL")
    args = parser.parse_args(argv)
    try:
        rows = load_dataset(args.dataset).rows
        samples = read_predictions(Path(args.predictions))
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
    summary, scores = score_samples(problems, samples, args.k, args.timeout)
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
