"""Teacher-forced log-probabilities of completion tokens: the GRPO ratio pi_theta / pi_old needs them."""

from __future__ import annotations

import torch


def sequence_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                      completion_start: int | torch.Tensor, temperature: float = 1.0,
                      return_entropy: bool = False):
    """Log-probabilities (differentiable) of input_ids[:, completion_start:] given everything before.

    input_ids (B, T): prompt (left-padded is fine, with attention_mask) followed by the completion.
    completion_start: an int (same for every row) -> (B, T - start); or a (B,) tensor -> (B, T - min(start))
    where row b, column j is token start_b + j (zero past the end of the row).
    Logprobs are log_softmax(logits / temperature) (temperature 0 is treated as 1, like greedy sampling).
    With return_entropy, also the entropy of that tempered distribution at each of those positions.
    """
    b, t = input_ids.shape
    temp = temperature if temperature and temperature > 0 else 1.0
    starts = torch.as_tensor(completion_start, device=input_ids.device).long()
    if starts.dim() == 0:
        starts = starts.expand(b)
    if starts.shape != (b,) or int(starts.min()) < 1 or int(starts.max()) > t:
        raise ValueError(f"completion_start: must be an int or a ({b},) tensor in [1, {t}]")
    first = int(starts.min())
    width = t - first
    logits = model(input_ids, attention_mask=attention_mask).logits  # (B, T, V)
    # position i predicts token i+1: columns for tokens first .. T-1 come from positions first-1 .. T-2
    logp = (logits[:, first - 1:-1].float() / temp).log_softmax(-1)  # (B, width, V)
    tok_lp = logp.gather(-1, input_ids[:, first:, None]).squeeze(-1)  # (B, width)
    entropy = entropy_of(logp) if return_entropy else None
    if bool((starts != first).any()):
        shift = (starts - first)[:, None] + torch.arange(width, device=input_ids.device)  # (B, width)
        inside = shift < width
        idx = shift.clamp(max=width - 1)
        tok_lp = tok_lp.gather(1, idx).masked_fill(~inside, 0.0)
        if entropy is not None:
            entropy = entropy.gather(1, idx).masked_fill(~inside, 0.0)
    return (tok_lp, entropy) if return_entropy else tok_lp


def entropy_of(logp: torch.Tensor) -> torch.Tensor:
    """Entropy (...,) of distributions given as log-probabilities (..., V)."""
    return -(logp.exp() * logp).sum(-1)
