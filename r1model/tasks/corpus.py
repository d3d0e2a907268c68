"""Pretraining corpora from the built-in tasks: a mix of direct answers and worked solutions, so that a
base model prefers short answers yet can write steps — the starting point R1-Zero needs (aha-mini).

The prompt is the problem text; the caller renders it into the template (the loss covers the
completion only: loss on the random prompt digits wastes the budget and leaves a base unable to add).
"""
from __future__ import annotations

import random

from r1model.tasks import get_task
from r1model.template import format_completion


def pretrain_examples(task: str, n: int, seed: int = 0, worked_fraction: float = 0.3, tags: bool = True,
                      split: str = "train", **difficulty) -> list[tuple[str, str]]:
    """n (prompt, completion) pairs from a task's train split.

    With tags the completion has the R1-Zero shape, `<think>{worked or empty}</think><answer>{a}</answer>`
    (direct answers have an empty think); without tags it is the worked text and the answer on the
    last line, or the answer alone."""
    if not 0.0 <= worked_fraction <= 1.0:
        raise ValueError(f"worked_fraction must be within [0, 1], not {worked_fraction}")
    problems = get_task(task).generate(split, n, seed=seed, **difficulty)
    rng = random.Random(f"corpus|{task}|{seed}|{worked_fraction}")
    examples = []
    for problem in problems:
        worked = problem.solution if rng.random() < worked_fraction else ""
        if tags:
            completion = format_completion(worked, problem.answer)
        else:
            completion = f"{worked}\n{problem.answer}" if worked else problem.answer
        examples.append((problem.problem, completion))
    return examples
