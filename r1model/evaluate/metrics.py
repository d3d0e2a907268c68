"""Evaluation metrics of the R1 report: pass@1 (mean correctness over k samples), unbiased pass@k
(Chen et al. 2021, the HumanEval paper) and cons@k (majority vote over the samples' answers).

cons@k votes on the checker's verdict classes, not on raw answer strings, so that it means the same on
tasks with many right answers (countdown expressions, programs) as on single-answer ones: every answer the
checker accepted is one candidate ("correct"), each wrong answer votes for its normalised string, and
samples without an answer (unparseable, truncated, unjudgeable) do not vote. Three different correct
expressions therefore beat two identical wrong ones. (Wrong answers that are equivalent to each other but
written differently, e.g. '\\sqrt{9}' and '3' against the gold 4, stay separate candidates.)

Standard library only.
"""
from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from typing import Sequence


# The one set of metric names of every evaluation (the in-run held-out evaluation, `evaluate`, `score`):
# `eval` events, the trainer's `eval/<benchmark>/<name>` metrics and the summaries use exactly these.
EVAL_METRICS = {
    "pass@1": "Mean correctness over the k samples of each problem, averaged over problems (R1 report §3).",
    "cons@k": "Majority vote over each problem's k samples on the checker's verdict classes: all accepted "
              "answers are one candidate, wrong answers vote by normalised string, samples without an "
              "answer do not vote (so it is meaningful on tasks with many right answers).",
    "pass@k": "Unbiased pass@k (Chen et al. 2021) with k = the samples per problem.",
    "mean_length": "Mean completion length in tokens.",
    "token_efficiency": "pass@1 per mean response token (pass@1 / mean_length): the headline of length control "
                        "(Kimi k1.5 §2.4, long2short).",
    "format_rate": "Share of completions that are well-formed <think>…</think><answer>…</answer> and not truncated.",
    "worked_ratio": "Share of completions with a non-empty <think> part (reasoning written).",
    "truncated_ratio": "Share of completions cut off at the token limit.",
    "unparseable_rate": "Share of completions with no judgeable answer (no tag or box, truncated, unreadable).",
}


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


CORRECT = "correct"  # the vote class of every accepted answer


def vote_class(status: str, answer: str | None) -> str | None:
    """The candidate a sample votes for: CORRECT for an accepted answer, the normalised answer (prefixed, so
    no wrong answer can collide with CORRECT) for a wrong one, None (no vote) for anything else."""
    if status == "correct":
        return CORRECT
    if status == "wrong" and answer is not None and str(answer).strip():
        return "wrong:" + normalise_for_vote(str(answer))
    return None


def majority_vote(statuses: Sequence[str], answers: Sequence[str | None]) -> tuple[str | None, bool]:
    """(an answer of the winning class, whether that class is CORRECT) over the samples' verdicts; ties
    go to the class voted for first; (None, False) when no sample voted."""
    votes: Counter = Counter()
    first_answer: dict[str, str | None] = {}
    for status, answer in zip(statuses, answers, strict=True):
        key = vote_class(status, answer)
        if key is None:
            continue
        votes[key] += 1
        first_answer.setdefault(key, answer)
    if not votes:
        return None, False
    best = max(votes.values())
    winner = next(key for key in first_answer if votes[key] == best)  # dicts keep insertion order
    return first_answer[winner], winner == CORRECT


def cons_at_k(statuses: Sequence[str], answers: Sequence[str | None]) -> float:
    """1.0 when the majority verdict class (see the module docstring) is the correct one, else 0.0."""
    return 1.0 if majority_vote(statuses, answers)[1] else 0.0
