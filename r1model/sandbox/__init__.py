"""A bubblewrap sandbox for model-written Python, and the judge that scores it.

Public API (see docs/API_sandbox.md):
    judge_function(code, tests, entry_point, timeout=...) -> Verdict   # HumanEval (None: MBPP asserts)
    judge_stdio(code, cases, timeout=...) -> Verdict                   # stdin/stdout cases
    judge_many(submissions, workers=None) -> list[Verdict]             # bounded pool, input order
    sandbox_available() -> bool
    SandboxUnavailable, SandboxLimits, Verdict, FunctionSubmission, StdioSubmission

Imports only the standard library (never torch or django).
"""

from r1model.sandbox.executor import SandboxLimits, SandboxUnavailable, run_python, sandbox_available
from r1model.sandbox.judge import STATUSES, Verdict, judge_function, judge_stdio
from r1model.sandbox.pool import FunctionSubmission, StdioSubmission, judge_many

__all__ = [
    "STATUSES", "FunctionSubmission", "SandboxLimits", "SandboxUnavailable", "StdioSubmission",
    "Verdict", "judge_function", "judge_many", "judge_stdio", "run_python", "sandbox_available",
]
