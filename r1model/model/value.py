"""A value model: the DeepSeek-V3 body with a scalar head that predicts, from a prefix (prompt + part of a
completion), the probability that the completion ends correct — what guides step-level MCTS
(r1model.generation.mcts; DeepSeek-R1 §4.2 found such a value model hard to train).

The head reads the final-normed hidden state of each row's last real token. `fit_value_model` trains it on
(token ids, 0/1 outcome) pairs with binary cross-entropy; `predict` gives probabilities. Saved as one
torch file (`save` / `load`) holding the body's ModelConfig and both state dicts.
"""
from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from r1model.model.config import ModelConfig
from r1model.model.scalar_head import ScalarHeadModel, right_padded


class ValueModel(ScalarHeadModel):
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B,) logits of right-padded rows (B, T), read at each row's last real token."""
        last = attention_mask.long().sum(1) - 1
        hidden = self.hidden(input_ids, attention_mask)
        return self.score(hidden[torch.arange(input_ids.shape[0], device=input_ids.device), last])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        torch.save({"config": asdict(self.body.config), "body": self.body.state_dict(),
                    "head": self.head.state_dict()}, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ValueModel":
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        model = cls(ModelConfig(**state["config"]))
        model.body.load_state_dict(state["body"])
        model.head.load_state_dict(state["head"])
        return model


def _batch(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    if any(len(row) == 0 for row in rows):
        raise ValueError("value model: an empty sequence has no prefix to score")
    return right_padded(rows, pad, device)


@torch.no_grad()
def predict(model: ValueModel, sequences: list[list[int]], pad: int, batch_size: int = 128) -> list[float]:
    """P(correct) of each sequence; the model's training mode is restored."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[float] = []
    try:
        for start in range(0, len(sequences), batch_size):
            ids, mask = _batch(sequences[start:start + batch_size], pad, device)
            out.extend(torch.sigmoid(model(ids, mask)).tolist())
    finally:
        model.train(was_training)
    return out


def fit_value_model(model: ValueModel, examples: list[tuple[list[int], float]], pad: int, *, steps: int,
                    batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0) -> list[float]:
    """AdamW on binary cross-entropy over random batches of (sequence, outcome in [0, 1]); the loss per step."""
    if not examples:
        raise ValueError("value model: no training examples")
    if steps < 0 or batch_size < 1:
        raise ValueError(f"value model: steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    rng = random.Random(seed)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    losses = []
    for _ in range(steps):
        batch = [examples[rng.randrange(len(examples))] for _ in range(batch_size)]
        ids, mask = _batch([row for row, _ in batch], pad, device)
        target = torch.tensor([float(label) for _, label in batch], device=device)
        loss = nn.functional.binary_cross_entropy_with_logits(model(ids, mask), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def value_errors(predictions: list[float], labels: list[float]) -> dict:
    """Brier (mean squared error), the error rate at 0.5, and the Brier of always predicting the labels' mean
    (what the value model must beat to carry information)."""
    if len(predictions) != len(labels):
        raise ValueError(f"value model: {len(predictions)} predictions for {len(labels)} labels")
    n = len(labels)
    if n == 0:
        return {"n": 0, "brier": None, "error_rate": None, "baseline_brier": None}
    mean = sum(labels) / n
    return {"n": n, "brier": sum((p - y) ** 2 for p, y in zip(predictions, labels)) / n,
            "error_rate": sum((p >= 0.5) != (y >= 0.5) for p, y in zip(predictions, labels)) / n,
            "baseline_brier": sum((mean - y) ** 2 for y in labels) / n}
