"""DeepSeekMoE (V3 report §2.1.2): shared + routed SwiGLU experts, sigmoid affinities, group-limited
top-k routing steered by a per-expert bias, and auxiliary-loss-free load balancing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r1model.model.config import ModelConfig
from r1model.model.fp8 import make_linear


class Expert(nn.Module):
    """SwiGLU MLP: down(silu(gate(x)) * up(x)). Also the dense MLP and the (fused) shared experts."""

    def __init__(self, hidden_size: int, intermediate_size: int, precision: str):
        super().__init__()
        self.gate_proj = make_linear(hidden_size, intermediate_size, precision)
        self.up_proj = make_linear(hidden_size, intermediate_size, precision)
        self.down_proj = make_linear(intermediate_size, hidden_size, precision)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    """Router. Selection: top-k of (s_i + b_i) within the best groups; weights from the unbiased s_i.

    Runs in fp32 (as transformers and the report keep the gate in high precision). The bias b
    (``e_score_correction_bias``) is a buffer, outside autograd, moved by ``update_bias``.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.n_experts = c.n_routed_experts
        self.top_k = c.num_experts_per_tok
        self.n_group = c.n_group
        self.topk_group = c.topk_group
        self.norm_topk_prob = c.norm_topk_prob
        self.routed_scaling_factor = c.routed_scaling_factor
        self.scoring_func = c.scoring_func
        self.weight = nn.Parameter(torch.empty(c.n_routed_experts, c.hidden_size))  # e_i, the expert centroids
        self.register_buffer("e_score_correction_bias", torch.zeros(c.n_routed_experts))
        # tokens routed to each expert since the last bias update (training forwards only)
        self.register_buffer("tokens_per_expert", torch.zeros(c.n_routed_experts, dtype=torch.float64),
                             persistent=False)
        self.register_buffer("last_tokens_per_expert", torch.zeros(c.n_routed_experts, dtype=torch.float64),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (N, d) -> gate weights (N, K), expert ids (N, K), affinities s (N, E)."""
        logits = F.linear(x.float(), self.weight.float())
        scores = logits.sigmoid() if self.scoring_func == "sigmoid" else logits.softmax(dim=-1)
        biased = scores + self.e_score_correction_bias  # the bias only steers selection
        if self.n_group > 1:
            grouped = biased.view(-1, self.n_group, self.n_experts // self.n_group)
            group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)  # (N, n_group): sum of the top-2
            keep = group_scores.topk(self.topk_group, dim=-1).indices
            group_mask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, keep, True)
            # Masked groups get -inf, as the official reference does. transformers < 5 filled 0.0 here,
            # which can pick a masked expert when every kept biased score is negative; 5.x uses -inf too.
            biased = grouped.masked_fill(~group_mask[..., None], float("-inf")).flatten(1)
        indices = biased.topk(self.top_k, dim=-1).indices  # (N, K)
        weights = scores.gather(1, indices)
        if self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return weights * self.routed_scaling_factor, indices, scores

    @torch.no_grad()
    def count(self, indices: torch.Tensor) -> None:
        self.tokens_per_expert += torch.bincount(indices.flatten(), minlength=self.n_experts).double()

    @torch.no_grad()
    def update_bias(self, gamma: float) -> None:
        """Aux-loss-free balancing: b_i -= gamma * sign(load_i - mean load), loads since the last call."""
        load = self.tokens_per_expert
        if load.sum() == 0:
            return
        self.e_score_correction_bias -= gamma * torch.sign(load - load.mean()).float()
        self.last_tokens_per_expert.copy_(load)
        load.zero_()

    def load(self) -> torch.Tensor:
        """Tokens per expert since the last bias update, or those of the last update if none since."""
        return self.tokens_per_expert if self.tokens_per_expert.sum() > 0 else self.last_tokens_per_expert


class MoE(nn.Module):
    """h' = sum_shared FFN(u) + sum_{i in TopK} g_i FFN_i(u) (the residual is added by the block).

    Two ways to run the routed experts, the same sum: ``_dispatch`` groups the tokens by expert and runs
    each expert on its own tokens (training, prefill; one grouped GEMM per projection for all experts on
    CPU with fp32 weights, a loop over the experts otherwise); ``_dense`` runs every expert on every token with
    stacked weights and zero gates for the unchosen ones — E/K times the FLOPs, but a handful of kernels
    instead of three per expert, which is what a decoding step of a few rows is bound by.
    """

    DENSE_MAX_TOKENS = 128  # inference batches up to this many tokens take the dense path (within stack_weights)

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.top_k = c.num_experts_per_tok
        self.n_experts = c.n_routed_experts
        self.seq_aux_loss_alpha = c.seq_aux_loss_alpha
        self.gate = Gate(config)
        self.experts = nn.ModuleList(Expert(c.hidden_size, c.moe_intermediate_size, c.precision)
                                     for _ in range(c.n_routed_experts))
        self.shared_experts = (Expert(c.hidden_size, c.moe_intermediate_size * c.n_shared_experts, c.precision)
                               if c.n_shared_experts > 0 else None)
        self._stack: tuple[torch.Tensor, torch.Tensor] | None = None  # see stack_weights

    def forward(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, d); token_mask (B, T) bool (False = padding, not counted). Returns (out, seq aux loss)."""
        b, t, d = x.shape
        flat = x.reshape(-1, d)
        weights, indices, scores = self.gate(flat)
        if self._stack is not None and flat.shape[0] <= self.DENSE_MAX_TOKENS and not torch.is_grad_enabled():
            routed = self._dense(flat, weights, indices).view(b, t, d)
        else:
            routed = self._dispatch(flat, weights, indices).view(b, t, d)
        out = routed + self.shared_experts(x) if self.shared_experts is not None else routed
        valid = token_mask if token_mask is not None else torch.ones(b, t, dtype=torch.bool, device=x.device)
        aux = x.new_zeros((), dtype=torch.float32)
        if self.training:
            self.gate.count(indices[valid.reshape(-1)])
            if self.seq_aux_loss_alpha > 0:
                aux = self._sequence_balance_loss(scores.view(b, t, -1), indices.view(b, t, -1), valid)
        return out, aux

    @property
    def _plain_experts(self) -> bool:
        return type(self.experts[0].gate_proj) is nn.Linear  # fp32; bf16/fp8 GEMMs keep their own path

    def stack_weights(self) -> None:
        """Keep the experts' weights stacked (_stacked_weights) until drop_stack:
        for inference stretches whose weights do not change (DeepSeekV3.stacked_experts). Optimizers update
        weights in place without telling anyone (fused AdamW does not even bump version counters), so a
        stack is never kept beyond such a stretch."""
        with torch.no_grad():
            self._stack = self._stacked_weights()

    def _stacked_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """[gate; up] of every expert (E, 2f, d) and down (E, d, f); in the graph when grad is on, so the
        gradients flow back to each expert's own weights."""
        gate_up = torch.stack([torch.cat([e.gate_proj.weight, e.up_proj.weight]) for e in self.experts])
        return gate_up, torch.stack([e.down_proj.weight for e in self.experts])

    def drop_stack(self) -> None:
        self._stack = None

    def _dense(self, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Every expert on every token (no grad), combined with the gate weights (0 for unchosen experts)."""
        gate_up, down = self._stack
        n, f = x.shape[0], down.shape[2]
        h = F.linear(x, gate_up.view(-1, x.shape[1])).view(n, self.n_experts, 2, f)
        hidden = F.silu(h[:, :, 0]) * h[:, :, 1]  # (N, E, f)
        per_expert = torch.bmm(hidden.transpose(0, 1), down.transpose(1, 2))  # (E, N, d)
        gates = torch.zeros(n, self.n_experts, dtype=x.dtype, device=x.device).scatter_(1, indices, weights.to(x.dtype))
        return torch.einsum("end,ne->nd", per_expert, gates)

    def _dispatch(self, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Group (token, slot) pairs by expert, run each expert once on its tokens, scatter back weighted."""
        flat_idx = indices.reshape(-1)  # (N*K,)
        order = flat_idx.argsort(stable=True)
        token_of = order // self.top_k
        counts = torch.bincount(flat_idx, minlength=self.n_experts)
        xs = x[token_of]  # (N*K, d), sorted by expert
        if self._plain_experts and x.device.type == "cpu":  # one grouped GEMM per projection for all experts
            ys = self._grouped(xs, counts)
        else:
            pieces, start = [], 0
            for expert, count in zip(self.experts, counts.tolist()):
                if count:
                    pieces.append(expert(xs[start:start + count]))
                    start += count
            ys = torch.cat(pieces)
        ys = ys * weights.reshape(-1)[order, None].to(x.dtype)
        return torch.zeros_like(x).index_add_(0, token_of, ys)

    def _grouped(self, xs: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Rows of xs sorted by expert, counts[e] of them for expert e -> every row through its expert."""
        offsets = counts.cumsum(0).to(torch.int32)
        use_stack = self._stack is not None and not torch.is_grad_enabled()
        gate_up, down = self._stack if use_stack else self._stacked_weights()
        h = F.grouped_mm(xs, gate_up.transpose(1, 2), offs=offsets)  # (rows, 2f)
        gate, up = h.chunk(2, dim=-1)
        return F.grouped_mm(F.silu(gate) * up, down.transpose(1, 2), offs=offsets)

    def _sequence_balance_loss(self, scores, indices, valid) -> torch.Tensor:
        """Sequence-wise balance loss (V3 eq. 17-20): alpha * sum_i f_i P_i, averaged over sequences."""
        v = valid.float()  # (B, T)
        n_tokens = v.sum(1).clamp(min=1)  # (B,)
        chosen = torch.zeros_like(scores).scatter_(2, indices, 1.0)  # (B, T, E)
        f = (chosen * v[..., None]).sum(1) * self.n_experts / (self.top_k * n_tokens[:, None])  # (B, E)
        probs = scores / scores.sum(-1, keepdim=True)
        p = (probs * v[..., None]).sum(1) / n_tokens[:, None]  # (B, E)
        return self.seq_aux_loss_alpha * (f * p).sum(-1).mean()
