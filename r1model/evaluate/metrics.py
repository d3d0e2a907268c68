"""Evaluation metrics of the R1 report: pass@1 (mean correctness over k samples), unbiased pass@k
(Chen et al. 2021, the HumanEval paper) and cons@k (majority vote over the extracted answers).

Standard library only.
"""
from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from typing import Callable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """P(at least one of k samples drawn without replacement from n, c of them correct, is correct)
    = 1 - C(n-c, k) / C(n, k), computed as a stable product (Chen et al. 2021, Fig. 3)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def pass_at_1(correct: Sequence[bool]) -> float:
    """Mean correctness of one problem's samples (the report's pass@1 with k samples)."""
    if not correct:
        raise ValueError("pass@1 needs at least one sample")
    return sum(bool(x) for x in correct) / len(correct)


def normalise_for_vote(answer: str) -> str:
    """A canonical form so that '1/2', '\\frac{1}{2}' and '0.5' vote together, and '\\left( 3 \\right)'
    matches '(3)'. Non-numeric answers: LaTeX spacing, \\left/\\right, $ and a trailing period removed."""
    from r1model.evaluate.answer_check import to_number

    value = to_number(answer)
    if value is not None:
        return str(Fraction(value))
    s = re.sub(r"\\left|\\right|\\[,!;: ]|\$|\\displaystyle", "", answer)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    return "".join(s.split()).rstrip(".")


def majority_answer(extracted_answers: Sequence[str | None]) -> str | None:
    """The most common answer (by normalised form; ties go to the one seen first); None if none."""
    votes: Counter = Counter()
    first_form: dict[str, str] = {}
    for answer in extracted_answers:
        if answer is None or not str(answer).strip():
            continue
        key = normalise_for_vote(str(answer))
        votes[key] += 1
        first_form.setdefault(key, str(answer))
    if not votes:
        return None
    best = max(votes.values())
    winner = next(key for key in first_form if votes[key] == best)  # dicts keep insertion order
    return first_form[winner]


def cons_at_k(extracted_answers: Sequence[str | None], gold: str,
              checker: Callable[[str, str], bool]) -> float:
    """1.0 when the majority answer is correct by checker(answer, gold), else 0.0."""
    winner = majority_answer(extracted_answers)
    return 1.0 if winner is not None and checker(winner, gold) else 0.0
