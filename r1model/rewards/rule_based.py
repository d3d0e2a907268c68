"""R1-Zero's two rule-based rewards (report §2.2.2): accuracy and format. No neural reward model."""
from __future__ import annotations

from r1model.rewards.base import RewardResult
from r1model.tasks import TASKS, CheckResult, Problem
from r1model.template import parse_completion


def check_completion(completion: str, problem: Problem, truncated: bool = False,
                     timeout: float = 5.0) -> CheckResult:
    """Judge the `<answer>` of a completion with the problem's own checker: the built-in task's exact
    checker, the code judge, or answer checking in meta['check_mode'] (default auto) for imported data.
    Only a marked answer counts: no `<answer>` tag (and no `\\boxed{}`) is unparseable."""
    parsed = parse_completion(completion, truncated=truncated)
    answer = parsed.answer
    if answer is None:
        from r1model.evaluate.answer_check import find_last_boxed

        answer = find_last_boxed(completion or "")
        if answer is None:
            return CheckResult("unparseable", "no <answer>…</answer> in the completion", None)
    task = TASKS.get(problem.task)
    if task is not None:
        return task.check(answer, problem)
    from r1model.evaluate.answer_check import check_answer

    mode = problem.meta.get("check_mode", "auto")
    return check_answer(f"<answer>{answer}</answer>", problem.answer, mode=mode, timeout=timeout, fallback=False)


_ACCURACY_VALUE = {"correct": 1.0, "wrong": 0.0, "unparseable": 0.0, "error": None}


def accuracy_reward(completions, problems, *, truncated=None, **kwargs) -> list[RewardResult]:
    """1 for a correct answer, 0 for a wrong or unparseable one (the status tells them apart), None
    (skipped) when the checker cannot judge: gold answer unparseable, sandbox unavailable."""
    truncated = truncated or [False] * len(completions)
    checks: list[CheckResult | None] = [None] * len(completions)
    code = [i for i, p in enumerate(problems) if p.task == "code"]
    if len(code) > 1:  # programs run in parallel in the sandbox pool
        checks_code = _check_code_completions([completions[i] for i in code], [problems[i] for i in code])
        for i, check in zip(code, checks_code):
            checks[i] = check
    results = []
    for i, (completion, problem, cut) in enumerate(zip(completions, problems, truncated)):
        check = checks[i] or check_completion(completion, problem, cut, timeout=kwargs.get("timeout", 5.0))
        results.append(RewardResult(_ACCURACY_VALUE[check.status], check.status, check.reason))
    return results


def _check_code_completions(completions: list[str], problems: list[Problem]) -> list[CheckResult]:
    from r1model.evaluate.answer_check import find_last_boxed

    answers = []
    for completion in completions:
        answer = parse_completion(completion).answer
        answers.append(answer if answer is not None else find_last_boxed(completion or ""))
    results = TASKS["code"].check_many([a or "" for a in answers], problems)
    return [CheckResult("unparseable", "no <answer>…</answer> in the completion", None) if a is None else r
            for a, r in zip(answers, results)]


def format_reward(completions, problems, *, truncated=None, **kwargs) -> list[RewardResult]:
    """1 when the completion is `<think>…</think><answer>…</answer>` with each tag once and was not cut
    off by the token limit, else 0."""
    truncated = truncated or [False] * len(completions)
    results = []
    for completion, cut in zip(completions, truncated):
        parsed = parse_completion(completion, truncated=cut)
        if parsed.well_formed:
            results.append(RewardResult(1.0, "ok"))
        elif cut:
            results.append(RewardResult(0.0, "truncated", "cut off at the token limit"))
        else:
            missing = [name for name, part in (("think", parsed.think), ("answer", parsed.answer)) if part is None]
            reason = f"missing {' and '.join(missing)}" if missing else "extra text or repeated tags"
            results.append(RewardResult(0.0, "malformed", reason))
    return results
