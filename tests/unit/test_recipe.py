"""Recipes: valid RunConfigs, R1-Zero rewards only, --quick scaled down, seeds passed through."""
import pytest

from r1model.train.recipes import RECIPES, recipe_config


def test_aha_mini_is_r1_zero_grpo_with_accuracy_and_format_rewards_only():
    config = recipe_config("aha-mini")
    assert config.kind == "grpo"
    assert set(config.reward_weights()) == {"accuracy", "format"}  # no length reward: length must grow by itself
    assert config.base.steps > 0 and config.model.source == "tiny"
    assert 0 < config.supervised.worked_fraction < 0.5  # the base prefers direct answers
    assert config.supervised.completion_only_loss
    assert config.grpo.beta == 0.0 and config.grpo.num_iterations == 1
    assert config.evaluation.at_start and "heldout" in config.evaluation.benchmarks


def test_quick_recipe_is_the_same_pipeline_scaled_down():
    full, quick = recipe_config("aha-mini"), recipe_config("aha-mini", quick=True)
    assert quick.kind == full.kind and quick.reward_weights() == full.reward_weights()
    assert quick.total_steps == 2 and quick.base.steps < full.base.steps
    assert quick.grpo.group_size * quick.grpo.prompts_per_step < full.grpo.group_size * full.grpo.prompts_per_step


def test_seed_is_passed_through_and_unknown_recipe_names_the_known_ones():
    assert recipe_config("aha-mini", seed=5).seed == 5
    with pytest.raises(KeyError, match="aha-mini"):
        recipe_config("aha-maxi")
    assert all(recipe.description for recipe in RECIPES.values())


# --- the R1 pipeline's recipes ------------------------------------------------------------------------

import json  # noqa: E402

from r1model.train.config import ConfigError  # noqa: E402
from r1model.train.data import DataSource  # noqa: E402
from r1model.train.recipes import missing_inputs, parse_set, set_path  # noqa: E402

PIPELINE = {"r1-zero": "grpo", "cold-start-sft": "sft", "rejection-sampling": "rejection_sampling", "distill": "sft", "evaluate": "evaluate"}


@pytest.mark.parametrize("name, kind", PIPELINE.items())
def test_every_recipe_is_a_valid_config_with_a_smaller_quick_variant(name, kind):
    full, quick = recipe_config(name), recipe_config(name, quick=True)
    assert full.kind == quick.kind == kind and full.name == name
    assert quick.total_steps <= full.total_steps and quick.base.steps <= full.base.steps
    assert quick.grpo.group_size * quick.grpo.prompts_per_step <= full.grpo.group_size * full.grpo.prompts_per_step
    assert quick.evaluation.samples_per_problem <= full.evaluation.samples_per_problem
    assert "\n" not in RECIPES[name].description and len(RECIPES[name].description) < 400


def test_r1_zero_uses_the_reports_scale_free_settings_and_rule_rewards_only():
    config = recipe_config("r1-zero")
    assert set(config.reward_weights()) == {"accuracy", "format"}
    hp = config.grpo
    assert (hp.group_size, hp.prompts_per_step, hp.beta, config.sampling.temperature, hp.ref_refresh_interval) == (16, 32, 0.001, 1.0, 400)
    assert (hp.epsilon_low, hp.epsilon_high) == (0.2, 0.2)
    assert (config.evaluation.temperature, config.evaluation.top_p) == (0.6, 0.95)
    assert config.datasets[0].task == "addition" and config.base.steps > 0  # runs from the CLI as it is
    assert not missing_inputs("r1-zero", config)


@pytest.mark.parametrize("name, field, option", [
    ("rejection-sampling", "model.source", "--model"),
    ("evaluate", "model.source", "--model"),
    ("distill", "datasets", "--dataset"),
])
def test_a_recipe_without_its_input_names_the_missing_field_and_the_option(name, field, option):
    assert [need.field for need in missing_inputs(name, recipe_config(name))] == [field]
    with pytest.raises(ConfigError) as caught:
        recipe_config(name, quick=True, require_inputs=True)
    assert [e["field"] for e in caught.value.errors] == [field]
    assert option in str(caught.value) and name in str(caught.value)


