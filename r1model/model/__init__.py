"""DeepSeek-V3 in miniature: MLA, DeepSeekMoE, MTP, FP8, HF-format checkpoints.

``ModelConfig`` and ``R1Tokenizer`` import without torch; ``DeepSeekV3`` (torch) is loaded on first use.
"""

from r1model.model.config import ModelConfig

__all__ = ["DeepSeekV3", "ModelConfig", "ModelOutput", "MLACache", "R1Tokenizer"]


def __getattr__(name):
    if name in ("DeepSeekV3", "ModelOutput"):
        from r1model.model import deepseek_v3
        return getattr(deepseek_v3, name)
    if name == "MLACache":
        from r1model.model.mla import MLACache
        return MLACache
    if name == "R1Tokenizer":
        from r1model.model.tokenizer import R1Tokenizer
        return R1Tokenizer
    raise AttributeError(f"module 'r1model.model' has no attribute {name!r}")
