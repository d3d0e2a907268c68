"""A small function-writing family: 'write `add_3(xs)` that ...', judged by running hidden tests.

Checking runs the model's code in the sandbox (`r1model.sandbox`, imported lazily). When the sandbox is
missing or fails, the check says `error` ('sandbox unavailable ...'): the sample is skipped, never
scored as wrong. HumanEval problems (task 'code', meta with `entry_point` and `tests`) use the same path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from r1model.tasks.base import Task
from r1model.tasks.problem import CheckResult, Problem

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class _Family:
    """One kind of function; `k` is the random constant that makes each problem different."""

    name: str  # function name pattern, with {k}
    signature: str  # arguments
    description: str  # what it returns, with {k}
    body: str  # reference implementation body (one expression), with {k}
    reference: Callable  # (k, *args) -> result, to compute the expected outputs
    inputs: Callable  # (rng) -> args tuple


def _int_list(rng):
    return ([rng.randint(-20, 20) for _ in range(rng.randint(0, 6))],)


FAMILIES = [
    _Family("add_{k}", "xs", "a new list with {k} added to every element of the list xs",
            "[x + {k} for x in xs]", lambda k, xs: [x + k for x in xs], _int_list),
    _Family("keep_above_{k}", "xs", "the elements of the list xs that are greater than {k}, in order",
            "[x for x in xs if x > {k}]", lambda k, xs: [x for x in xs if x > k], _int_list),
    _Family("count_multiples_{k}", "xs", "how many elements of the list xs are divisible by {k}",
            "sum(1 for x in xs if x % {k} == 0)", lambda k, xs: sum(1 for x in xs if x % k == 0), _int_list),
    _Family("sum_below_{k}", "n", "the sum of the positive integers below n that are multiples of {k}",
            "sum(i for i in range(1, n) if i % {k} == 0)",
            lambda k, n: sum(i for i in range(1, n) if i % k == 0), lambda rng: (rng.randint(0, 60),)),
    _Family("repeat_{k}", "s", "the string s repeated {k} times, the copies joined by '-'",
            "'-'.join([s] * {k})", lambda k, s: "-".join([s] * k),
            lambda rng: ("".join(rng.choice("abcxyz") for _ in range(rng.randint(0, 4))),)),
    _Family("clamp_{k}", "x", "x limited to the range -{k}..{k} (inclusive)",
            "max(-{k}, min({k}, x))", lambda k, x: max(-k, min(k, x)), lambda rng: (rng.randint(-30, 30),)),
    _Family("times_{k}", "xs", "a new list with every element of the list xs multiplied by {k}",
            "[x * {k} for x in xs]", lambda k, xs: [x * k for x in xs], _int_list),
    _Family("last_{k}", "xs", "the last {k} elements of the list xs (all of them when it is shorter)",
            "xs[-{k}:]", lambda k, xs: xs[-k:], _int_list),
    _Family("remainders_{k}", "xs", "a new list with the remainder of every element of xs divided by {k}",
            "[x % {k} for x in xs]", lambda k, xs: [x % k for x in xs], _int_list),
]


class CodeTask(Task):
    """One function per problem from FAMILIES; n_tests asserts computed by the reference."""

    name = "code"
    description = "write a small Python function; judged by hidden tests in the sandbox"
    difficulty = {"n_tests": 5, "max_k": 50}
    difficulty_help = {"n_tests": "hidden asserts per problem", "max_k": "largest constant in the function"}

    def make(self, rng, n_tests, max_k):
        family = rng.choice(FAMILIES)
        k = rng.randint(2, max_k)
        entry = family.name.format(k=k)
        cases = [family.inputs(rng) for _ in range(n_tests)]
        asserts = "\n".join(f"    assert candidate({', '.join(map(repr, args))}) == {family.reference(k, *args)!r}"
                            for args in cases)
        tests = f"def check(candidate):\n{asserts}\n"
        code = f"def {entry}({family.signature}):\n    return {family.body.format(k=k)}\n"
        text = (f"Write a Python function `{entry}({family.signature})` that returns "
                f"{family.description.format(k=k)}.")
        return Problem(id="", problem=text, answer=code, solution="",
                       meta={"entry_point": entry, "tests": tests})

    def key(self, problem):
        return problem.problem

    def worked_solution(self, problem):
        return f"The function returns one expression:\n{problem.answer}"

    def check_answer(self, answer, problem):
        return check_code(answer, problem)

    def check_many(self, answer_texts: list[str], problems: list[Problem]) -> list[CheckResult]:
        """check() for many answers at once, judged in parallel by the sandbox pool."""
        taken = [self.take_answer(text) for text in answer_texts]
        results = check_code_batch([t if isinstance(t, str) else "" for t in taken], problems)
        return [t if isinstance(t, CheckResult) else r for t, r in zip(taken, results)]


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


def extract_code(text: str) -> str:
    """The code in a fenced block (the last one) or the text itself."""
    blocks = _FENCE.findall(text)
    return (blocks[-1] if blocks else text).strip("\n")


def prepare_code(answer: str, problem: Problem) -> str | CheckResult:
    """The program to judge for an answer, or the verdict when there is nothing to run.

    HumanEval style: when the code does not define the entry point itself, it is taken as the
    continuation of the problem's prompt (meta['prompt'])."""
    entry = problem.meta.get("entry_point")
    if not entry or not problem.meta.get("tests"):
        return CheckResult("error", "problem has no tests/entry_point to judge code against", None)
    code = extract_code(answer)
    if not code.strip():
        return CheckResult("unparseable", "no code in the answer", code)
    if not re.search(rf"def\s+{re.escape(entry)}\s*\(", code):
        prompt = problem.meta.get("prompt")
        if not prompt:
            return CheckResult("unparseable", f"the code does not define {entry}()", code)
        if code[:1] not in (" ", "\t"):  # a body whose first line lost its indentation (stripped answer)
            code = "    " + code
        code = prompt + code
    return code


