"""Judge many submissions at once, each in its own sandbox, at most `workers` at a time.

Threads are enough: each one only waits on its sandbox's pipes, and every sandbox is a separate
bwrap process tree with its own namespaces, /tmp and limits, so nothing one run does can reach
another. Verdicts come back in input order.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence, Union

from r1model.sandbox.executor import SandboxLimits, SandboxUnavailable, _bwrap_works, unsafe_mode
from r1model.sandbox.judge import Verdict, judge_function, judge_stdio


@dataclass(frozen=True)
class FunctionSubmission:
    """HumanEval style: `code` (prompt + completion), `tests` defining check(), the entry point.

    entry_point None: `tests` are plain asserts (MBPP style), run after the code.
    """

    code: str
    tests: str
    entry_point: str | None
    timeout: float | None = None


@dataclass(frozen=True)
class StdioSubmission:
    """A whole program and its (stdin, expected stdout) cases."""

    code: str
    cases: Sequence[tuple[str, str]]
    timeout: float | None = None


Submission = Union[FunctionSubmission, StdioSubmission]


def default_workers() -> int:
    return os.cpu_count() or 1


def judge_one(sub: Submission, limits: SandboxLimits | None = None) -> Verdict:
    if isinstance(sub, FunctionSubmission):
        return judge_function(sub.code, sub.tests, sub.entry_point, timeout=sub.timeout, limits=limits)
    if isinstance(sub, StdioSubmission):
        return judge_stdio(sub.code, sub.cases, timeout=sub.timeout, limits=limits)
    raise TypeError(f"submission: expected FunctionSubmission or StdioSubmission, got {type(sub).__name__}")


def judge_many(submissions: Sequence[Submission], *, workers: int | None = None,
               limits: SandboxLimits | None = None) -> list[Verdict]:
    """Judge every submission (bounded concurrency); verdicts in input order.

    Raises SandboxUnavailable up front, before running anything, when there is no sandbox.
    A failure of our own machinery on one submission becomes its `sandbox_error` verdict.
    """
    workers = workers or default_workers()
    if workers < 1:
        raise ValueError(f"workers: must be at least 1, got {workers}")
    for i, sub in enumerate(submissions):
        if not isinstance(sub, (FunctionSubmission, StdioSubmission)):
            raise TypeError(f"submissions[{i}]: expected FunctionSubmission or StdioSubmission, "
                            f"got {type(sub).__name__}")
    reason = _bwrap_works()
    if reason is not None and not unsafe_mode():
        raise SandboxUnavailable(reason)

    def guarded(sub: Submission) -> Verdict:
        try:
            return judge_one(sub, limits)
        except (ValueError, TypeError, SandboxUnavailable):
            raise
        except Exception as exc:  # our machinery broke (e.g. out of fds): not the program's fault
            return Verdict("sandbox_error", f"{type(exc).__name__}: {exc}")

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(guarded, submissions))
