"""A scalar head on the DeepSeek-V3 body: what the process reward model (prm.py: a logit per step) and the value
model (value.py: a logit per prefix) share. The body has no MTP module; a Linear(hidden, 1), zero at the start,
reads its final-normed hidden states. Both start from a policy checkpoint's body, as AlphaGo's value network
starts from its policy network."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from r1model.model.config import ModelConfig
from r1model.model.deepseek_v3 import DeepSeekV3


class ScalarHeadModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.body = DeepSeekV3(config.replace(num_nextn_predict_layers=0))
        self.head = nn.Linear(config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy(cls, directory: str | Path):
        """A model whose body starts as the policy checkpoint's (its language-model head is kept, unused)."""
        body = DeepSeekV3.from_pretrained(str(directory), num_nextn_predict_layers=0)
        model = cls(body.config)
        model.body = body
        return model

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, hidden) the body's last hidden states of right-padded rows (before the final norm)."""
        return self.body(input_ids, attention_mask=attention_mask, logits_to_keep=1).hidden_states

    def score(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of hidden states (..., hidden) → (...): the final norm, then the head."""
        return self.head(self.body.norm(hidden)).squeeze(-1).float()


def right_padded(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and their attention mask (B, T) bool."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, :len(row)] = True
    return ids.to(device), mask.to(device)