def test_inputs_are_met_by_a_real_checkpoint_folder_or_dataset_file(tmp_path):
    checkpoint = tmp_path / "checkpoints" / "step-3"
    checkpoint.mkdir(parents=True)
    with pytest.raises(ConfigError, match="no checkpoint at"):  # a folder without config.json
        recipe_config("evaluate", model=str(checkpoint), require_inputs=True)
    (checkpoint / "config.json").write_text("{}")
    assert recipe_config("evaluate", model=str(checkpoint), require_inputs=True).model.source == str(checkpoint)
    data = tmp_path / "accepted.jsonl"
    with pytest.raises(ConfigError, match="not found"):
        recipe_config("distill", dataset=str(data), require_inputs=True)
    data.write_text(json.dumps({"prompt": "1+1", "completion": "<think></think><answer>2</answer>"}) + "\n")
    config = recipe_config("distill", dataset=str(data), require_inputs=True)
    assert [(d.task, d.path) for d in config.datasets] == [(None, str(data))]


def test_a_checkpoint_model_replaces_the_recipes_base_stage(tmp_path):
    assert recipe_config("cold-start-sft").base.steps > 0
    config = recipe_config("cold-start-sft", model=str(tmp_path))
    assert config.base.steps == 0 and config.model.source == str(tmp_path) and config.model.overrides == {}
    assert recipe_config("cold-start-sft", model="tiny").base.steps > 0  # a preset still needs its base


def test_set_changes_nested_fields_and_list_items_and_wins_over_options():
    config = recipe_config("r1-zero", quick=True, dataset="x.jsonl", sets=[
        parse_set("grpo.beta=0"), parse_set('datasets.0.difficulty={"digits": 2}'), parse_set("name=my run"),
        parse_set("datasets.0.path=y.jsonl"),
    ])
    assert config.grpo.beta == 0.0 and config.name == "my run"
    assert config.datasets[0].path == "y.jsonl" and config.datasets[0].difficulty == {"digits": 2}
    data = {"datasets": [{}]}
    with pytest.raises(ValueError, match="datasets.1"):
        set_path(data, "datasets.1.task", "x")
    with pytest.raises(ValueError, match="KEY.PATH=VALUE"):
        parse_set("grpo.beta")
    with pytest.raises(ConfigError) as caught:  # a typo is the trainer's unknown-field error, by name
        recipe_config("r1-zero", sets=[("grpo.betta", 0)])
    assert caught.value.errors[0]["field"] == "grpo.betta"
    with pytest.raises(ConfigError) as caught:  # a path that cannot be followed names the path being set
        recipe_config("r1-zero", sets=[("name", "ok"), ("datasets.3.task", "x")])
    assert caught.value.errors[0]["field"] == "datasets.3.task" and "not an item" in caught.value.errors[0]["msg"]


def test_sft_on_accepted_samples_wraps_the_problem_not_the_already_rendered_prompt(tmp_path):
    data = tmp_path / "accepted.jsonl"
    row = {"id": "a-0", "problem": "3+4", "answer": "7", "prompt": "User: 3+4\nAssistant: ",
           "completion": "<think></think><answer>7</answer>", "reward": 1.0}
    data.write_text(json.dumps(row) + "\n")
    source = DataSource(recipe_config("distill", dataset=str(data)))
    assert source.supervised_pairs(1, 2, 1.0, purpose="sft") == [("3+4", row["completion"])] * 2


def test_quick_scale_of_every_recipe():
    """--quick: 2 (GRPO/rollout) or 5 (SFT) steps, a 30-step in-run base, groups of 4 × 4, 48 new tokens,
    16 eval problems, no intermediate checkpoints or evaluations (one helper applies it to every recipe)."""
    from r1model.train.recipes import RECIPES, recipe_config

    for name in RECIPES:
        full, quick = recipe_config(name), recipe_config(name, quick=True)
        assert quick.total_steps == {"grpo": 2, "rejection_sampling": 2, "sft": 5, "evaluate": 0}[quick.kind], name
        assert quick.total_steps <= full.total_steps and quick.checkpoint_interval in (0, full.checkpoint_interval)
        if full.base.steps:
            assert quick.base.steps == 30, name
        if quick.kind in ("grpo", "rejection_sampling"):
            assert (quick.grpo.group_size, quick.grpo.prompts_per_step, quick.sampling.max_new_tokens) == (4, 4, 48)
        if quick.kind != "rejection_sampling" and full.datasets[0].eval_size > 16:
            assert quick.datasets[0].eval_size == 16, name
        assert quick.evaluation.interval == 0 and quick.evaluation.samples_per_problem == 1, name
