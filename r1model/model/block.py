"""One transformer block: x + MLA(norm(x)), then + (dense MLP | DeepSeekMoE)(norm(x))."""

from __future__ import annotations

import torch
from torch import nn

from r1model.model.config import ModelConfig
from r1model.model.mla import MLA, MLACache
from r1model.model.moe import Expert, MoE
from r1model.model.norm import RMSNorm


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = MLA(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.is_moe = layer_idx >= config.first_k_dense_replace  # V3: the first 3 layers stay dense
        self.mlp = (MoE(config) if self.is_moe
                    else Expert(config.hidden_size, config.intermediate_size, config.precision))

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                token_mask: torch.Tensor | None = None, cache: MLACache | None = None, cache_layer: int = 0,
                absorb: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (x, sequence-balance aux loss of this block: 0 for dense blocks)."""
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, cache_layer, absorb)
        h = self.post_attention_layernorm(x)
        if self.is_moe:
            h, aux = self.mlp(h, token_mask)
        else:
            h, aux = self.mlp(h), x.new_zeros((), dtype=torch.float32)
        return x + h, aux
