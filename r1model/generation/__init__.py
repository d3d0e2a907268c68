"""Generation engines: the built-in KV-cache sampler and its MTP speculative variant."""

from r1model.generation.engine import BuiltinEngine, Completion, GenerationEngine, SamplingParams
from r1model.generation.speculative import SpeculativeEngine

__all__ = ["BuiltinEngine", "Completion", "GenerationEngine", "SamplingParams", "SpeculativeEngine"]
