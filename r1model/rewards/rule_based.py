"""R1-Zero's two rule-based rewards (report §2.2.2): accuracy and format. No neural reward model."""
from __future__ import annotations

from r1model.rewards.base import RewardResult
from r1model.template import parse_completion


_ACCURACY_VALUE = {"correct": 1.0, "wrong": 0.0, "unparseable": 0.0, "error": None}


def accuracy_reward(completions, problems, *, truncated=None, truncated_is_wrong: bool = True,
                    **kwargs) -> list[RewardResult]:
    """1 for a correct answer, 0 for a wrong or unparseable one (the status tells them apart), None
    (skipped) when the checker cannot judge: gold answer unparseable, sandbox unavailable.

    The answer is found and judged exactly as in evaluation (r1model.evaluate.score.judge_completions,
    the policy in r1model.evaluate.answer_check): the last `<answer>`, else the last `\\boxed{}`; a
    completion cut at the token limit earns 0 whatever it contains, unless `truncated_is_wrong` is off
    (RunConfig.truncated_is_wrong)."""
    from r1model.evaluate.score import judge_completions

    checks = judge_completions(list(completions), list(problems), truncated=truncated,
                               truncated_is_wrong=truncated_is_wrong, timeout=kwargs.get("timeout", 5.0))
    return [RewardResult(_ACCURACY_VALUE[c.status], c.status, c.reason) for c in checks]


def format_reward(completions, problems, *, truncated=None, **kwargs) -> list[RewardResult]:
    """1 when the completion is `<think>…</think><answer>…</answer>` with each tag once and was not cut
    off by the token limit, else 0."""
    truncated = truncated or [False] * len(completions)
    results = []
    for completion, cut in zip(completions, truncated):
        parsed = parse_completion(completion, truncated=cut)
        if parsed.well_formed:
            results.append(RewardResult(1.0, "ok"))
        elif cut:
            results.append(RewardResult(0.0, "truncated", "cut off at the token limit"))
        else:
            missing = [name for name, part in (("think", parsed.think), ("answer", parsed.answer)) if part is None]
            reason = f"missing {' and '.join(missing)}" if missing else "extra text or repeated tags"
            results.append(RewardResult(0.0, "malformed", reason))
    return results
