"""Multi-digit addition and multiplication: the aha-mini tasks.

Problems are written compactly ('123+456') because a character-level tiny model reads every character.
Worked solutions follow the schoolbook order, least significant digit first, one short line per step.
"""
from __future__ import annotations

import random

from r1model.tasks.base import Task, parse_integer
from r1model.tasks.problem import CheckResult, Problem


def _operand(rng: random.Random, min_digits: int, digits: int) -> int:
    width = rng.randint(min_digits, digits)
    return rng.randint(10 ** (width - 1) if width > 1 else 0, 10**width - 1)


def _check_integer(answer: str, problem: Problem) -> CheckResult:
    value = parse_integer(answer)
    if value is None:
        return CheckResult("unparseable", "answer is not an integer", answer)
    if value == int(problem.answer):
        return CheckResult("correct", "", answer)
    return CheckResult("wrong", f"{value} != {problem.answer}", answer)


class AdditionTask(Task):
    """a+b with each operand of min_digits..digits digits."""

    name = "addition"
    description = "multi-digit addition, worked as one carry step per digit"
    difficulty = {"digits": 6, "min_digits": None}
    difficulty_help = {"digits": "most digits per operand", "min_digits": "fewest digits per operand (default: digits)"}

    def make(self, rng, digits, min_digits):
        if digits < 1:
            raise ValueError(f"digits must be >= 1, not {digits}")
        low = digits if min_digits is None else min_digits
        a, b = _operand(rng, low, digits), _operand(rng, low, digits)
        return Problem(id="", problem=f"{a}+{b}", answer=str(a + b), meta={"a": a, "b": b})

    def check_answer(self, answer, problem):
        answer = answer.strip()
        return _check_integer(answer, problem)

    def worked_solution(self, problem):
        """One `x+y+carry=s` line per digit, least significant first (the trial's format)."""
        a, b = (int(part) for part in problem.problem.split("+"))
        digits_a, digits_b = str(a)[::-1], str(b)[::-1]
        carry, lines = 0, []
        for i in range(max(len(digits_a), len(digits_b))):
            x = int(digits_a[i]) if i < len(digits_a) else 0
            y = int(digits_b[i]) if i < len(digits_b) else 0
            s = x + y + carry
            lines.append(f"{x}+{y}+{carry}={s}")
            carry = s // 10
        return "\n".join(lines)


class MultiplicationTask(Task):
    """a*b, a with digits digits and b with b_digits digits (b defaults to a's width)."""

    name = "multiplication"
    description = "multi-digit multiplication, worked as partial products"
    difficulty = {"digits": 3, "b_digits": None}
    difficulty_help = {"digits": "digits of the first factor", "b_digits": "digits of the second (default: digits)"}

    def make(self, rng, digits, b_digits):
        if digits < 1:
            raise ValueError(f"digits must be >= 1, not {digits}")
        a = _operand(rng, digits, digits)
        b = _operand(rng, b_digits or digits, b_digits or digits)
        return Problem(id="", problem=f"{a}*{b}", answer=str(a * b), meta={"a": a, "b": b})

    def check_answer(self, answer, problem):
        answer = answer.strip()
        return _check_integer(answer, problem)

    def worked_solution(self, problem):
        """Long multiplication: one partial product per digit of b (shifted), then a running sum."""
        a, b = (int(part) for part in problem.problem.split("*"))
        lines, total = [], 0
        for place, digit in enumerate(str(b)[::-1]):
            partial = a * int(digit) * 10**place
            lines.append(f"{a}*{int(digit) * 10**place}={partial}")
            if place:
                lines.append(f"{total}+{partial}={total + partial}")
            total += partial
        return "\n".join(lines)
