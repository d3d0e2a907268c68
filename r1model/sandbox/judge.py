"""Judging: run a program in the sandbox against tests and say what happened.

Two kinds of tests:
- stdin/stdout cases: the program reads the case's input; its whole output must equal the expected
  output, with trailing whitespace ignored at the end of each line and trailing blank lines ignored
  (nothing else: a correct prefix is a wrong answer);
- function-plus-asserts (HumanEval): see `harness.py`; a pass needs the checker to have returned.

`sandbox_error` means our sandbox failed, not the program: the code reward drops such samples from
the GRPO batch and counts them, it never scores them 0.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Sequence

from r1model.sandbox.executor import RunResult, SandboxLimits, run_python
from r1model.sandbox.harness import EXIT_ASSERTION, HARNESS

STATUSES = ("passed", "failed", "timeout", "memory", "runtime_error", "sandbox_error")
EXCERPT_CHARS = 2000
_SIGXCPU = 24


@dataclass(frozen=True)
class Verdict:
    """The outcome of judging one submission.

    Attributes:
        status: one of STATUSES.
        detail: one line for people: which case failed, the exception, the limit hit.
        stdout: the start of the program's stdout (at most EXCERPT_CHARS).
        stderr: the end of its stderr (at most EXCERPT_CHARS; tracebacks end there).
        wall_time: seconds spent running it (all cases together).
    """

    status: str
    detail: str = ""
    stdout: str = ""
    stderr: str = ""
    wall_time: float = 0.0

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"Verdict.status: {self.status!r} is not one of {STATUSES}")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def is_sandbox_error(self) -> bool:
        """True when the sandbox, not the program, failed: exclude from rewards, never score 0."""
        return self.status == "sandbox_error"


def _limits(timeout: float | None, limits: SandboxLimits | None) -> SandboxLimits:
    limits = limits or SandboxLimits()
    if timeout is not None:
        if timeout <= 0:
            raise ValueError(f"timeout: must be positive seconds, got {timeout!r}")
        limits = replace(limits, timeout=float(timeout))
    return limits


def judge_function(code: str, tests: str, entry_point: str | None, *, timeout: float | None = None,
                   limits: SandboxLimits | None = None) -> Verdict:
    """HumanEval style: run `code` (prompt + completion), then `tests`, then check(entry_point).

    With entry_point=None the tests are plain asserts (MBPP style) run after the solution.
    """
    if entry_point is not None and not entry_point.isidentifier():
        raise ValueError(f"entry_point: {entry_point!r} is not a Python identifier")
    nonce = secrets.token_hex(16)
    files = {"main.py": HARNESS, "solution.py": code, "tests.py": tests}
    run = _run(files, [entry_point or ""], nonce.encode() + b"\n", _limits(timeout, limits))
    return classify_function_run(run, nonce)


def judge_stdio(code: str, cases: Sequence[tuple[str, str]], *, timeout: float | None = None,
                limits: SandboxLimits | None = None) -> Verdict:
    """Run `code` once per (stdin, expected stdout) case; pass only if every case matches."""
    if not cases:
        raise ValueError("cases: at least one (stdin, expected) pair is needed")
    limits = _limits(timeout, limits)
    total = 0.0
    verdict = Verdict("passed")
    for i, case in enumerate(cases, 1):
        if len(case) != 2:
            raise ValueError(f"cases[{i - 1}]: expected a (stdin, expected) pair, got {len(case)} items")
        stdin, expected = case
        run = _run({"main.py": code}, [], stdin.encode(), limits)
        total += run.wall_time
        verdict = classify_stdio_run(run, expected)
        if not verdict.passed:
            verdict = replace(verdict, detail=f"case {i}/{len(cases)}: {verdict.detail}")
            break
    return replace(verdict, wall_time=total)


def _run(files: dict[str, str], args: list[str], stdin: bytes, limits: SandboxLimits) -> RunResult:
    # run_python places files and runs main.py; extra argv goes after the script path.
    return run_python(files, "main.py", stdin=stdin, limits=limits, args=args)


def normalise_output(text: str) -> str:
    """Drop trailing whitespace of every line and trailing blank lines; nothing else."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def classify_stdio_run(run: RunResult, expected: str) -> Verdict:
    verdict = _common_failure(run)
    if verdict is not None:
        return verdict
    out = run.stdout.decode("utf-8", errors="replace")
    if run.exit_code != 0:
        return _verdict("runtime_error", f"exit status {run.exit_code}: {_last_line(run)}", run)
    if normalise_output(out) != normalise_output(expected):
        return _verdict("failed", _first_difference(normalise_output(out), normalise_output(expected)), run)
    return _verdict("passed", "output matches", run)


def classify_function_run(run: RunResult, nonce: str) -> Verdict:
    verdict = _common_failure(run)
    if verdict is not None:
        return verdict
    lines = run.stdout.decode("utf-8", errors="replace").split("\n")
    if run.exit_code == 0 and nonce in (line.strip() for line in lines):
        return _verdict("passed", "check() returned", run)
    if run.exit_code == EXIT_ASSERTION:
        return _verdict("failed", f"a test failed: {_last_line(run) or 'AssertionError'}", run)
    if run.exit_code == 0:
        return _verdict("failed", "exited with status 0 before the tests finished", run)
    return _verdict("runtime_error", f"exit status {run.exit_code}: {_last_line(run)}", run)


def _common_failure(run: RunResult) -> Verdict | None:
    """Statuses decided before looking at the output: sandbox, time, output cap, memory."""
    if run.sandbox_error:
        return _verdict("sandbox_error", run.sandbox_error, run)
    if run.timed_out:
        return _verdict("timeout", f"killed after {run.wall_time:.2f} s (wall-clock limit)", run)
    if run.exit_code == 128 + _SIGXCPU:
        return _verdict("timeout", "killed by SIGXCPU (CPU-time limit)", run)
    if run.truncated:
        return _verdict("failed", "output limit exceeded: output truncated and the program killed", run)
    last = _last_line(run)
    if run.exit_code != 0 and (last.startswith("MemoryError") or "Cannot allocate memory" in last):
        return _verdict("memory", f"memory limit: {last}", run)
    return None


def _last_line(run: RunResult) -> str:
    for line in reversed(run.stderr.decode("utf-8", errors="replace").splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def _first_difference(out: str, expected: str) -> str:
    got, want = out.split("\n"), expected.split("\n")
    for i, (a, b) in enumerate(zip(got, want), 1):
        if a != b:
            return f"line {i}: expected {b[:80]!r}, got {a[:80]!r}"
    if len(got) < len(want):
        return f"output ended after {len(got) if out else 0} of {len(want)} lines"
    return f"{len(got) - len(want)} extra line(s) after the expected {len(want)}"


def _verdict(status: str, detail: str, run: RunResult) -> Verdict:
    return Verdict(
        status=status,
        detail=("[UNSAFE: no sandbox] " if run.unsafe else "") + detail,
        stdout=run.stdout[:EXCERPT_CHARS * 4].decode("utf-8", errors="replace")[:EXCERPT_CHARS],
        stderr=run.stderr[-EXCERPT_CHARS * 4:].decode("utf-8", errors="replace")[-EXCERPT_CHARS:],
        wall_time=run.wall_time,
    )
