"""`python -m r1model score`: hand-computed fixture and the real-data check on gold solutions."""
import json
from pathlib import Path

import pytest

from r1model.evaluate.answer_check import check_answer
from r1model.evaluate.metrics import EVAL_METRICS
from r1model.evaluate.score import score_main, score_samples
from r1model.tasks import Problem

BENCH = Path(__file__).resolve().parents[2] / "r1model" / "evaluate" / "data"

# GSM8K gold solutions that do not end in their own answer. Each was read by hand:
GSM8K_EXPLAINED_MISSES = {
    "gsm8k-226": "solution ends '33.333...%, which rounds down to 33%': the gold is the rounded value",
    "gsm8k-493": "solution says $0.25 per razor; the gold answer 25 is in cents",
    "gsm8k-607": "solution says $0.10 per wash; the gold answer 10 is in cents",
    "gsm8k-1243": "solution says $0.50 per stick; the gold answer 50 is in cents",
    "gsm8k-593": "the answer is written in words ('it took three days')",
    "gsm8k-635": "the answer (4) is stated before the last equation '10 - 4 = 6'",
    "gsm8k-1176": "the last line says '1.76 is less than 2 inches ... in 2 days': first number is 1.76",
    "gsm8k-1038": "the solution stops at '6 years' (total); the question asks for the 4 more years",
}


def run_score(capsys, dataset, predictions, *extra):
    assert score_main(["--dataset", str(dataset), "--predictions", str(predictions), *extra]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def fixture_files(tmp_path):
    dataset = write_jsonl(tmp_path / "d.jsonl", [
        {"id": "p1", "problem": "3+4?", "answer": "7"},
        {"id": "p2", "problem": "half?", "answer": "\\frac12"},
        {"id": "p3", "problem": "pick", "answer": "B"},
    ])
    predictions = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "p1", "completion": "<answer>7</answer>"},
        {"id": "p1", "completion": "<answer>7</answer>"},
        {"id": "p1", "completion": "<answer>8</answer>"},
        {"id": "p1", "completion": "I give up"},
        {"id": "p2", "completion": "<answer>1/3</answer>"},
        {"id": "p2", "completion": "so \\boxed{\\frac{1}{3}}"},
        {"id": "p2", "completion": "\\boxed{0.5}"},
        {"id": "p3", "completion": "<answer>B</answer>"},
        {"id": "p3", "completion": "<answer>(B)</answer>"},
    ])
    return dataset, predictions


def test_score_matches_hand_computed_pass_and_cons(capsys, fixture_files):
    summary, _ = run_score(capsys, *fixture_files)
    # pass@1: p1 2/4, p2 1/3, p3 2/2; cons: p1 majority 7 (right), p2 majority 1/3 (wrong), p3 B (right)
    assert summary["n"] == 3 and summary["samples"] == 9 and summary["unparseable"] == 1
    assert summary["pass@1"] == pytest.approx((0.5 + 1 / 3 + 1) / 3, abs=1e-6)
    assert summary["cons@k"] == pytest.approx(2 / 3, abs=1e-6)


def test_score_with_k_reports_unbiased_pass_at_k_and_cons_over_the_first_k(capsys, fixture_files):
    summary, _ = run_score(capsys, *fixture_files, "--k", "2")
    # pass@2: p1 1 - C(2,2)/C(4,2) = 5/6; p2 1 - C(2,2)/C(3,2) = 2/3; p3 1
    assert summary["k"] == 2
    assert summary["pass@k"] == pytest.approx((5 / 6 + 2 / 3 + 1) / 3, abs=1e-6)
    assert summary["cons@k"] == pytest.approx(2 / 3, abs=1e-6)


def test_score_reports_the_shared_metric_names(capsys, fixture_files):
    summary, _ = run_score(capsys, *fixture_files, "--k", "2")
    # every name but mean_length (token counts are unknown for completions from elsewhere)
    assert set(EVAL_METRICS) - set(summary) == {"mean_length", "token_efficiency"}
    assert summary["format_rate"] == 0.0  # no prediction has a <think> part
    assert summary["unparseable_rate"] == pytest.approx(1 / 9)


def test_a_bare_final_number_is_not_an_answer(capsys, tmp_path):
    dataset = write_jsonl(tmp_path / "d.jsonl", [{"id": "p", "problem": "123+456?", "answer": "579"}])
    predictions = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "p", "completion": "The answer is 579"},
        {"id": "p", "completion": "<think>123+456</think> 579"},
        {"id": "p", "completion": "<answer>579</answer>"},
        {"id": "p", "completion": "so \\boxed{579}"},
    ])
    summary, _ = run_score(capsys, dataset, predictions)
    assert summary["pass@1"] == pytest.approx(0.5) and summary["unparseable"] == 2


