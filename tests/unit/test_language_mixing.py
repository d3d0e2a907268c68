"""The language-mixing finding (r1model.train.findings.language_mixing, DeepSeek-R1 §2.3.2): the bilingual
addition corpus (both languages, switching inside one solution, answers and worked lines still right), the
language-consistency reward on golden thinks, the verdict rule on golden metrics, the comparison on written
evaluation traces, the chain's definition (one base, the same budget) and the --quick chain end to end."""
import json
import re
from pathlib import Path

import pytest

from r1model.events import EventWriter
from r1model.rewards import compute_rewards
from r1model.rewards.shaping import language_reward
from r1model.tasks import Problem, get_task
from r1model.tasks.corpus import pretrain_examples
from r1model.template import parse_completion
from r1model.train.chains import check_chain, stage_config
from r1model.train.findings import CHAINS
from r1model.train.findings.language_mixing import CHAIN, summarise, verdict
from tests.trainer_cli import run_quick_chain

BILINGUAL = {"digits": 2, "min_digits": 2, "language": "en+zh", "code_switch": 0.3}
EN_LINE = re.compile(r"(\d) plus (\d) plus carry (\d) is (\d+)")
ZH_LINE = re.compile(r"(\d)加(\d)加进位(\d)等于(\d+)")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _line_language(line: str) -> str:
    return "zh" if CJK.search(line) else "en"


def _check_worked(think: str, answer: str) -> None:
    """Every digit line adds up (in either language), carries follow, and the closing total is the answer."""
    *steps, total = think.split("\n")
    carry = 0
    for line in steps:
        match = EN_LINE.fullmatch(line) or ZH_LINE.fullmatch(line)
        assert match, line
        x, y, c, s = (int(g) for g in match.groups())
        assert c == carry and x + y + c == s, line
        carry = s // 10
    assert total in (f"so the sum is {answer}", f"所以和是{answer}"), total


# ------------------------------------------------------------------------------------------ bilingual corpus

def test_bilingual_corpus_has_both_languages_switching_inside_one_think_and_stays_correct():
    examples = pretrain_examples("addition", 400, seed=0, worked_fraction=1.0, **BILINGUAL)
    task = get_task("addition")
    problems = task.generate("train", 400, seed=0, **BILINGUAL)
    languages, switches, decisions = set(), 0, 0
    for (prompt, completion), problem in zip(examples, problems):
        parsed = parse_completion(completion)
        assert parsed.well_formed and prompt == problem.problem
        assert task.check(completion, problem).status == "correct"
        _check_worked(parsed.think, parsed.answer)
        lines = [_line_language(line) for line in parsed.think.split("\n")]
        assert lines[0] == "en"  # English first
        languages.update(lines)
        switches += sum(a != b for a, b in zip(lines, lines[1:]))
        decisions += len(lines) - 1
    assert languages == {"en", "zh"}
    assert 0.24 < switches / decisions < 0.36  # code_switch 0.3, 800 draws
    mixed = [c for _, c in examples if CJK.search(c) and " plus " in c]
    assert len(mixed) > 100  # code-switching inside one think, not only whole-Chinese solutions


def test_language_knobs_change_only_how_solutions_are_written_not_which_problems():
    task = get_task("addition")
    symbols = task.generate("train", 50, seed=3, digits=2)
    for knobs in ({"language": "en"}, {"language": "zh"}, {"language": "en+zh", "code_switch": 0.9}):
        worded = task.generate("train", 50, seed=3, digits=2, **knobs)
        assert [p.problem for p in worded] == [p.problem for p in symbols]
        assert [p.id for p in worded] == [p.id for p in symbols]
    assert all(re.fullmatch(r"(\d\+\d\+\d=\d+\n?)+", p.solution) for p in symbols)
    english = task.generate("train", 50, seed=3, digits=2, language="en")
    chinese = task.generate("train", 50, seed=3, digits=2, language="zh")
    assert not any(CJK.search(p.solution) for p in english)
    assert all(_line_language(line) == "zh" for p in chinese for line in p.solution.split("\n"))
    never = task.generate("train", 50, seed=3, digits=2, language="en+zh", code_switch=0.0)
    assert [p.solution for p in never] == [p.solution for p in english]


@pytest.mark.parametrize("knobs, field", [({"language": "fr"}, "difficulty.language"),
                                          ({"language": "en+zh", "code_switch": 1.5}, "difficulty.code_switch"),
                                          ({"code_switch": "often"}, "difficulty.code_switch")])
