"""Judging rules: on hand-made run results (no sandbox needed), then a few harness rules end to end."""

import pytest

from r1model.sandbox.executor import RunResult, sandbox_available
from r1model.sandbox.harness import EXIT_ASSERTION
from r1model.sandbox.judge import (
    Verdict, classify_function_run, classify_stdio_run, judge_function, judge_stdio, normalise_output,
)

NONCE = "5f1e2d3c4b5a69788796a5b4c3d2e1f0"


def run(stdout=b"", stderr=b"", exit_code=0, **kw):
    return RunResult(exit_code=exit_code, stdout=stdout, stderr=stderr, **kw)


def test_normalise_output_drops_only_trailing_whitespace_and_blank_lines():
    assert normalise_output("1 2  \n3\t\n\n\n") == "1 2\n3"
    assert normalise_output("  leading kept\n") == "  leading kept"
    assert normalise_output("a\n\nb\n") == "a\n\nb"


def test_stdio_whole_output_must_match_not_a_prefix():
    assert classify_stdio_run(run(b"1\n2\n3\n"), "1\n2\n3\n").passed
    prefix = classify_stdio_run(run(b"1\n2\n"), "1\n2\n3\n")
    assert prefix.status == "failed" and "ended after 2 of 3" in prefix.detail
    extra = classify_stdio_run(run(b"1\n2\n3\n4\n"), "1\n2\n3\n")
    assert extra.status == "failed"


def test_stdio_trailing_spaces_and_newlines_are_forgiven_but_inner_spaces_are_not():
    assert classify_stdio_run(run(b"1 2   \r\n\n\n"), "1 2").passed
    assert classify_stdio_run(run(b"1  2\n"), "1 2\n").status == "failed"


def test_stdio_right_output_with_nonzero_exit_is_runtime_error():
    verdict = classify_stdio_run(run(b"3\n", b"Traceback\nValueError: x\n", exit_code=1), "3\n")
    assert verdict.status == "runtime_error" and "ValueError: x" in verdict.detail


def test_function_pass_needs_the_nonce_and_exit_zero():
    assert classify_function_run(run(b"noise\n" + NONCE.encode() + b"\n"), NONCE).passed
    early = classify_function_run(run(b""), NONCE)
    assert early.status == "failed" and "before the tests finished" in early.detail
    wrong_nonce = classify_function_run(run(b"0" * 32 + b"\n"), NONCE)
    assert wrong_nonce.status == "failed"
    crashed_after = classify_function_run(run(NONCE.encode() + b"\n", exit_code=1), NONCE)
    assert crashed_after.status == "runtime_error"


def test_function_assertion_exit_is_failed_and_other_exits_are_runtime_errors():
    failed = classify_function_run(run(b"", b"AssertionError\n", exit_code=EXIT_ASSERTION), NONCE)
    assert failed.status == "failed"
    raised = classify_function_run(run(b"", b"Traceback\nZeroDivisionError: division by zero\n", exit_code=1), NONCE)
    assert raised.status == "runtime_error" and "ZeroDivisionError" in raised.detail


def test_limits_map_to_their_statuses():
    assert classify_function_run(run(timed_out=True, exit_code=None), NONCE).status == "timeout"
    assert classify_function_run(run(exit_code=128 + 24), NONCE).status == "timeout"
    assert classify_stdio_run(run(b"", b"Traceback\nMemoryError\n", exit_code=1), "").status == "memory"
    truncated = classify_stdio_run(run(b"x" * 10, truncated=True, exit_code=None), "x" * 10)
    assert truncated.status == "failed" and "output limit" in truncated.detail


def test_sandbox_failure_is_sandbox_error_even_if_output_looks_right():
    verdict = classify_function_run(run(NONCE.encode(), sandbox_error="bwrap setup failed"), NONCE)
    assert verdict.status == "sandbox_error" and verdict.is_sandbox_error and not verdict.passed


def test_a_program_printing_a_bwrap_message_is_not_a_sandbox_error():
    verdict = classify_stdio_run(run(b"", b"bwrap: Can't mount proc\n", exit_code=1), "42")
    assert verdict.status == "runtime_error"


def test_verdict_rejects_unknown_status():
    with pytest.raises(ValueError, match="Verdict.status"):
        Verdict("ok")


def test_excerpts_are_bounded():
    verdict = classify_stdio_run(run(b"y" * 100_000, b"e" * 100_000, exit_code=1), "")
    assert len(verdict.stdout) <= 2000 and len(verdict.stderr) <= 2000


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="entry_point"):
        judge_function("x = 1", "def check(c): pass", "not an identifier")
    with pytest.raises(ValueError, match="cases"):
        judge_stdio("print(1)", [])
    with pytest.raises(ValueError, match="timeout"):
        judge_stdio("print(1)", [("", "1")], timeout=0)


needs_bwrap = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap does not work here")
MBPP_TESTS = "assert remove_char('hello', 'l') == 'heo'\nassert remove_char('abc', 'x') == 'abc'\n"


@needs_bwrap
def test_plain_asserts_without_an_entry_point_pass_and_fail_on_their_own():
    right = "def remove_char(s, c):\n    return s.replace(c, '')\n"
    wrong = "def remove_char(s, c):\n    return s\n"
    assert judge_function(right, MBPP_TESTS, None).passed
    assert judge_function(wrong, MBPP_TESTS, None).status == "failed"


@needs_bwrap
def test_plain_asserts_guard_the_solution_functions_against_always_equal_objects():
    hack = ("class Yes(str):\n    def __eq__(self, other):\n        return True\n"
            "def remove_char(s, c):\n    return Yes('')\n")
    verdict = judge_function(hack, MBPP_TESTS, None)
    assert verdict.status == "failed" and "plain built-in value" in verdict.detail


@needs_bwrap
def test_check_still_runs_after_the_solution_rebinds_set_and_exec():
    tests = "def check(candidate):\n    assert candidate() == [3]\n"
    hack = ("import builtins\nclass Yes:\n    def __eq__(self, other):\n        return True\n"
            "class AllSeen(set):\n    def __contains__(self, x):\n        return True\n"
            "builtins.set = AllSeen\nbuiltins.exec = lambda *a, **k: None\n"
            "def f():\n    return [Yes()]\n")
    verdict = judge_function(hack, tests, "f")
    assert verdict.status == "failed" and "plain built-in value" in verdict.detail
