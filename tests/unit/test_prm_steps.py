"""Step labels for a process reward model (r1model.tasks.steps): golden traces are all correct, each kind of
mistake is named, the answer is judged by the task's checker, and a task without step labels is refused with
the field named (the labeller, the PRM trainer and the run config)."""
import pytest

from r1model.tasks import get_task
from r1model.tasks.problem import Problem
from r1model.tasks.steps import NoStepLabels, check_step_task, label_steps, split_steps
from r1model.train.config import ConfigError, validate_run_config


def golden(task, n=20, **difficulty):
    problems = get_task(task).generate("train", n, seed=1, **difficulty)
    return [(p, f"<think>{p.solution}</think><answer>{p.answer}</answer>") for p in problems]


@pytest.mark.parametrize("task,difficulty", [("addition", {"digits": 6, "min_digits": 1}), ("multiplication", {"digits": 3})])
def test_every_step_of_a_golden_trace_is_correct(task, difficulty):
    for problem, completion in golden(task, **difficulty):
        labelled = label_steps(task, problem, completion)
        assert [s.step.kind for s in labelled] == ["line"] * len(problem.solution.splitlines()) + ["answer"]
        assert all(s.correct for s in labelled), [(s.step.text, s.reason) for s in labelled if not s.correct]
        assert [s.step.text for s in labelled[:-1]] == problem.solution.splitlines()
        assert completion[labelled[-1].step.start:labelled[-1].step.end] == problem.answer


def test_addition_is_checked_digit_by_digit_against_the_true_carry():
    problem = Problem(id="addition-x", problem="58+67", answer="125", task="addition")
    completion = "<think>8+7+0=15\n5+6+0=11\n9+9+9=27\n</think><answer>125</answer>"
    labelled = label_steps("addition", problem, completion)
    assert [(s.step.text, s.correct) for s in labelled] == [
        ("8+7+0=15", True), ("5+6+0=11", False), ("9+9+9=27", False), ("125", True)]
    assert labelled[1].reason == "wrong carry: 0, expected 1"
    assert labelled[2].reason.startswith("extra step")
    wrong = label_steps("addition", problem, "<think>8+7+0=14\n4+6+1=12</think><answer>124</answer>")
    assert [s.reason for s in wrong] == ["wrong sum: 14, expected 15", "wrong digit of the first operand: 4, expected 5",
                                         "wrong: 124 != 125"]


def test_a_multiplication_line_must_be_the_schoolbook_step_and_right():
    problem = Problem(id="multiplication-x", problem="12*34", answer="408", task="multiplication")
    completion = "<think>12*4=48\n12*30=350\n48+360=408</think><answer>408</answer>"
    reasons = [s.reason for s in label_steps("multiplication", problem, completion)]
    assert reasons == ["ok", "wrong arithmetic: 12*30=350", "ok", "correct"]
    swapped = label_steps("multiplication", problem, "<think>12*30=360\n12*4=48</think><answer>408</answer>")
    assert [s.correct for s in swapped] == [False, False, True]


def test_steps_of_untrusted_text():
    assert split_steps("no tags at all") == []
    cut = split_steps("<think>1+2+0=3\n  4+4+0=8  \n<answer>38</answer>", truncated=True)
    assert [s.text for s in cut] == ["1+2+0=3", "4+4+0=8"]  # a cut completion has no answer step
    unclosed = split_steps("<think>1+2+0=3<answer>3</answer>")
    assert [(s.kind, s.text) for s in unclosed] == [("line", "1+2+0=3"), ("answer", "3")]
    text = "<think>\n\n a b \n</think> <answer> 7 </answer>"
    assert [text[s.start:s.end] for s in split_steps(text)] == ["a b", "7"]
    labelled = label_steps("addition", Problem("addition-y", "3+4", "7"), "<think>three plus four</think><answer>seven</answer>")
    assert [s.reason for s in labelled] == ["malformed: not x+y+carry=sum", "unparseable: answer is not an integer"]


def test_a_task_without_step_labels_is_refused_naming_the_field():
    problem = get_task("countdown").generate("train", 1, seed=0)[0]
    with pytest.raises(NoStepLabels, match="task: .*'countdown' has none"):
        label_steps("countdown", problem, "<think>1+2=3</think><answer>3</answer>")
    with pytest.raises(NoStepLabels, match="datasets.0.task"):
        check_step_task("code", "datasets.0.task")
    with pytest.raises(ConfigError, match="datasets.1.task: the prm reward needs step labels"):
        validate_run_config({"datasets": [{"task": "addition"}, {"task": "linear_equation"}],
                             "rewards": [{"name": "prm", "weight": 1.0, "model": "some/prm"}]})
    with pytest.raises(ConfigError, match=r"rewards\.0: the prm reward needs `model`"):
        validate_run_config({"rewards": [{"name": "prm", "weight": 1.0}]})
    with pytest.raises(ConfigError, match="rewards.0: `model` is for the prm reward"):
        validate_run_config({"rewards": [{"name": "accuracy", "weight": 1.0, "model": "x"}]})