def _verdict_to_check(verdict, code: str) -> CheckResult:
    if verdict.passed:
        return CheckResult("correct", "", code)
    if verdict.is_sandbox_error:
        return CheckResult("error", f"sandbox error: {verdict.detail}", code)
    return CheckResult("wrong", f"{verdict.status}: {verdict.detail}"[:300], code)


def check_code(answer: str, problem: Problem, timeout: float = DEFAULT_TIMEOUT) -> CheckResult:
    """Run the answer's code against problem.meta['tests'] and call check(entry_point) in the sandbox."""
    return check_code_batch([answer], [problem], timeout=timeout, workers=1)[0]


def check_code_batch(answers: list[str], problems: list[Problem], timeout: float = DEFAULT_TIMEOUT,
                     workers: int | None = None) -> list[CheckResult]:
    """check_code for many answers, judged in parallel by the sandbox pool (verdicts in input order).
    A missing or broken sandbox gives `error` results (skipped), never `wrong`."""
    prepared = [prepare_code(a, p) for a, p in zip(answers, problems)]
    runnable = [i for i, item in enumerate(prepared) if isinstance(item, str)]
    results = [item if isinstance(item, CheckResult) else None for item in prepared]
    if not runnable:
        return results
    try:
        from r1model.sandbox import FunctionSubmission, SandboxUnavailable, judge_many
    except ImportError as exc:
        for i in runnable:
            results[i] = CheckResult("error", f"sandbox unavailable: r1model.sandbox cannot be imported ({exc})",
                                     prepared[i])
        return results
    submissions = [FunctionSubmission(prepared[i], problems[i].meta["tests"], problems[i].meta["entry_point"],
                                      timeout=timeout) for i in runnable]
    reason = ""
    try:
        verdicts = judge_many(submissions, workers=workers)
    except SandboxUnavailable as exc:
        verdicts = [None] * len(runnable)
        reason = f"sandbox unavailable: {exc}"
    for i, verdict in zip(runnable, verdicts):
        results[i] = (CheckResult("error", reason, prepared[i]) if verdict is None
                      else _verdict_to_check(verdict, prepared[i]))
    return results
