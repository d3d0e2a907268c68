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
