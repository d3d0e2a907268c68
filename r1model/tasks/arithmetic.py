"""Multi-digit addition and multiplication: the aha-mini tasks.

Problems are written compactly ('123+456') because a character-level tiny model reads every character.
Worked solutions follow the schoolbook order, least significant digit first, one short line per step.
Addition's worked text can also be written in words, in English, in Chinese or switching between the two from
line to line (difficulty knobs `language`, `code_switch`): the bilingual base of the language-mixing finding
(R1 report §2.3.2).
"""
from __future__ import annotations

import random

from r1model.tasks.base import Task, check_exact
from r1model.tasks.problem import Problem


def _operand(rng: random.Random, min_digits: int, digits: int) -> int:
    width = rng.randint(min_digits, digits)
    return rng.randint(10 ** (width - 1) if width > 1 else 0, 10**width - 1)


LANGUAGES = ("symbols", "en", "zh", "en+zh")


def _worded_step(x: int, y: int, carry: int, s: int, language: str) -> str:
    if language == "zh":
        return f"{x}加{y}加进位{carry}等于{s}"
    return f"{x} plus {y} plus carry {carry} is {s}"


def _worded_total(total: int, language: str) -> str:
    return f"所以和是{total}" if language == "zh" else f"so the sum is {total}"


class AdditionTask(Task):
    """a+b with each operand of min_digits..digits digits."""

    name = "addition"
    description = "multi-digit addition, worked as one carry step per digit"
    difficulty = {"digits": 6, "min_digits": None, "language": "symbols", "code_switch": 0.3}
    difficulty_help = {
        "digits": "most digits per operand", "min_digits": "fewest digits per operand (default: digits)",
        "language": "how worked lines are written: symbols (x+y+carry=s), en (English words), zh (Chinese) or "
                    "en+zh (English first, then each line may switch language; the problems stay the same)",
        "code_switch": "en+zh: chance that a worked line is in the other language than the line before",
    }
    style_knobs = ("language", "code_switch")

    def knobs(self, **difficulty):
        knobs = super().knobs(**difficulty)
        if knobs["language"] not in LANGUAGES:
            raise ValueError(f"difficulty.language must be one of {', '.join(LANGUAGES)}, not {knobs['language']!r}")
        switch = knobs["code_switch"]
        if isinstance(switch, bool) or not isinstance(switch, (int, float)) or not 0.0 <= switch <= 1.0:
            raise ValueError(f"difficulty.code_switch must be a number within [0, 1], not {switch!r}")
        return knobs

    def make(self, rng, digits, min_digits):
        if digits < 1:
            raise ValueError(f"digits must be >= 1, not {digits}")
        low = digits if min_digits is None else min_digits
        a, b = _operand(rng, low, digits), _operand(rng, low, digits)
        return Problem(id="", problem=f"{a}+{b}", answer=str(a + b), meta={"a": a, "b": b})

    def check_answer(self, answer, problem):
        answer = answer.strip()
        return check_exact(answer, problem)

    def worked_solution(self, problem, rng: random.Random | None = None, language: str = "symbols",
                        code_switch: float = 0.3):
        """One `x+y+carry=s` line per digit, least significant first (the trial's format). In words
        (language en / zh / en+zh): `x plus y plus carry c is s` or `x加y加进位c等于s` per digit, then
        `so the sum is N` / `所以和是N`; en+zh starts in English and writes each next line in the other
        language with chance code_switch (drawn from rng)."""
        a, b = (int(part) for part in problem.problem.split("+"))
        digits_a, digits_b = str(a)[::-1], str(b)[::-1]
        carry, steps = 0, []
        for i in range(max(len(digits_a), len(digits_b))):
            x = int(digits_a[i]) if i < len(digits_a) else 0
            y = int(digits_b[i]) if i < len(digits_b) else 0
            s = x + y + carry
            steps.append((x, y, carry, s))
            carry = s // 10
        if language == "symbols":
            return "\n".join(f"{x}+{y}+{c}={s}" for x, y, c, s in steps)
        if language not in LANGUAGES:
            raise ValueError(f"difficulty.language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        languages = [language] * (len(steps) + 1)
        if language == "en+zh":
            rng = rng or random.Random(problem.problem)
            languages[0] = "en"
            for i in range(1, len(languages)):
                switch = rng.random() < code_switch
                languages[i] = ({"en": "zh", "zh": "en"}[languages[i - 1]] if switch else languages[i - 1])
        lines = [_worded_step(*step, lang) for step, lang in zip(steps, languages)]
        lines.append(_worded_total(a + b, languages[-1]))
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
        return check_exact(answer, problem)

    def worked_solution(self, problem):
        a, b = (int(part) for part in problem.problem.split("*"))
        return "\n".join(schoolbook_lines(a, b))


def schoolbook_lines(a: int, b: int) -> list[str]:
    """Long multiplication a*b: one partial product per digit of b (shifted), then a running sum — the worked
    solution, and what step labels check a multiplication's lines against (r1model.tasks.steps)."""
    lines, total = [], 0
    for place, digit in enumerate(str(b)[::-1]):
        partial = a * int(digit) * 10**place
        lines.append(f"{a}*{int(digit) * 10**place}={partial}")
        if place:
            lines.append(f"{total}+{partial}={total + partial}")
        total += partial
    return lines
