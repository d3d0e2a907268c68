"""Does the rollout engine sample from the policy the trainer trains? (the logprob-agreement check)

An external engine (vLLM) computes the same model with other kernels, another precision or stale weights
(a failed sync). Its per-token logprobs are compared with the trainer's own, teacher-forced on the very
tokens the engine sampled: the mean absolute difference is the metric ``rollout/logprob_diff``, and past
``max_diff`` the run stops with a message saying so — importance ratios against a policy that is not the
one that sampled are silently wrong otherwise. It runs at the first step of a process (start or resume)
and every ``interval`` steps.

Free of models: ``trainer_logprobs`` is a callable (prompts, completions' token ids) -> per-token logprobs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence


class LogprobMismatch(RuntimeError):
    """The engine's logprobs are too far from the trainer's on the same tokens."""


def logprob_diff(engine: Sequence[Sequence[float]], trainer: Sequence[Sequence[float]]) -> tuple[float, float]:
    """(mean, max) absolute difference over every token of every completion."""
    if len(engine) != len(trainer):
        raise ValueError(f"{len(engine)} engine rows but {len(trainer)} trainer rows")
    total, count, worst = 0.0, 0, 0.0
    for i, (a, b) in enumerate(zip(engine, trainer)):
        if len(a) != len(b):
            raise ValueError(f"row {i}: {len(a)} engine logprobs but {len(b)} trainer logprobs")
        for x, y in zip(a, b):
            d = abs(float(x) - float(y))
            total += d
            count += 1
            worst = max(worst, d)
    return (total / count if count else 0.0), worst


@dataclass
class LogprobCheck:
    interval: int = 10  # every K steps (0: only at the first step)
    max_diff: float = 0.1  # mean |Δ logprob| above which the run stops (0: report only, never stop)
    engine_name: str = "the rollout engine"
    _first: int | None = None

    def due(self, step: int) -> bool:
        """At the first step this object sees, then every `interval` steps."""
        if self._first is None:
            self._first = step
            return True
        return bool(self.interval) and step % self.interval == 0

    def __call__(self, step: int, completions, trainer_logprobs: Callable) -> dict[str, float]:
        """The metrics of one check (raises LogprobMismatch past max_diff); {} when not due or nothing sampled."""
        if not self.due(step):
            return {}
        rows = [c for c in completions if c.token_ids]
        if not rows:
            return {}
        theirs = trainer_logprobs([c.prompt_ids for c in rows], [c.token_ids for c in rows])
        mean, worst = logprob_diff([c.logprobs for c in rows], theirs)
        if self.max_diff and mean > self.max_diff:
            raise LogprobMismatch(
                f"step {step}: {self.engine_name}'s logprobs differ from the trainer's on the same tokens by "
                f"{mean:.4g} on average (max {worst:.4g}) over {sum(len(c.token_ids) for c in rows)} tokens, "
                f"above grpo.logprob_max_diff = {self.max_diff}: the engine does not sample from the trained "
                "policy (weights not synced, another model, or precision too low); stopping")
        return {"rollout/logprob_diff": mean, "rollout/logprob_diff_max": worst}
