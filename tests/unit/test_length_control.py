"""Length control (Kimi k1.5 §2.3.3, §2.4): the length reward on hand-computed groups and its warm-up."""
import pytest

from r1model.rewards import compute_rewards
from r1model.rewards.shaping import length_reward
from r1model.tasks import Problem
from r1model.train.config import validate_run_config

ADD = Problem(id="a1", problem="958+67", answer="1025", task="addition")
OTHER = Problem(id="a2", problem="1+1", answer="2", task="addition")
RIGHT, WRONG = "<think>x</think><answer>1025</answer>", "<think>x</think><answer>9</answer>"


def _values(completions, problems, lengths):
    return [r.value for r in length_reward(completions, problems, lengths=lengths)]


def test_correct_answers_get_lambda_between_plus_and_minus_a_half():
    # min 10, max 30: λ = 0.5 − (len − 10)/20 → 0.5, 0.25, 0, −0.5
    assert _values([RIGHT] * 4, [ADD] * 4, [10, 15, 20, 30]) == [0.5, 0.25, 0.0, -0.5]


def test_wrong_answers_get_min_of_zero_and_lambda():
    # same lengths, all wrong: min(0, 0.5), min(0, 0.25), min(0, 0), min(0, −0.5)
    assert _values([WRONG] * 4, [ADD] * 4, [10, 15, 20, 30]) == [0.0, 0.0, 0.0, -0.5]
    # mixed: the short wrong one earns nothing, the long wrong one is penalised as a long right one would be
    assert _values([WRONG, RIGHT, WRONG], [ADD] * 3, [4, 8, 12]) == [0.0, 0.0, -0.5]


def test_equal_lengths_and_single_members_get_zero():
    assert _values([RIGHT, WRONG, RIGHT], [ADD, ADD, OTHER], [7, 7, 3]) == [0.0, 0.0, 0.0]


def test_groups_are_by_problem_id():
    # group a1 lengths {2, 6}; group a2 lengths {10, 30, 20}
    got = _values([RIGHT, RIGHT, "<answer>2</answer>", "<answer>2</answer>", "<answer>2</answer>"],
                  [ADD, ADD, OTHER, OTHER, OTHER], [2, 6, 10, 30, 20])
    assert got == [0.5, -0.5, 0.5, -0.5, 0.0]


def test_length_penalty_is_added_with_its_weight():
    totals, components = compute_rewards([RIGHT, RIGHT, WRONG], [ADD] * 3, {"accuracy": 1.0, "length": 0.2},
                                         lengths=[10, 20, 30])
    # accuracy 1, 1, 0; length 0.5, 0, min(0, −0.5)
    assert totals == pytest.approx([1.0 + 0.1, 1.0, -0.1])
    assert [r.value for r in components["length"]] == [0.5, 0.0, -0.5]


def test_warm_up_keeps_the_length_reward_off_until_its_step_then_constant():
    config = validate_run_config({"rewards": [{"name": "accuracy", "weight": 1.0},
                                              {"name": "length", "weight": 0.2, "warmup_steps": 3}]})
    assert config.reward_weights(1) == {"accuracy": 1.0, "length": 0.0}
    assert config.reward_weights(3) == {"accuracy": 1.0, "length": 0.0}  # last warm-up step
    assert config.reward_weights(4) == {"accuracy": 1.0, "length": 0.2}  # on, at the full weight (no ramp)
    assert config.reward_weights(100) == {"accuracy": 1.0, "length": 0.2}
    assert config.reward_weights() == {"accuracy": 1.0, "length": 0.2}  # no step: the weights as given
    at3, _ = compute_rewards([RIGHT, RIGHT], [ADD] * 2, config.reward_weights(3), lengths=[1, 9])
    at4, _ = compute_rewards([RIGHT, RIGHT], [ADD] * 2, config.reward_weights(4), lengths=[1, 9])
    assert at3 == [1.0, 1.0] and at4 == pytest.approx([1.1, 0.9])


def test_the_grpo_step_scores_length_in_tokens_with_the_warm_up(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    import r1model.train.grpo_trainer as grpo_trainer
    from r1model.events import EventWriter
    from r1model.train import modeling
    from r1model.train.context import RunContext
    from r1model.train.data import DataSource

    torch.set_num_threads(1)
    config = validate_run_config({
        "model": {"source": "tiny", "overrides": {"hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16,
                                                  "num_hidden_layers": 1, "num_attention_heads": 2, "q_lora_rank": 16,
                                                  "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8,
                                                  "v_head_dim": 8, "num_nextn_predict_layers": 0}},
        "template": "mini", "datasets": [{"task": "addition", "difficulty": {"digits": 1}}],
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "length", "weight": 0.5, "warmup_steps": 1}],
        "grpo": {"group_size": 2, "prompts_per_step": 1, "max_new_tokens": 6, "beta": 0.0},
    })
    ctx = RunContext(config, tmp_path, EventWriter(tmp_path), torch.device("cpu"))
    model, tokenizer = modeling.build_model(config.model, ctx.device, seed=0)
    trainer = grpo_trainer.GRPOTrainer(ctx, model, tokenizer, DataSource(config))
    seen = []
    real = grpo_trainer.compute_rewards

    def spy(texts, problems, weights, **kw):
        seen.append((dict(weights), list(kw["lengths"])))
        return real(texts, problems, weights, **kw)

    monkeypatch.setattr(grpo_trainer, "compute_rewards", spy)
    sampled = []
    generate = trainer.engine.generate
    trainer.engine.generate = lambda *a, **k: sampled.append(generate(*a, **k)) or sampled[-1]
    trainer.step(1)
    trainer.step(2)
    assert [weights["length"] for weights, _ in seen] == [0.0, 0.5]
    for (_, lengths), completions in zip(seen, sampled):
        assert lengths == [len(c.token_ids) for c in completions]  # tokens, not characters
