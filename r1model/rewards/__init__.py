"""Rule-based rewards for R1-Zero GRPO. Each is a batch function

    fn(completions: list[str], problems: list[Problem], *, truncated: list[bool] | None = None, **kw)
        -> list[RewardResult]

and `compute_rewards` sums them with weights. A value of None means "skip this sample" (it could not be
judged); any sample with a skipped component of non-zero weight gets a total of None.

Standard library only (the web lab lists the rewards for its run form).
"""
from __future__ import annotations

from typing import Callable

from r1model.rewards.base import RewardResult
from r1model.rewards.process import prm_reward
from r1model.rewards.rule_based import accuracy_reward, format_reward
from r1model.rewards.shaping import language_reward, length_reward, repetition_penalty

REWARDS: dict[str, Callable[..., list[RewardResult]]] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "language": language_reward,
    "length": length_reward,
    "repetition": repetition_penalty,
    "prm": prm_reward,
}

# One line each, for the run form and the docs.
REWARD_HELP = {
    "accuracy": "1 if the <answer> (else the last \\boxed{}) is correct by the task's checker, else 0; 0 when "
                "truncated (R1-Zero).",
    "format": "1 if the completion is <think>…</think><answer>…</answer> and not truncated, else 0 (R1-Zero).",
    "language": "share of English words in the think part (R1's language-consistency reward).",
    "length": "Kimi k1.5 length reward within each group: shorter correct answers earn more.",
    "repetition": "minus the share of repeated word 3-grams (penalises loops).",
    "prm": "a trained process reward model's lowest step score (needs `model`, a PRM checkpoint; R1 §4.2 "
           "dropped PRMs).",
}


def compute_rewards(completions: list[str], problems: list, weights: dict[str, float], *,
                    truncated: list[bool] | None = None, options: dict[str, dict] | None = None, **kwargs):
    """(totals, components): totals[i] = Σ weight × value over the weighted rewards (None when a
    component with non-zero weight was skipped); components[name] = that reward's results. `options`:
    keyword arguments of one reward only ({"prm": {"model": PATH}}: RunConfig.reward_options)."""
    if len(completions) != len(problems):
        raise ValueError(f"{len(completions)} completions but {len(problems)} problems")
    unknown = sorted(set(weights) - set(REWARDS))
    if unknown:
        raise ValueError(f"unknown reward(s) {', '.join(unknown)}; known: {', '.join(REWARDS)}")
    components: dict[str, list[RewardResult]] = {}
    needs_accuracy = "accuracy" in weights or "length" in weights
    if needs_accuracy:
        components["accuracy"] = accuracy_reward(completions, problems, truncated=truncated, **kwargs)
    for name in weights:
        if name in components:
            continue
        extra = {"accuracy": components["accuracy"]} if name == "length" else {}
        extra.update((options or {}).get(name, {}))
        components[name] = REWARDS[name](completions, problems, truncated=truncated, **extra, **kwargs)
    totals: list[float | None] = []
    for i in range(len(completions)):
        total = 0.0
        for name, weight in weights.items():
            value = components[name][i].value
            if value is None and weight:
                total = None
                break
            total += weight * (value or 0.0)
        totals.append(total)
    return totals, components


__all__ = ["REWARDS", "REWARD_HELP", "RewardResult", "compute_rewards"]
