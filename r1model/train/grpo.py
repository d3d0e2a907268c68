"""GRPO's mathematics (DeepSeekMath §4.1; DeepSeek-R1 report §2.2.1), free of any model or data.

For each question q, G outputs o_1..o_G are sampled from π_old and scored r_1..r_G. Then

    A_i   = (r_i − mean(r)) / std(r)                         group-relative advantage (every token of o_i)
    ρ_i,t = π_θ(o_i,t | q, o_i,<t) / π_old(o_i,t | ...)      ratio to the policy that sampled the rollouts
    L     = −min(ρ A, clip(ρ, 1 − ε_low, 1 + ε_high) A) + β · D_KL(π_θ ‖ π_ref)
    D_KL  = π_ref/π_θ − log(π_ref/π_θ) − 1                   Schulman's k3 estimator: ≥ 0, unbiased

and the token losses are aggregated into one number per batch in one of three ways (`aggregate`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from r1model.generation.logprobs import entropy_of

AGGREGATIONS = ("grpo", "dapo", "dr_grpo")


def group_advantages(rewards: torch.Tensor, group_size: int, scaling: str = "std", eps: float = 1e-4) -> torch.Tensor:
    """A_i = (r_i − mean of its group) / (std of its group + eps); rewards (B,) in groups of G consecutive rows.

    std is the sample standard deviation (Bessel-corrected, as TRL). A group whose rewards are all equal
    gets advantage exactly 0 (no NaN): its numerator is 0 and eps keeps the denominator positive.
    scaling='none' leaves out the division (Dr. GRPO: the std favours too easy and too hard questions).
    """
    if rewards.dim() != 1 or rewards.numel() % group_size:
        raise ValueError(f"rewards must be 1-D with a multiple of group_size={group_size} rows, got {tuple(rewards.shape)}")
    grouped = rewards.view(-1, group_size).to(torch.float64)  # (n_groups, G)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scaling == "std":
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    elif scaling != "none":
        raise ValueError(f"unknown advantage scaling {scaling!r}; expected 'std' or 'none'")
    return centred.view(-1).to(rewards.dtype)


def zero_std_groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """(n_groups,) bool: the groups whose rewards are all equal (no learning signal)."""
    grouped = rewards.view(-1, group_size)
    return (grouped == grouped[:, :1]).all(dim=1)


def masked_log_ratio(numerator: torch.Tensor, denominator: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """numerator − denominator (log-probabilities) on the mask, exactly 0 off it — before any exp.

    At padding the log-probabilities are placeholders (0 for the stored π_old/π_ref, the pad token's, perhaps
    −100, for π_θ): their exp can overflow, and inf · 0 is NaN both in the masked sum and in backward. A
    where() after the exp would fix the value but not the gradient, so the exp's input is masked.
    """
    delta = numerator - denominator
    if mask is None:
        return delta
    return torch.where(mask.bool(), delta, torch.zeros_like(delta))


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-token k3 estimate of KL(π_θ ‖ π_ref) (DeepSeek-R1 §2.2.1, eq. 2): exp(Δ) − Δ − 1 with
    Δ = log π_ref − log π_θ; ≥ 0, 0 iff equal. Positions off ``mask`` get 0 (see masked_log_ratio)."""
    delta = masked_log_ratio(ref_logp, logp, mask)
    return torch.exp(delta) - delta - 1


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(target) and the entropy of π per position, π = softmax(logits / temperature).

    logits (B, T, V), targets (B, T) → two (B, T) tensors (the entropy without gradient). The rollout's
    temperature must be used here too, or the ratio to the sampling policy is not 1 at μ = 1.
    """
    logp_all = F.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, V)
    logp = logp_all.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():  # a metric: no graph for it
        entropy = entropy_of(logp_all)
    return logp, entropy


def aggregate(token_loss: torch.Tensor, mask: torch.Tensor, how: str, max_new_tokens: int | None = None) -> torch.Tensor:
    """One number from token losses (B, T) over the mask (B, T) of completion tokens.

    grpo:    (1/B) Σ_i (1/|o_i|) Σ_t l_i,t   — the report's formula: every sequence weighs the same, so
             long sequences' tokens weigh less.
    dapo:    Σ_i,t l_i,t / Σ_i |o_i|          — token-level: every token weighs the same (DAPO).
    dr_grpo: Σ_i,t l_i,t / (B · max_new_tokens) — a constant normaliser, no length bias (Dr. GRPO).
    """
    mask = mask.to(token_loss.dtype)
    summed = (token_loss * mask).sum(dim=1)  # (B,)
    if how == "grpo":
        return (summed / mask.sum(dim=1).clamp(min=1)).mean()
    if how == "dapo":
        return summed.sum() / mask.sum().clamp(min=1)
    if how == "dr_grpo":
        if not max_new_tokens:
            raise ValueError("dr_grpo aggregation needs max_new_tokens")
        return summed.sum() / (token_loss.shape[0] * max_new_tokens)
    raise ValueError(f"unknown loss aggregation {how!r}; expected one of {AGGREGATIONS}")


def tis_weights(train_logp: torch.Tensor, sampler_logp: torch.Tensor, mask: torch.Tensor | None,
                cap: float) -> torch.Tensor:
    """Truncated importance sampling (Yao et al. 2025, "Your efficient RL framework secretly brings you
    off-policy RL training"): w = min(π_train / π_sampler, C) per token, where π_sampler is the rollout
    engine that sampled the tokens (e.g. vLLM) and π_train the trainer's policy at sampling time (π_old).
    It corrects the mismatch between the two implementations' numerics; C caps the variance. Off the mask
    w = 1. No gradient."""
    if cap <= 0:
        raise ValueError(f"tis cap must be > 0, got {cap}")
    with torch.no_grad():
        return torch.exp(masked_log_ratio(train_logp.detach(), sampler_logp, mask)).clamp(max=cap)


@dataclass
class PolicyLossStats:
    """Masked means over the completion tokens (Python floats, for metric events)."""

    kl: float
    clip_low: float  # share of tokens with A < 0 and ρ < 1 − ε_low
    clip_high: float  # share of tokens with A > 0 and ρ > 1 + ε_high
    clip_region: float
    ratio_mean: float


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta: float = 0.0,
    ref_logp: torch.Tensor | None = None,
    aggregation: str = "grpo",
    max_new_tokens: int | None = None,
    is_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, PolicyLossStats]:
    """The GRPO loss (to minimise) of one minibatch and its clip/KL statistics.

    logp (B, T): log π_θ of the sampled tokens (with grad); old_logp (B, T): log π_old at sampling time
    (no grad); advantages (B,) one per sequence; mask (B, T) 1 on completion tokens; ref_logp (B, T) only
    when beta > 0. Off the mask the inputs may hold any placeholder: ρ = 1 and KL = 0 there.
    is_weight (B, T), no grad: a per-token weight of the clipped policy-gradient term (not of the KL term),
    the truncated importance-sampling correction (`tis_weights`) when the rollouts came from another engine.
    """
    ratio = torch.exp(masked_log_ratio(logp, old_logp, mask))  # ρ (B, T)
    adv = advantages.unsqueeze(1).to(logp.dtype)  # (B, 1): every token of o_i shares A_i
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high) * adv
    token_loss = -torch.min(unclipped, clipped)
    if is_weight is not None:
        token_loss = token_loss * is_weight.detach().to(token_loss.dtype)
    kl_tokens = None
    if beta > 0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference log-probabilities")
        kl_tokens = k3_kl(logp, ref_logp, mask)
        token_loss = token_loss + beta * kl_tokens
    loss = aggregate(token_loss, mask, aggregation, max_new_tokens)

    with torch.no_grad():
        m = mask.to(logp.dtype)
        n = m.sum().clamp(min=1)
        low = ((ratio < 1 - epsilon_low) & (adv < 0)).to(m.dtype) * m
        high = ((ratio > 1 + epsilon_high) & (adv > 0)).to(m.dtype) * m
        stats = PolicyLossStats(
            kl=float((kl_tokens * m).sum() / n) if kl_tokens is not None else 0.0,
            clip_low=float(low.sum() / n),
            clip_high=float(high.sum() / n),
            clip_region=float(((low + high) > 0).to(m.dtype).sum() / n),
            ratio_mean=float((ratio * m).sum() / n),
        )
    return loss, stats
