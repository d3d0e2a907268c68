"""Step labels from a task's own checker: the training data of a process reward model (PRM).

A completion's steps are the non-empty lines of its think part, then its answer (DeepSeek-R1 §4.2: "defining a
fine-grained step" is the first difficulty of a PRM; for the arithmetic tasks a line is a natural step). Each
step is labelled correct or not by rules that know the problem:

- addition: line i must be `x+y+c=s` with x and y the i-th digits of the operands (least significant first, 0
  past an operand's end), c the carry into digit i and s = x+y+c: checked digit by digit, each mistake named;
- multiplication: line i must be the i-th line of the schoolbook solution (partial products, running sums),
  and its arithmetic right;
- the answer: the task's own answer checker.

This is the honest best case for a PRM: labels are exact and cost a few microseconds, where the report's
automatic labels were unreliable and human ones did not scale. Tasks without a line-by-line route (countdown,
code, linear equations with several valid orders) have no step labels: `label_steps` refuses them.

    steps = label_steps("addition", problem, "<think>3+4+0=7</think><answer>7</answer>")
    [(Step(kind='line', text='3+4+0=7', ...), True, 'ok'), (Step(kind='answer', ...), True, 'correct')]

Standard library only (the config validates a `prm` reward's tasks with STEP_TASKS).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from r1model.tasks.problem import Problem
from r1model.tasks.arithmetic import schoolbook_lines

STEP_TASKS = ("addition", "multiplication")  # tasks whose steps this module can label

_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN, _ANSWER_CLOSE = "<think>", "</think>", "<answer>", "</answer>"
_ADD_LINE = re.compile(r"(\d)\+(\d)\+(\d)=(\d+)")
_MUL_LINE = re.compile(r"(\d+)([*+])(\d+)=(\d+)")


class NoStepLabels(ValueError):
    """A PRM asked for a task whose steps cannot be labelled; the message names the field."""


@dataclass(frozen=True)
class Step:
    """One step of a completion: its text and where it ends in the completion (characters, exclusive)."""

    kind: str  # "line" (a line of the think part) or "answer"
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class LabelledStep:
    step: Step
    correct: bool
    reason: str  # 'ok' / 'correct', or what is wrong ('wrong carry: 0, expected 1', ...)


def split_steps(completion: str, *, truncated: bool = False) -> list[Step]:
    """The steps of a completion: each non-empty line of the first think part (up to `</think>`, or to the
    first `<answer>` / the end when it is not closed), then the last complete `<answer>…</answer>` unless the
    completion was cut at the token limit (a cut completion has no answer)."""
    text = completion or ""
    steps: list[Step] = []
    open_at = text.find(_THINK_OPEN)
    if open_at >= 0:
        body_start = open_at + len(_THINK_OPEN)
        close_at = text.find(_THINK_CLOSE, body_start)
        if close_at < 0:
            answer_at = text.find(_ANSWER_OPEN, body_start)
            close_at = answer_at if answer_at >= 0 else len(text)
        position = body_start
        for line in text[body_start:close_at].split("\n"):
            stripped = line.strip()
            if stripped:
                start = position + line.index(stripped)
                steps.append(Step("line", stripped, start, start + len(stripped)))
            position += len(line) + 1
    if not truncated:
        last = text.rfind(_ANSWER_OPEN)
        end = text.find(_ANSWER_CLOSE, last) if last >= 0 else -1
        if last >= 0 and end >= 0:
            raw = text[last + len(_ANSWER_OPEN):end]
            start = last + len(_ANSWER_OPEN) + (len(raw) - len(raw.lstrip()))
            steps.append(Step("answer", raw.strip(), start, start + len(raw.strip())))
    return steps


def has_step_labels(task: str) -> bool:
    return task in STEP_TASKS


def check_step_task(task: str | None, field: str = "task") -> str:
    """`task` when its steps can be labelled; NoStepLabels naming `field` otherwise."""
    if not has_step_labels(task or ""):
        raise NoStepLabels(f"{field}: a process reward needs step labels, and task {task!r} has none "
                           f"(tasks with step labels: {', '.join(STEP_TASKS)})")
    return task


def _operands(problem: Problem, op: str) -> tuple[int, int]:
    left, sep, right = problem.problem.partition(op)
    if not sep or not left.strip().isdigit() or not right.strip().isdigit():
        raise ValueError(f"problem {problem.id}: {problem.problem!r} is not a{'n addition' if op == '+' else ' product'}")
    return int(left), int(right)


def _label_addition_lines(problem: Problem, lines: list[str]) -> list[tuple[bool, str]]:
    a, b = _operands(problem, "+")
    digits_a, digits_b = str(a)[::-1], str(b)[::-1]
    width = max(len(digits_a), len(digits_b))
    carry, out = 0, []
    for i, line in enumerate(lines):
        if i >= width:
            out.append((False, f"extra step: the sum has {width} digit steps"))
            continue
        x = int(digits_a[i]) if i < len(digits_a) else 0
        y = int(digits_b[i]) if i < len(digits_b) else 0
        expected = x + y + carry
        match = _ADD_LINE.fullmatch(line.replace(" ", ""))
        if match is None:
            out.append((False, "malformed: not x+y+carry=sum"))
        else:
            got = [int(group) for group in match.groups()]
            for value, want, what in ((got[0], x, "digit of the first operand"), (got[1], y, "digit of the second operand"),
                                      (got[2], carry, "carry"), (got[3], expected, "sum")):
                if value != want:
                    out.append((False, f"wrong {what}: {value}, expected {want}"))
                    break
            else:
                out.append((True, "ok"))
        carry = expected // 10  # the next line is judged against the true carry
    return out


def _label_multiplication_lines(problem: Problem, lines: list[str]) -> list[tuple[bool, str]]:
    a, b = _operands(problem, "*")
    gold, out = schoolbook_lines(a, b), []
    for i, line in enumerate(lines):
        compact = line.replace(" ", "")
        match = _MUL_LINE.fullmatch(compact)
        if i >= len(gold):
            out.append((False, f"extra step: the product has {len(gold)} steps"))
        elif match is None:
            out.append((False, "malformed: not x*y=z or x+y=z"))
        else:
            x, op, y, z = int(match[1]), match[2], int(match[3]), int(match[4])
            if (x * y if op == "*" else x + y) != z:
                out.append((False, f"wrong arithmetic: {compact}"))
            elif compact != gold[i]:
                out.append((False, f"not the schoolbook step {i + 1} ({gold[i]})"))
            else:
                out.append((True, "ok"))
    return out


_LINE_LABELLERS = {"addition": _label_addition_lines, "multiplication": _label_multiplication_lines}


def label_steps(task: str, problem: Problem, completion: str, *, truncated: bool = False) -> list[LabelledStep]:
    """Every step of `completion` (split_steps) labelled by the task's rules; the answer step by the task's
    own checker. NoStepLabels (naming `task`) for a task without step labels."""
    from r1model.tasks import get_task

    check_step_task(task)
    steps = split_steps(completion, truncated=truncated)
    lines = [step for step in steps if step.kind == "line"]
    labels = _LINE_LABELLERS[task](problem, [step.text for step in lines])
    out = [LabelledStep(step, correct, reason) for step, (correct, reason) in zip(lines, labels)]
    for step in steps:
        if step.kind == "answer":
            result = get_task(task).check_answer(step.text, problem) if step.text else None
            status = result.status if result is not None else "unparseable"
            out.append(LabelledStep(step, status == "correct", status if result is None or not result.reason
                                    else f"{status}: {result.reason}"))
    return out
