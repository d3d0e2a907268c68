"""Generation engines (built-in KV-cache sampler; vLLM on GPU nodes) and teacher-forced logprobs."""

from r1model.rollout.engine import BuiltinEngine, Completion, RolloutEngine, SamplingParams
from r1model.rollout.logprobs import sequence_logprobs
from r1model.rollout.speculative import SpeculativeEngine

__all__ = ["BuiltinEngine", "Completion", "RolloutEngine", "SamplingParams", "SpeculativeEngine", "sequence_logprobs"]