def test_bad_language_knobs_are_refused_naming_the_field(knobs, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        get_task("addition").generate("train", 1, seed=0, digits=2, **knobs)


# ------------------------------------------------------------------------------------------ language reward

@pytest.mark.parametrize("completion, expected", [
    ("<think>7 plus 5 plus carry 0 is 12\nso the sum is 12</think><answer>12</answer>", 1.0),
    ("<think>7加5加进位0等于12\n所以和是12</think><answer>12</answer>", 0.0),
    # 4 English words (plus, plus, carry, is) and 6 Chinese (加 加 进 位 等 于): 4 / 10
    ("<think>7 plus 5 plus carry 0 is 12\n1加2加进位1等于4</think><answer>42</answer>", 0.4),
    ("<answer>12</answer>", 0.0),  # no think
])
def test_language_reward_on_golden_thinks(completion, expected):
    assert language_reward([completion], [None])[0].value == pytest.approx(expected)


def test_zeros_language_reward_is_logged_but_not_rewarded():
    problem = Problem(id="p", problem="7+5", answer="12", task="addition")
    mixed = "<think>7 plus 5 plus carry 0 is 12\n所以和是12</think><answer>12</answer>"
    pure = "<think>7 plus 5 plus carry 0 is 12\nso the sum is 12</think><answer>12</answer>"
    zero, _ = compute_rewards([mixed, pure], [problem] * 2, {"accuracy": 1.0, "format": 0.5, "language": 0.0})
    shaped, components = compute_rewards([mixed, pure], [problem] * 2, {"accuracy": 1.0, "format": 0.5, "language": 0.5})
    assert zero == [1.5, 1.5] and components["language"][0].value == pytest.approx(4 / 8)
    assert shaped == [pytest.approx(1.5 + 0.5 * 4 / 8), 2.0]


# ------------------------------------------------------------------------------------------ verdict

@pytest.mark.parametrize("metrics, outcome", [
    ({"zero_mixing_rate": 0.5, "language_mixing_rate": 0.0}, "reproduced"),
    ({"zero_mixing_rate": 0.20, "language_mixing_rate": 0.02}, "reproduced"),  # both bounds inclusive
    ({"zero_mixing_rate": 0.19, "language_mixing_rate": 0.0}, "not reproduced"),  # Zero barely mixes
    ({"zero_mixing_rate": 0.6, "language_mixing_rate": 0.05}, "not reproduced"),  # the reward did not remove it
    ({"zero_mixing_rate": None, "language_mixing_rate": 0.0}, "inconclusive"),
    ({"zero_mixing_rate": 0.5, "language_mixing_rate": 0.0, "zero_thinks": 8, "language_thinks": 8}, "inconclusive"),
])
def test_verdict_on_golden_metrics(metrics, outcome):
    full = {"zero_thinks": 800, "language_thinks": 800, "accuracy_cost": 0.031, **metrics}
    got = verdict(full)
    assert got["outcome"] == outcome
    if outcome != "inconclusive":
        assert any("accuracy cost +3.1 points" in reason for reason in got["reasons"])
    if outcome == "not reproduced":
        assert any("under 20%" in r or "over 2%" in r for r in got["reasons"])


# ------------------------------------------------------------------------------------------ comparison

def _eval_stage(path: Path, thinks: list[str], accuracy: float, wrong_when_mixed: bool = False) -> None:
    path.mkdir(parents=True)
    with EventWriter(path) as events:
        events.eval(0, "heldout", "pass@1", accuracy, len(thinks))
        events.eval(0, "heldout", "format_rate", 1.0, len(thinks))
        for i, think in enumerate(thinks):
            completion = f"<think>{think}</think><answer>12</answer>"
            correct = not (wrong_when_mixed and CJK.search(think))
            events.trace(0, f"eval-{i}", "User: 7+5\nAssistant: ", completion, think, "12", {}, 1.0, None, correct,
                         "correct" if correct else "wrong", 10, False, source="eval")


def test_comparison_counts_every_evaluated_think_and_states_the_accuracy_cost(tmp_path):
    dirs = dict(zip((s.name for s in CHAIN.stages), CHAIN.stage_dirs()))
    english, mixed = "7 plus 5 plus carry 0 is 12\nso the sum is 12", "7 plus 5 plus carry 0 is 12\n所以和是12"
    _eval_stage(tmp_path / "stages" / dirs["eval-zero"], [mixed] * 45 + [english] * 105, 0.8, wrong_when_mixed=True)
    _eval_stage(tmp_path / "stages" / dirs["eval-language-rl"], [mixed] * 2 + [english] * 148, 0.75)
    comparison, line = summarise(tmp_path, CHAIN)
    metrics = comparison["metrics"]
    assert metrics["zero_thinks"] == metrics["language_thinks"] == 150
    assert metrics["zero_mixing_rate"] == pytest.approx(0.3) and metrics["language_mixing_rate"] == pytest.approx(2 / 150)
    assert metrics["accuracy_cost"] == pytest.approx(0.05)
    assert metrics["zero_english_share"] == pytest.approx((45 * 0.5 + 105) / 150)
    assert metrics["zero_accuracy_mixed_thinks"] == 0.0 and metrics["zero_accuracy_english_thinks"] == 1.0
    assert comparison["verdict"]["outcome"] == "reproduced"
    assert comparison["headline"] == {"name": "mixing_rate_drop", "value": pytest.approx(0.3 - 2 / 150)}
    assert line == f"mixing_rate_drop={0.3 - 2 / 150:.4f}"
    assert [row[0] for row in comparison["table"]["rows"]] == ["Zero (accuracy + format)", "+ language reward"]
    assert {"finding", "metrics", "verdict", "table", "charts", "headline", "note"} <= set(comparison)
    json.dumps(comparison)  # comparison.json is written as JSON


def test_a_comparison_that_does_not_reproduce_says_why_in_its_note(tmp_path):
    dirs = dict(zip((s.name for s in CHAIN.stages), CHAIN.stage_dirs()))
    english = "7 plus 5 plus carry 0 is 12\nso the sum is 12"
    _eval_stage(tmp_path / "stages" / dirs["eval-zero"], [english] * 120, 0.8)
    _eval_stage(tmp_path / "stages" / dirs["eval-language-rl"], [english] * 120, 0.8)
    comparison, _ = summarise(tmp_path, CHAIN)
    assert comparison["verdict"]["outcome"] == "not reproduced"
    assert "Not reproduced here: Zero mixes in 0.0% of thinks" in comparison["note"]


# ------------------------------------------------------------------------------------------ the chain

INPUTS = {"model.source": "/somewhere/step-1"}


@pytest.mark.parametrize("quick", [True, False])
def test_both_rl_runs_start_from_the_bilingual_base_with_the_same_budget(quick):
    assert CHAINS["language-mixing"] is CHAIN
    check_chain(CHAIN)
    stages = {s.name: s for s in CHAIN.stages}
    assert stages["zero"].model.stage == stages["language-rl"].model.stage == "base"
    assert stages["eval-zero"].model.stage == "zero" and stages["eval-language-rl"].model.stage == "language-rl"
    base = stage_config(CHAIN, stages["base"], quick=quick)
    assert base.model.source == "tiny-bpe" and base.supervised.worked_fraction == 1.0
    assert base.datasets[0].difficulty["language"] == "en+zh"
    zero, language = (stage_config(CHAIN, stages[n], quick=quick, inputs=INPUTS).model_dump() for n in ("zero", "language-rl"))
    assert {r["name"]: r["weight"] for r in zero.pop("rewards")} == {"accuracy": 1.0, "format": 0.5, "language": 0.0}
    assert {r["name"]: r["weight"] for r in language.pop("rewards")}["language"] > 0
    assert {k: v for k, v in zero.items() if k != "name"} == {k: v for k, v in language.items() if k != "name"}
    evals = [stage_config(CHAIN, stages[n], quick=quick, inputs=INPUTS).model_dump(exclude={"name"})
             for n in ("eval-zero", "eval-language-rl")]
    assert evals[0] == evals[1]
    problems = evals[0]["datasets"][0]["eval_size"] * evals[0]["evaluation"]["samples_per_problem"]
    assert problems >= (8 if quick else 100)


def test_quick_chain_completes_with_lineage_and_every_evaluated_sample_counted(tmp_path):
    run_dir = tmp_path / "language-mixing"
    last, state, stages = run_quick_chain("language-mixing", run_dir)
    assert last.startswith("mixing_rate_drop=")
    edges = {(e["from"], e["artifact"], e["to"], e["as"]) for e in state["lineage"]}
    assert {("base", "checkpoint", "zero", "model.source"), ("base", "checkpoint", "language-rl", "model.source"),
            ("zero", "checkpoint", "eval-zero", "model.source"),
            ("language-rl", "checkpoint", "eval-language-rl", "model.source")} <= edges
    base_checkpoint = str(run_dir / stages["base"]["artifacts"]["checkpoint"])
    for name in ("zero", "language-rl"):
        config = json.loads((run_dir / stages[name]["dir"] / "config.json").read_text())
        assert config["model"]["source"] == base_checkpoint  # one base for both
    # the language reward is logged in both RL runs (Zero at weight 0)
    for name in ("zero", "language-rl"):
        events = [json.loads(line) for line in (run_dir / stages[name]["dir"] / "events.jsonl").read_text().splitlines()]
        assert any("rewards/language/mean" in e.get("values", {}) for e in events if e["type"] == "metric")
    comparison = json.loads((run_dir / "comparison.json").read_text())
    metrics = comparison["metrics"]
    for key in ("zero_mixing_rate", "language_mixing_rate", "zero_accuracy", "language_accuracy", "accuracy_cost"):
        assert key in metrics
    assert 0.0 <= metrics["zero_accuracy"] <= 1.0 and 0.0 <= metrics["language_accuracy"] <= 1.0
    assert metrics["accuracy_cost"] == pytest.approx(metrics["zero_accuracy"] - metrics["language_accuracy"])
    # an evaluate job traces every sample: 4 problems × 2 samples each, the mixing rate counts those with a think
    for name in ("eval-zero", "eval-language-rl"):
        events = [json.loads(line) for line in (run_dir / stages[name]["dir"] / "events.jsonl").read_text().splitlines()]
        traces = [e for e in events if e["type"] == "trace" and e.get("source") == "eval"]
        assert len(traces) == 8
    assert metrics["zero_thinks"] <= 8 and metrics["language_thinks"] <= 8
    assert comparison["verdict"]["outcome"] == "inconclusive"  # too few thinks at --quick
    assert comparison["headline"]["name"] == "mixing_rate_drop"
