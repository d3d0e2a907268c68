"""Reward functions on golden cases."""
import sys

import pytest

from r1model.rewards import REWARDS, compute_rewards
from r1model.tasks import Problem, get_task

ADD = Problem(id="a1", problem="958+67", answer="1025", task="addition")
MATH = Problem(id="m1", problem="half?", answer="\\frac{1}{2}", task="math", meta={"check_mode": "math"})
BAD_GOLD = Problem(id="m2", problem="?", answer="", task="math")


def values(name, completions, problems, **kw):
    return [r.value for r in REWARDS[name](completions, problems, **kw)]


def test_accuracy_is_one_for_correct_zero_for_wrong_and_unparseable_with_distinct_statuses():
    completions = ["<think>8+7+0=15</think><answer>1025</answer>", "<think></think><answer>1024</answer>",
                   "I think it is 1025", "<think></think><answer>lots</answer>"]
    results = REWARDS["accuracy"](completions, [ADD] * 4)
    assert [r.value for r in results] == [1.0, 0.0, 0.0, 0.0]
    assert [r.status for r in results] == ["correct", "wrong", "unparseable", "unparseable"]


def test_accuracy_on_imported_math_uses_math_verify():
    completions = ["<think>.</think><answer>0.5</answer>", "<think>.</think><answer>\\boxed{2/4}</answer>",
                   "<think>.</think><answer>1/3</answer>"]
    assert values("accuracy", completions, [MATH] * 3) == [1.0, 1.0, 0.0]


def test_unparseable_gold_answer_is_skipped_never_scored():
    result = REWARDS["accuracy"](["<think></think><answer>1</answer>"], [BAD_GOLD])[0]
    assert result.value is None and result.status == "error" and result.skipped


def test_sandbox_missing_skips_code_samples(monkeypatch):
    monkeypatch.setitem(sys.modules, "r1model.sandbox", None)
    problem = get_task("code").generate("test", 1, seed=0)[0]
    result = REWARDS["accuracy"](["<think></think><answer>" + problem.answer + "</answer>"], [problem])[0]
    assert result.value is None and "sandbox unavailable" in result.reason


@pytest.mark.parametrize("completion,truncated,value,status", [
    ("<think>x</think><answer>1</answer>", False, 1.0, "ok"),
    ("  <think>\nx\n</think>\n<answer>1</answer>\n", False, 1.0, "ok"),
    ("<think>x</think><answer>1</answer>", True, 0.0, "truncated"),
    ("<answer>1</answer>", False, 0.0, "malformed"),
    ("<think>x</think><answer>1</answer><answer>2</answer>", False, 0.0, "malformed"),
    ("plain text", False, 0.0, "malformed"),
])
def test_format_reward(completion, truncated, value, status):
    result = REWARDS["format"]([completion], [ADD], truncated=[truncated])[0]
    assert (result.value, result.status) == (value, status)


def test_language_reward_is_the_share_of_english_words_in_the_think():
    completions = ["<think>first add the units</think><answer>1</answer>",
                   "<think>first 先 add 然后 units</think><answer>1</answer>",
                   "<think>8+7+0=15</think><answer>1</answer>",
                   "<answer>1</answer>"]
    # "first 先 add 然后 units": 3 English words out of 6 (each CJK character is a word)
    assert values("language", completions, [ADD] * 4) == [1.0, 0.5, 1.0, 0.0]


def test_language_reward_through_the_bpe_tokenizer_is_half_on_a_half_chinese_think_and_one_on_english():
    """The reward reads decoded text: the byte-level BPE keeps Chinese, the char tokenizer turns it into <unk>
    (whose letters then read as English, so the reward could not tell the languages apart)."""
    from r1model.model.tokenizer import R1Tokenizer

    english = "<think>first add the units then carry one</think><answer>1</answer>"
    half = "<think>first add the units 先加个位</think><answer>1</answer>"  # 4 English words, 4 CJK characters
    bpe, char = R1Tokenizer.build("bpe"), R1Tokenizer.build("char")
    through_bpe = [bpe.decode(bpe.encode(text)) for text in (english, half)]
    assert through_bpe == [english, half]
    assert values("language", through_bpe, [ADD] * 2) == [1.0, 0.5]
    through_char = [char.decode(char.encode(text)) for text in (english, half)]
    assert values("language", through_char, [ADD] * 2) == [1.0, 1.0]


def test_language_reward_counts_other_scripts_as_foreign_words():
    got = values("language", ["<think>сначала add единицы</think><answer>1</answer>"], [ADD])
    assert got == [pytest.approx(1 / 3)]


def test_length_reward_follows_kimi_k15_within_each_group():
    other = Problem(id="a2", problem="1+1", answer="2", task="addition")
    completions = ["<answer>1025</answer>",                       # correct, shortest: λ = 0.5
                   "<think>" + "x" * 30 + "</think><answer>1025</answer>",  # correct, longest: λ = -0.5
                   "<think>" + "x" * 15 + "</think><answer>9</answer>",     # wrong, middle: min(0, 0) = 0
                   "<answer>2</answer>"]                                      # alone in its group: λ = 0
    lengths = [10, 40, 25, 7]
    got = values("length", completions, [ADD, ADD, ADD, other], lengths=lengths)
    assert got == [0.5, -0.5, 0.0, 0.0]


