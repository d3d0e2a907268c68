"""pass@k, pass@1, cons@k against hand-computed values, and the benchmark registry."""
from math import comb

import pytest

from r1model.evaluate.benchmarks import list_benchmarks, load_benchmark
from r1model.evaluate.metrics import cons_at_k, majority_vote, pass_at_1, pass_at_k


@pytest.mark.parametrize("n,c,k,expected", [
    (5, 0, 1, 0.0), (5, 5, 3, 1.0), (10, 3, 1, 0.3), (4, 2, 2, 5 / 6), (3, 1, 2, 2 / 3), (16, 1, 8, 0.5),
])
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_equals_the_combinatorial_formula():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - comb(n - c, k) / comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12)


def test_pass_at_k_refuses_impossible_counts():
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 2, 5)


def test_pass_at_1_is_mean_correctness():
    assert pass_at_1([True, False, True, True]) == 0.75
    with pytest.raises(ValueError):
        pass_at_1([])


def test_wrong_answers_vote_by_normalised_form_and_ties_go_to_the_first_seen():
    def wrong(*answers):
        return majority_vote(["wrong"] * len(answers), list(answers))

    assert wrong("1/2", "\\frac{1}{2}", "0.5", "3", "3") == ("1/2", False)
    assert wrong("\\left( 1,2 \\right)", "(1,2)", "7") == ("\\left( 1,2 \\right)", False)
    assert wrong("4", "5") == ("4", False)
    assert majority_vote(["unparseable", "error", "unparseable"], [None, "9", ""]) == (None, False)


def test_cons_at_k_counts_the_majority_verdict_class():
    assert cons_at_k(["correct", "correct", "wrong", "unparseable"], ["7", "7", "8", None]) == 1.0
    assert cons_at_k(["wrong", "wrong", "correct"], ["8", "8", "7"]) == 0.0
    assert cons_at_k(["unparseable", "unparseable"], [None, None]) == 0.0


def test_cons_at_k_three_different_correct_answers_beat_two_identical_wrong_ones():
    # countdown: three different expressions that all make the target, two copies of one that does not
    statuses = ["correct", "wrong", "correct", "wrong", "correct"]
    answers = ["(3+5)*2", "3+5+2", "2*(5+3)", "3+5+2", "(5+3)*2"]
    assert majority_vote(statuses, answers) == ("(3+5)*2", True)
    assert cons_at_k(statuses, answers) == 1.0
    # voting on raw strings would have elected "3+5+2" (2 votes against 1, 1, 1)


def test_samples_without_an_answer_do_not_vote():
    # two truncated/unparseable samples never outvote one correct answer
    assert cons_at_k(["unparseable", "unparseable", "correct"], [None, None, "7"]) == 1.0


def test_every_registered_benchmark_loads_problems_with_gold_answers():
    for name in list_benchmarks():
        problems = load_benchmark(name, n=5)
        assert len(problems) == 5 and all(p.answer for p in problems), name


def test_benchmark_sizes_and_unknown_name():
    assert len(load_benchmark("math500")) == 500
    assert len(load_benchmark("gsm8k")) == 1319
    assert len(load_benchmark("aime24")) == 30 and len(load_benchmark("amc23")) == 40
    assert len(load_benchmark("humaneval")) == 164
    assert load_benchmark("addition-test", n=20) == load_benchmark("addition-test", n=20)
    with pytest.raises(KeyError, match="math500"):
        load_benchmark("mmlu")
