"""The `prm` reward: a trained process reward model's step scores, as one number per completion.

Per sequence it is the *minimum* over the steps (think lines and the answer) of P(step correct): a solution is
as good as its worst step, and, unlike the mean, padding a solution with easy right-looking lines cannot raise
it (the minimum is the usual aggregation of step scores, with the product). A completion without a complete
answer (cut at the token limit, or never answered) scores 0, as accuracy does. DeepSeek-R1 §4.2 warns that a
neural reward like this one invites reward hacking; the prm-vs-orm chain measures whether it does.

Imports the standard library only; the model (torch) is loaded on first use, once per checkpoint.
"""
from __future__ import annotations

from r1model.rewards.base import RewardResult

_LOADED: dict[str, tuple] = {}


def _load(path: str):
    if path not in _LOADED:
        from r1model.model.prm import ProcessRewardModel
        from r1model.model.tokenizer import R1Tokenizer

        model = ProcessRewardModel.load(path)
        _LOADED.clear()  # one PRM at a time
        _LOADED[path] = (model, R1Tokenizer.load(path))
    return _LOADED[path]


def prm_reward(completions, problems, *, truncated=None, model: str | None = None, **kwargs) -> list[RewardResult]:
    """min over steps of the PRM's P(step correct); 0 without a complete answer. `model`: the PRM checkpoint
    folder (RewardSpec.model)."""
    from r1model.model.prm import step_scores
    from r1model.tasks.steps import split_steps

    if not model:
        raise ValueError("rewards: the prm reward needs `model`, a process reward model checkpoint folder")
    prm, tokenizer = _load(model)
    truncated = list(truncated) if truncated is not None else [False] * len(completions)
    steps = [split_steps(text, truncated=cut) for text, cut in zip(completions, truncated)]
    scores = step_scores(prm, tokenizer, [p.problem for p in problems], list(completions), steps)
    results = []
    for found, values in zip(steps, scores):
        if not any(step.kind == "answer" for step in found):
            results.append(RewardResult(0.0, "no_answer", "no complete <answer>: no solution to score"))
        elif len(values) < len(found):
            results.append(RewardResult(0.0, "too_long", "steps past the PRM's input length"))
        else:
            worst = min(range(len(values)), key=values.__getitem__)
            results.append(RewardResult(values[worst], "ok", f"min of {len(values)} step scores at step {worst + 1}"))
    return results
