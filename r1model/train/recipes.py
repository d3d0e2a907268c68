"""Named recipes: ready RunConfigs for the experiments the lab ships (no torch; the lab lists them).

    from r1model.train.recipes import RECIPES, recipe_config
    cfg = recipe_config("aha-mini", quick=True, seed=1)   # a RunConfig
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from r1model.train.config import RunConfig, validate_run_config


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build: Callable[[bool], dict]  # quick -> config dict (seed filled in by recipe_config)


def _aha_mini(quick: bool) -> dict:
    """R1-Zero in miniature (REFERENCE.md, last section): a tiny base that prefers short direct answers but
    can write steps, then GRPO with accuracy + format rewards only — no length reward — and the length grows."""
    config = {
        "kind": "grpo",
        "name": "aha-mini",
        # MTP off: it costs a third of each pretraining step and GRPO does not use it
        "model": {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}},
        "base": {"steps": 1200, "checkpoint_interval": 300},
        # 4-digit sums: within this budget the tiny MLA/MoE base learns the worked (digit by digit) route but
        # not direct answers; with 6 digits 1,500 steps left it unable to finish either (accuracy 0, no signal)
        "datasets": [{"task": "addition", "difficulty": {"digits": 4, "min_digits": 4}, "eval_size": 200}],
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1}],
        "deterministic": False,
        "threads": 1,
        "total_steps": 80,
        "checkpoint_interval": 20,
        "keep_checkpoints": 2,
        "traces_per_step": 1,
        "supervised": {
            "batch_size": 64,
            "learning_rate": 3e-3,
            "lr_schedule": "cosine",
            "warmup_steps": 50,
            "worked_fraction": 0.3,
            "completion_only_loss": True,
            "max_seq_len": 128,
        },
        "grpo": {
            "group_size": 8,
            "prompts_per_step": 16,
            "learning_rate": 1e-4,
            "lr_schedule": "constant",
            "beta": 0.0,
            "num_iterations": 1,
            "minibatches": 1,
            "temperature": 1.0,
            "max_new_tokens": 64,
            "loss_aggregation": "grpo",
        },
        "evaluation": {
            "interval": 10,
            "at_start": True,
            "benchmarks": ["heldout"],
            "temperature": 0.0,
            "top_p": 1.0,
        },
    }
    if quick:
        config["base"] = {"steps": 30}
        config["total_steps"] = 2
        config["checkpoint_interval"] = 0
        config["supervised"].update(batch_size=16, warmup_steps=5)
        config["grpo"].update(group_size=4, prompts_per_step=4, max_new_tokens=48)
        config["datasets"][0]["eval_size"] = 16
        config["evaluation"]["interval"] = 0
    return config


RECIPES: dict[str, Recipe] = {
    "aha-mini": Recipe(
        name="aha-mini",
        description="R1-Zero's aha moment in miniature on a CPU: pretrain the tiny preset on 4-digit addition "
        "(30% worked solutions), then GRPO with accuracy + format rewards only; watch accuracy and length grow.",
        build=_aha_mini,
    ),
}


def recipe_config(name: str, *, quick: bool = False, seed: int | None = None) -> RunConfig:
    """The validated RunConfig of a recipe; KeyError naming the known recipes."""
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None
    data = recipe.build(quick)
    if seed is not None:
        data["seed"] = seed
    return validate_run_config(data, source=f"recipe {name}")
