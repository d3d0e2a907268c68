"""Built-in task generators: seeded, disjoint splits, exact checkers that agree with the generator."""
import subprocess
import sys
from pathlib import Path

import pytest

from r1model.tasks import TASKS, Problem, get_task
from r1model.tasks.corpus import pretrain_examples
from r1model.tasks.countdown import ExpressionError, evaluate_expression

ROOT = Path(__file__).resolve().parents[2]
ARITHMETIC_TASKS = ["addition", "multiplication", "countdown", "linear_equation"]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_generation_is_reproducible_for_a_seed_and_differs_across_seeds(name):
    task = get_task(name)
    first = [p.to_dict() for p in task.generate("train", 30, seed=7)]
    again = [p.to_dict() for p in task.generate("train", 30, seed=7)]
    other = [p.to_dict() for p in task.generate("train", 30, seed=8)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", sorted(TASKS))
def test_train_and_test_splits_never_share_a_problem(name):
    task = get_task(name)
    n_test = 40 if name == "code" else 300
    test = {task.key(p) for p in task.generate("test", n_test, seed=0)}
    train = {task.key(p) for seed in range(3) for p in task.generate("train", 1000, seed=seed)}
    assert len(test) == n_test  # the test split holds distinct problems
    assert not test & train


def test_a_test_split_too_small_for_n_is_an_error_or_with_at_most_all_it_has():
    task = get_task("addition")
    with pytest.raises(ValueError, match="could not find 64 distinct test problems"):
        task.generate("test", 64, digits=1)
    few = task.generate("test", 64, at_most=True, digits=1)
    assert 0 < len(few) < 64 and len({task.key(p) for p in few}) == len(few)
    assert all(task.split_of(p) == "test" for p in few)


@pytest.mark.parametrize("name", ARITHMETIC_TASKS)
def test_checker_accepts_the_generators_answer_on_10k_problems(name):
    task = get_task(name)
    problems = task.generate("train", 10_000, seed=123)
    verdicts = [task.check(p.answer, p).status for p in problems]
    assert verdicts.count("correct") == 10_000


@pytest.mark.parametrize("name", ARITHMETIC_TASKS)
def test_checker_rejects_a_perturbed_answer(name):
    task = get_task(name)
    for p in task.generate("train", 200, seed=5):
        wrong = "1+1" if name == "countdown" else str(int(p.answer) + 1)
        assert task.check(wrong, p).status == "wrong", (p.problem, wrong)


def test_code_reference_solutions_pass_their_own_tests_on_10k_problems():
    """The generator's tests and reference agree (run in-process: it is our own code, not a model's)."""
    task = get_task("code")
    for p in task.generate("train", 10_000, seed=3):
        namespace: dict = {}
        exec(p.answer + "\n" + p.meta["tests"], namespace)  # noqa: S102 - trusted generated code
        namespace["check"](namespace[p.meta["entry_point"]])


def test_addition_worked_solution_has_one_carry_step_per_digit_least_significant_first():
    p = Problem(id="x", problem="958+67", answer="1025", task="addition")
    assert get_task("addition").worked_solution(p) == "8+7+0=15\n5+6+1=12\n9+0+1=10"


def test_multiplication_worked_solution_sums_shifted_partial_products():
    p = Problem(id="x", problem="12*34", answer="408", task="multiplication")
    assert get_task("multiplication").worked_solution(p) == "12*4=48\n12*30=360\n48+360=408"


def test_linear_equation_worked_solution_ends_with_the_solution():
    task = get_task("linear_equation")
    for p in task.generate("train", 50, seed=0, both_sides=True):
        assert p.solution.splitlines()[-1] == f"x={p.answer}"


def test_difficulty_knobs_change_the_problems_and_unknown_knobs_are_refused():
    problems = get_task("addition").generate("train", 20, seed=0, digits=3)
    assert all(len(p.problem.split("+")[0]) == 3 for p in problems)
    with pytest.raises(ValueError, match="no difficulty knob"):
        get_task("addition").generate("train", 1, seed=0, digitz=3)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(KeyError, match="addition"):
        get_task("sudoku")


@pytest.mark.parametrize("answer,status", [
    ("<think>carry</think><answer>1025</answer>", "correct"),
    ("1,025", "correct"),
    ("\\boxed{1025}", "correct"),
    ("1024", "wrong"),
    ("one thousand", "unparseable"),
    ("", "unparseable"),
    ("<think>no answer tag</think>", "unparseable"),
])
def test_addition_check_takes_answers_or_whole_completions(answer, status):
    p = Problem(id="x", problem="958+67", answer="1025", task="addition")
    assert get_task("addition").check(answer, p).status == status


def _countdown(numbers, target):
    return Problem(id="c", problem="", answer="", task="countdown",
                   meta={"numbers": numbers, "target": target, "use_all": True})


@pytest.mark.parametrize("answer,status,reason", [
    ("(25-7)*50/3+... ", "unparseable", "unexpected character"),
    ("50*3-25", "wrong", "does not use [7]"),
    ("50*3-25+7-7", "wrong", "beyond the given numbers"),
    ("(50-25)*(7-3)", "wrong", "evaluates to 100"),
    ("3*50-25+7 = 125", "wrong", "claims 125"),
    ("__import__('os').system('true')", "unparseable", "unexpected character"),
    ("3/(7-7)+25+50", "wrong", "division by zero"),
    ("((((3+7", "unparseable", "ends too early"),
    ("3 50 25 7", "unparseable", "unexpected '50'"),
])
def test_countdown_checker_parses_and_never_evals(answer, status, reason):
    result = get_task("countdown").check(answer, _countdown([3, 7, 25, 50], 132))
    assert result.status == status and reason in result.reason


def test_countdown_accepts_any_correct_expression_and_respects_precedence():
    p = _countdown([3, 7, 25, 50], 132)
    for answer in ["3*50-25+7", "7+50*3-25", "50×3−25+7", "(3*50)-(25-7) = 132", "<answer>7-25+3*50</answer>"]:
        assert get_task("countdown").check(answer, p).status == "correct", answer
    assert evaluate_expression("2+3*4")[0] == 14
    assert evaluate_expression("(2+3)*4")[0] == 20
    assert evaluate_expression("8/4/2")[0] == 1
    assert evaluate_expression("10-4-3")[0] == 3


def test_countdown_division_by_zero_is_wrong_not_a_crash():
    p = _countdown([5, 5, 2, 1], 2)
    assert get_task("countdown").check("2/(5-5)*1", p).reason == "division by zero"


def test_countdown_parser_refuses_decimals_and_deep_nesting():
    with pytest.raises(ExpressionError):
        evaluate_expression("1.5*2")
    with pytest.raises(ExpressionError, match="nested"):
        evaluate_expression("(" * 60 + "1" + ")" * 60)


def test_code_task_reports_missing_sandbox_as_error_not_wrong(monkeypatch):
    """With the sandbox package unimportable the verdict is 'error' (skipped), never 'wrong'."""
    monkeypatch.setitem(sys.modules, "r1model.sandbox", None)
    task = get_task("code")
    p = task.generate("test", 1, seed=0)[0]
    result = task.check(p.answer, p)
    assert result.status == "error" and "sandbox unavailable" in result.reason


def test_code_task_answer_without_the_function_is_unparseable():
    task = get_task("code")
    p = task.generate("test", 1, seed=0)[0]
    assert task.check("print('hello')", p).status == "unparseable"


def test_problem_round_trips_through_dict():
    p = get_task("countdown").generate("test", 1, seed=0)[0]
    assert Problem.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match="answer"):
        Problem.from_dict({"id": "1", "problem": "x"})


