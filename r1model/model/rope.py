"""Decoupled RoPE of MLA (V2 report §2.1.3), in DeepSeek's interleaved-pair convention.

DeepSeek checkpoints rotate adjacent pairs (x0, x1), (x2, x3), ... by one frequency each (the official code
views them as complex numbers). transformers (rope_interleave=True) rotates the same pairs and writes the
result de-interleaved: [rotated evens | rotated odds]. We do the same: the permutation is applied to queries
and keys alike, so q·k, and therefore every logit, matches both the official code and transformers.
"""

import torch
from torch import nn


class RotaryEmbedding(nn.Module):
    def __init__(self, dim: int, theta: float):
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))  # (dim/2,)
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        angles = position_ids[..., None].float() * self.inv_freq  # (B, T, dim/2)
        return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of x (..., dim); cos/sin broadcast to (..., dim/2)."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
