"""Multi-Token Prediction (V3 report §2.2).

Module k predicts token i+k+1 at position i from h_i^{k-1} (the previous depth's representation; the main
model's for k = 1) and the embedding of token i+k:
    h'_i = M_k [RMSNorm(Emb(t_{i+k})); RMSNorm(h_i^{k-1})]    (embedding first, as the reference code)
then one transformer block; the embedding and output head are the main model's. Loss: lambda/D * sum_k CE_k.
Checkpoint keys live at ``model.layers.{num_hidden_layers + k}`` (enorm, hnorm, eh_proj, shared_head.norm
and the block's own keys); transformers' DeepseekV3ForCausalLM ignores them.
"""

from __future__ import annotations

import torch
from torch import nn

from r1model.model.block import Block
from r1model.model.config import ModelConfig
from r1model.model.fp8 import make_linear
from r1model.model.norm import RMSNorm


class SharedHead(nn.Module):
    """The norm before the shared output head (the head itself is the main model's lm_head)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class MTPModule(Block):
    def __init__(self, config: ModelConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.enorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.hnorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.eh_proj = make_linear(2 * config.hidden_size, config.hidden_size, config.precision)  # M_k
        self.shared_head = SharedHead(config)

    def forward(self, h_prev: torch.Tensor, emb_next: torch.Tensor, cos, sin, mask, token_mask=None,
                cache=None, cache_layer: int = 0, absorb=None) -> tuple[torch.Tensor, torch.Tensor]:
        """h_prev, emb_next (B, T, d) -> (h_k (B, T, d) before the head's norm, aux loss)."""
        h = self.eh_proj(torch.cat([self.enorm(emb_next), self.hnorm(h_prev)], dim=-1))
        return super().forward(h, cos, sin, mask, token_mask, cache, cache_layer, absorb)