def test_a_truncated_prediction_has_no_answer_unless_credited(capsys, tmp_path):
    dataset = write_jsonl(tmp_path / "d.jsonl", [{"id": "p", "problem": "3+4?", "answer": "7"}])
    predictions = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "p", "completion": "<think>3+4 is \\boxed{7} and then", "finish_reason": "length"},
        {"id": "p", "completion": "<think>so</think><answer>7</answer>", "truncated": True},
    ])
    summary, _ = run_score(capsys, dataset, predictions)
    assert summary["pass@1"] == 0.0 and summary["unparseable"] == 2 and summary["truncated_ratio"] == 1.0
    credited, _ = run_score(capsys, dataset, predictions, "--credit-truncated")
    assert credited["pass@1"] == 1.0 and credited["unparseable"] == 0


def test_cons_at_k_counts_different_correct_expressions_as_one_candidate():
    problem = Problem(id="cd", problem="Make 16 from 3, 5, 2", answer="(3+5)*2", task="countdown",
                      meta={"numbers": [3, 5, 2], "target": 16, "use_all": True})
    answers = ["(3+5)*2", "3+5+2", "2*(5+3)", "3+5+2", "(5+3)*2"]  # 3 different right, 2 identical wrong
    summary, [score] = score_samples([problem], {"cd": [f"<answer>{a}</answer>" for a in answers]})
    assert score.statuses == ["correct", "wrong", "correct", "wrong", "correct"]
    assert summary["cons@k"] == 1.0 and score.majority == "(3+5)*2"
    assert summary["pass@1"] == pytest.approx(3 / 5)


def test_table_lists_each_problem_before_the_json_line(capsys, fixture_files):
    _, table = run_score(capsys, *fixture_files, "--table")
    assert table[0].split()[:3] == ["id", "samples", "correct"]
    assert [line.split()[0] for line in table[1:]] == ["p1", "p2", "p3"]


def test_bad_predictions_file_is_a_clear_error(capsys, tmp_path, fixture_files):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p1"}\n')
    assert score_main(["--dataset", str(fixture_files[0]), "--predictions", str(bad)]) == 2
    assert "line 1" in capsys.readouterr().err


@pytest.mark.parametrize("name,floor", [("math500", 0.99), ("gsm8k_test", 0.99), ("aime24", 1.0)])
def test_free_text_checking_accepts_the_gold_solutions_of_the_shipped_benchmarks(name, floor):
    # The gold solutions are free text (GSM8K's end without a box): read with fallback=True, the
    # dataset-checking mode of check_answer, never the policy a model is scored by.
    rows = [json.loads(line) for line in (BENCH / f"{name}.jsonl").read_text().splitlines()]
    misses = {r["id"] for r in rows if not check_answer(r["solution"], r["answer"], fallback=True).correct}
    assert 1 - len(misses) / len(rows) >= floor
    assert misses <= set(GSM8K_EXPLAINED_MISSES), sorted(misses - set(GSM8K_EXPLAINED_MISSES))


def test_shuffled_solutions_score_near_zero(capsys, tmp_path):
    rows = [json.loads(line) for line in (BENCH / "math500.jsonl").read_text().splitlines()][:100]
    shifted = [{"id": r["id"], "completion": rows[(i + 1) % len(rows)]["solution"]} for i, r in enumerate(rows)]
    summary, _ = run_score(capsys, BENCH / "math500.jsonl", write_jsonl(tmp_path / "p.jsonl", shifted))
    assert summary["n"] == 100 and summary["pass@1"] < 0.05


def test_python_m_r1model_score_dispatches_here(fixture_files):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    dataset, predictions = fixture_files
    out = subprocess.run([sys.executable, "-m", "r1model", "score", "--dataset", str(dataset), "--predictions",
                          str(predictions)], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["samples"] == 9


def test_humaneval_canonical_solutions_score_one_through_the_sandbox(capsys, tmp_path):
    import gzip

    from r1model.evaluate.benchmarks import humaneval_path
    from r1model.sandbox import sandbox_available

    if not sandbox_available():
        pytest.skip("bubblewrap sandbox not available here")
    with gzip.open(humaneval_path(), "rt") as f:
        items = [json.loads(line) for line in f][:40]
    dataset = write_jsonl(tmp_path / "he.jsonl", items)  # task_id, prompt, canonical_solution, test, entry_point
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"id": i["task_id"], "completion": f"<answer>{i['canonical_solution']}</answer>"}
                                                     for i in items] +
                              [{"id": i["task_id"], "completion": "<answer>    return None\n</answer>"} for i in items])
    summary, _ = run_score(capsys, dataset, predictions)
    assert summary["n"] == 40 and summary["samples"] == 80 and summary["skipped"] == 0
    assert summary["pass@1"] == pytest.approx(0.5)  # every canonical body passes, every `return None` fails


def test_trace_verdict_maps_a_judge_error_to_skipped():
    from r1model.evaluate.score import trace_verdict

    assert trace_verdict("error") == ("skipped", None) and trace_verdict("skipped") == ("skipped", None)
    assert trace_verdict("correct") == ("correct", True)
    assert trace_verdict("wrong") == ("wrong", False) and trace_verdict("unparseable") == ("unparseable", False)