def test_length_reward_gives_wrong_answers_at_most_zero():
    completions = ["<answer>1</answer>", "<answer>2</answer>"]
    got = values("length", completions, [ADD, ADD], lengths=[5, 50])
    assert got == [0.0, -0.5]


def test_repetition_penalty_grows_with_repeated_ngrams():
    fresh = "one two three four five six"
    looping = "a b c " * 10
    got = values("repetition", [fresh, looping, "short"], [ADD] * 3)
    assert got[0] == 0.0 and got[2] == 0.0
    assert -1.0 < got[1] < -0.8


def test_compute_rewards_weights_the_components_and_propagates_skips():
    completions = ["<think>x</think><answer>1025</answer>", "<answer>1025</answer>",
                   "<think>x</think><answer>1</answer>"]
    totals, components = compute_rewards(completions, [ADD, ADD, BAD_GOLD], {"accuracy": 1.0, "format": 0.5})
    assert totals == [1.5, 1.0, None]
    assert set(components) == {"accuracy", "format"}
    assert components["accuracy"][2].status == "error"


def test_compute_rewards_refuses_unknown_names_and_mismatched_lengths():
    with pytest.raises(ValueError, match="unknown reward"):
        compute_rewards(["x"], [ADD], {"vibes": 1.0})
    with pytest.raises(ValueError, match="2 completions but 1 problems"):
        compute_rewards(["x", "y"], [ADD], {"format": 1.0})


def test_code_accuracy_is_judged_in_a_batch_with_per_sample_verdicts():
    from r1model.sandbox import sandbox_available

    if not sandbox_available():
        pytest.skip("bubblewrap sandbox not available here")
    problems = get_task("code").generate("test", 2, seed=0)
    completions = [f"<think></think><answer>{problems[0].answer}</answer>",
                   "<think></think><answer>def nothing(): pass</answer>",
                   f"<think></think><answer>def {problems[1].meta['entry_point']}(*a):\n    return 0</answer>",
                   "no answer at all"]
    results = REWARDS["accuracy"](completions, [problems[0], problems[0], problems[1], problems[1]])
    assert [r.status for r in results] == ["correct", "unparseable", "wrong", "unparseable"]
    assert [r.value for r in results] == [1.0, 0.0, 0.0, 0.0]


def test_code_batch_without_sandbox_skips_every_sample(monkeypatch):
    monkeypatch.setitem(sys.modules, "r1model.sandbox", None)
    problems = get_task("code").generate("test", 2, seed=0)
    completions = [f"<answer>{p.answer}</answer>" for p in problems]
    results = REWARDS["accuracy"](completions, problems)
    assert [r.value for r in results] == [None, None] and all("sandbox unavailable" in r.reason for r in results)


def test_accuracy_of_a_truncated_completion_with_a_correct_answer_is_zero_by_default():
    cut = ["<think>958+67 is \\boxed{1025}, now check", "<think>x</think><answer>1025</answer>"]
    results = REWARDS["accuracy"](cut, [ADD, ADD], truncated=[True, True])
    assert [r.value for r in results] == [0.0, 0.0]
    assert [r.status for r in results] == ["unparseable", "unparseable"]
    assert all("truncated" in r.reason for r in results)


def test_accuracy_of_a_truncated_completion_is_judged_when_truncated_is_wrong_is_off():
    cut = ["<think>958+67 is \\boxed{1025}, now check", "<think>x</think><answer>1025</answer>"]
    totals, components = compute_rewards(cut, [ADD, ADD], {"accuracy": 1.0}, truncated=[True, True],
                                         truncated_is_wrong=False)
    assert totals == [1.0, 1.0] and [r.status for r in components["accuracy"]] == ["correct", "correct"]


def test_truncated_is_wrong_is_a_run_config_field_on_by_default():
    from r1model.train.config import RunConfig, validate_run_config

    assert RunConfig().truncated_is_wrong is True
    assert validate_run_config({"truncated_is_wrong": False}).truncated_is_wrong is False
    assert "truncated" in RunConfig.model_fields["truncated_is_wrong"].description


def test_the_registry_is_the_one_list_of_reward_names():
    from r1model.rewards import REWARD_HELP
    from r1model.train.config import KNOWN_REWARDS, validate_run_config

    assert KNOWN_REWARDS == tuple(REWARDS) and list(REWARD_HELP) == list(REWARDS)
    for name in REWARDS:  # the config accepts every registered reward, and nothing else
        spec = {"name": name, "weight": 1.0, **({"model": "prm-checkpoint"} if name == "prm" else {})}  # model-based
        validate_run_config({"kind": "grpo", "rewards": [spec]})
    with pytest.raises(Exception, match="unknown reward 'vibes'"):
        validate_run_config({"kind": "grpo", "rewards": [{"name": "vibes", "weight": 1.0}]})
