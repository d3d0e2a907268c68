"""Entropy of a token distribution, shared by the samplers and the GRPO loss's metrics."""

from __future__ import annotations

import torch


def entropy_of(logp: torch.Tensor) -> torch.Tensor:
    """Entropy (...,) of distributions given as log-probabilities (..., V)."""
    return -(logp.exp() * logp).sum(-1)