def test_corpus_mixes_worked_and_direct_answers_in_the_r1_zero_shape():
    examples = pretrain_examples("addition", 1000, seed=0, worked_fraction=0.3, digits=4)
    worked = [c for _, c in examples if not c.startswith("<think></think>")]
    assert 0.25 < len(worked) / len(examples) < 0.35
    prompt, completion = examples[0]
    assert "+" in prompt and completion.startswith("<think>") and completion.endswith("</answer>")
    plain = pretrain_examples("addition", 5, seed=0, worked_fraction=0.0, tags=False, digits=4)
    assert all("<" not in c and c.isdigit() for _, c in plain)


def test_corpus_answers_are_checked_correct_by_the_task():
    task = get_task("multiplication")
    problems = task.generate("train", 50, seed=1)
    examples = pretrain_examples("multiplication", 50, seed=1, worked_fraction=1.0)
    for p, (prompt, completion) in zip(problems, examples):
        assert prompt == p.problem and task.check(completion, p).correct


def test_tasks_rewards_template_and_scoring_import_without_torch():
    modules = ["r1model.tasks", "r1model.tasks.corpus", "r1model.tasks.dataset_io", "r1model.rewards",
               "r1model.template", "r1model.evaluate.answer_check", "r1model.evaluate.metrics",
               "r1model.evaluate.benchmarks", "r1model.evaluate.score"]
    script = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def _sandbox_ok():
    try:
        from r1model.sandbox import sandbox_available
    except ImportError:
        return False
    return sandbox_available()


@pytest.mark.skipif(not _sandbox_ok(), reason="bubblewrap sandbox not available here")
def test_code_task_judges_through_the_sandbox():
    task = get_task("code")
    for p in task.generate("test", 3, seed=0):
        assert task.check(f"<think>easy</think><answer>```python\n{p.answer}```</answer>", p).status == "correct"
        wrong = f"def {p.meta['entry_point']}(*args):\n    return None\n"
        assert task.check(wrong, p).status == "wrong"


@pytest.mark.skipif(not _sandbox_ok(), reason="bubblewrap sandbox not available here")
def test_humaneval_canonical_solutions_pass_whole_or_as_a_body():
    from r1model.evaluate.benchmarks import load_benchmark

    task = get_task("code")
    for p in load_benchmark("humaneval", n=3):
        body = p.answer[len(p.meta["prompt"]):]
        assert task.check(f"<answer>{p.answer}</answer>", p).status == "correct"
        assert task.check(f"<think>x</think><answer>{body}</answer>", p).status == "correct"


def test_every_task_documents_itself_and_each_knob():
    for task in TASKS.values():
        assert task.description
        assert set(task.difficulty_help) == set(task.difficulty), task.name
