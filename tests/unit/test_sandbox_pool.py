"""The pool: many submissions at once, each in its own sandbox, verdicts in input order."""

import os
import time

import pytest

from r1model.sandbox import (
    FunctionSubmission, SandboxUnavailable, StdioSubmission, judge_many, sandbox_available,
)
from r1model.sandbox import executor
from r1model.sandbox.pool import default_workers

needs_bwrap = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap does not work here")
WORKERS = 2


def value(i: int) -> int:
    return (i * 7919 + 13) % 100_003


def submission(i: int):
    """Submission i prints/returns value(i); some are wrong or crash on purpose.

    i % 10 == 3: wrong answer (off by one) -> failed
    i % 25 == 7: raises at import           -> runtime_error
    even i: stdin/stdout, odd i: function-plus-asserts.
    """
    answer = value(i) + (1 if i % 10 == 3 else 0)
    crash = "raise ValueError('boom %d')\n" % i if i % 25 == 7 else ""
    if i % 2 == 0:
        code = f"{crash}n = int(input())\nprint('id', n)\nprint({answer})\n"
        return StdioSubmission(code, [(f"{i}\n", f"id {i}\n{value(i)}\n")])
    code = f"{crash}print('id', {i})\ndef answer():\n    return {answer}\n"
    tests = f"def check(candidate):\n    assert candidate() == {value(i)}\n"
    return FunctionSubmission(code, tests, "answer")


def expected_status(i: int) -> str:
    if i % 25 == 7:
        return "runtime_error"
    return "failed" if i % 10 == 3 else "passed"


@pytest.mark.slow  # ~20 s on an idle 2-core machine, up to a minute when it is shared
@needs_bwrap
def test_thousand_submissions_get_their_own_right_verdicts_in_order():
    subs = [submission(i) for i in range(1000)]
    start = time.monotonic()
    verdicts = judge_many(subs, workers=WORKERS)
    elapsed = time.monotonic() - start
    assert len(verdicts) == 1000
    wrong = [(i, v.status, v.detail) for i, v in enumerate(verdicts) if v.status != expected_status(i)]
    assert wrong == []
    # No cross-talk: every verdict carries its own submission's id in its output excerpt.
    mixed = [i for i, v in enumerate(verdicts) if expected_status(i) != "runtime_error"
             and f"id {i}\n" not in v.stdout]
    assert mixed == []
    print(f"1000 submissions in {elapsed:.1f} s with {WORKERS} workers")


@needs_bwrap
def test_default_pool_size_is_the_core_count_and_order_is_kept():
    subs = [StdioSubmission(f"import time\ntime.sleep({0.05 * (5 - i)})\nprint({i})", [("", str(i))])
            for i in range(5)]
    assert default_workers() == (os.cpu_count() or 1)
    verdicts = judge_many(subs)
    assert [v.stdout.strip() for v in verdicts] == ["0", "1", "2", "3", "4"]
    assert all(v.passed for v in verdicts)


def test_pool_rejects_what_is_not_a_submission():
    with pytest.raises(TypeError, match=r"submissions\[1\]"):
        judge_many([StdioSubmission("print(1)", [("", "1")]), "print(1)"], workers=1)


def test_pool_refuses_up_front_without_a_sandbox(monkeypatch):
    executor._bwrap_works.cache_clear()
    monkeypatch.setattr(executor, "bwrap_path", lambda: None)
    monkeypatch.delenv(executor.UNSAFE_ENV, raising=False)
    try:
        with pytest.raises(SandboxUnavailable, match="not installed"):
            judge_many([StdioSubmission("print(1)", [("", "1")])], workers=1)
    finally:
        executor._bwrap_works.cache_clear()


@needs_bwrap
def test_hostile_neighbours_do_not_disturb_the_others():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    hog = "x = []\nwhile True:\n    x.append(bytearray(2**24))\n"
    filler = ("import os\ni = 0\ntry:\n    while True:\n        open('/tmp/f%d' % i, 'wb').write(b'x' * 2**22)\n"
              "        i += 1\nexcept OSError as exc:\n    print('full', exc.errno)\n")
    honest = [StdioSubmission(f"import os\nprint({i}, len(os.listdir('/tmp')))", [("", f"{i} 0")])
              for i in range(6)]
    subs = [StdioSubmission(bomb, [("", "")], timeout=2), honest[0], honest[1],
            StdioSubmission(hog, [("", "")]), honest[2], StdioSubmission(filler, [("", "full 28")]),
            honest[3], honest[4], honest[5]]
    verdicts = judge_many(subs, workers=WORKERS)
    assert [v.status for v in verdicts] == ["timeout", "passed", "passed", "memory", "passed", "passed",
                                            "passed", "passed", "passed"]
