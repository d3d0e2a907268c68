"""What every built-in task shares: seeded generation with disjoint train/test splits, and answer
extraction before the task's own exact check.

A problem belongs to the test split when a hash of its canonical key falls in the test share of the hash
space, so the splits are disjoint by construction whatever the seed, n or process.
"""
from __future__ import annotations

import hashlib
import random
import re
from fractions import Fraction

from r1model.tasks.problem import CheckResult, Problem

SPLITS = ("train", "test")


def stable_hash(text: str) -> int:
    """A 64-bit hash of text that is the same in every process (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


class Task:
    """A procedural task family. Subclasses set `name`, `difficulty` (default knobs with their values)
    and implement `make(rng, **knobs) -> Problem` (id and split are filled in here), `check_answer` and
    `worked_solution`."""

    name: str = ""
    description: str = ""  # one line for the lab
    difficulty: dict = {}
    difficulty_help: dict = {}  # knob -> one line for the lab's form
    test_share: float = 0.1  # the share of the problem space reserved for the test split
    # knobs of how worked solutions are written, not of which problems: kept out of the problems' seed and of
    # make(), they reach worked_solution(problem, rng=..., **knobs) with a random stream of their own
    style_knobs: tuple[str, ...] = ()

    # --- to implement -------------------------------------------------------------------------------
    def make(self, rng: random.Random, **knobs) -> Problem:
        raise NotImplementedError

    def check_answer(self, answer: str, problem: Problem) -> CheckResult:
        raise NotImplementedError

    def worked_solution(self, problem: Problem) -> str:
        raise NotImplementedError

    def key(self, problem: Problem) -> str:
        """The canonical identity used for the split and for de-duplication."""
        return problem.problem

    # --- shared ---------------------------------------------------------------------------------------
    def knobs(self, **difficulty) -> dict:
        unknown = sorted(set(difficulty) - set(self.difficulty))
        if unknown:
            raise ValueError(f"task {self.name!r} has no difficulty knob {', '.join(unknown)}; "
                             f"knobs: {sorted(self.difficulty)}")
        return {**self.difficulty, **difficulty}

    def split_of(self, problem: Problem) -> str:
        bucket = stable_hash(f"{self.name}|{self.key(problem)}") % 10_000
        return "test" if bucket < self.test_share * 10_000 else "train"

    def generate(self, split: str, n: int, seed: int = 0, *, at_most: bool = False, **difficulty) -> list[Problem]:
        """n problems of one split, the same for the same (split, n, seed, difficulty).

        The test split holds distinct problems; the train split samples with replacement (small
        difficulty settings have few problems). A test split with fewer than n distinct problems is an error,
        or with `at_most` all it has."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        knobs = self.knobs(**difficulty)
        style = {name: knobs.pop(name) for name in self.style_knobs}
        rng = random.Random(f"{self.name}|{split}|{seed}|{sorted(knobs.items())}")
        style_rng = random.Random(f"{self.name}|{split}|{seed}|style|{sorted(style.items())}")
        problems: list[Problem] = []
        seen: set[str] = set()
        attempts, budget = 0, 200 * n + 1000
        while len(problems) < n:
            attempts += 1
            if attempts > budget:
                if at_most and problems:
                    break
                raise ValueError(f"task {self.name!r} could not find {n} distinct {split} problems with "
                                 f"{knobs}; found {len(problems)} - raise the difficulty or lower n")
            problem = self.make(rng, **knobs)
            key = self.key(problem)
            if self.split_of(problem) != split or (split == "test" and key in seen):
                continue
            seen.add(key)
            problem.id = f"{self.name}-{stable_hash(key):016x}"
            problem.task = self.name
            problem.meta.setdefault("split", split)
            if not problem.solution:
                problem.solution = (self.worked_solution(problem, rng=style_rng, **style) if style
                                    else self.worked_solution(problem))
            problems.append(problem)
        return problems

    def take_answer(self, answer_text: str | None) -> str | CheckResult:
        """The answer to judge: the text itself, or the `<answer>` content (or last `\\boxed{}`) of a
        whole completion; a CheckResult when there is none."""
        if answer_text is None:
            return CheckResult("unparseable", "no answer", None)
        text = answer_text
        if "<answer>" in text or "\\boxed" in text or "<think>" in text:
            from r1model.evaluate.answer_check import extract_answer

            text = extract_answer(text)
            if text is None:
                return CheckResult("unparseable", "no <answer> or \\boxed{} in the completion", None)
        if not text.strip():
            return CheckResult("unparseable", "empty answer", "")
        return text  # unstripped: indentation matters to code

    def check(self, answer_text: str, problem: Problem) -> CheckResult:
        """Judge an answer. A whole completion is accepted too (see take_answer)."""
        taken = self.take_answer(answer_text)
        return taken if isinstance(taken, CheckResult) else self.check_answer(taken, problem)

    def check_many(self, answer_texts: list[str], problems: list[Problem]) -> list[CheckResult]:
        """check() for many answers (tasks with a costly checker run them in parallel)."""
        return [self.check(text, problem) for text, problem in zip(answer_texts, problems)]


_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)(/[+-]?\d+)?")


def parse_integer(text: str) -> int | None:
    """An integer written plainly ('80235', '80,235', '-7'); None for anything else."""
    cleaned = text.strip().rstrip(".").replace(",", "").replace(" ", "").replace("\u2212", "-")
    return int(cleaned) if _INTEGER.fullmatch(cleaned) else None


def check_exact(answer: str, problem: Problem, parse=parse_integer, what: str = "an integer") -> CheckResult:
    """`answer` read by `parse` against the problem's integer answer: unparseable (not WHAT), correct or wrong."""
    value = parse(answer)
    if value is None:
        return CheckResult("unparseable", f"answer is not {what}", answer)
    if value == int(problem.answer):
        return CheckResult("correct", "", answer)
    return CheckResult("wrong", f"{value} != {problem.answer}", answer)


def parse_number(text: str) -> Fraction | None:
    """An exact rational from '5', '-2.5', '7/2', '\\frac{7}{2}' or 'x = 3'; None for anything else."""
    cleaned = text.strip().rstrip(".").replace(" ", "").replace(",", "").replace("\u2212", "-")
    cleaned = re.sub(r"^[a-zA-Z]=", "", cleaned).replace("$", "")
    frac = re.fullmatch(r"([+-]?)\\[dt]?frac\{([+-]?\d+)\}\{([+-]?\d+)\}", cleaned)
    if frac:
        cleaned = f"{frac.group(1)}{frac.group(2)}/{frac.group(3)}"
    if not _NUMBER.fullmatch(cleaned):
        return None
    try:
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None
