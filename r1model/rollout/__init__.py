"""Generation engines: the built-in KV-cache sampler and its MTP speculative variant."""

from r1model.rollout.engine import BuiltinEngine, Completion, RolloutEngine, SamplingParams
from r1model.rollout.speculative import SpeculativeEngine

__all__ = ["BuiltinEngine", "Completion", "RolloutEngine", "SamplingParams", "SpeculativeEngine"]
