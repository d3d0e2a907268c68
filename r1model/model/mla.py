"""Multi-head Latent Attention (V2 report §2.1, V3 §2.1.1) and its compressed KV cache.

Queries and keys/values pass through low-rank latents (each RMS-normalised); a RoPE key of
qk_rope_head_dim is computed once per token and shared by all heads. Two attention paths give the same
result: ``naive`` expands the latent into per-head K and V (training, teacher forcing); ``absorbed`` folds
W_UK into the query and applies W_UV after attention, so the cache holds only the normalised KV latent
and the RoPE key: kv_lora_rank + qk_rope_head_dim elements per token per layer (V3: 576).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from r1model.model.config import ModelConfig
from r1model.model.fp8 import gemm_input, gemm_weight, make_linear
from r1model.model.norm import RMSNorm
from r1model.model.rope import apply_rope
from r1model.model.shared_prefix import SharedAttention


class MLACache:
    """Absorbed-MLA KV cache for a batch: per layer and token the normalised KV latent c_kv and the rotated
    RoPE key, side by side in one row of kv_lora_rank + qk_rope_head_dim (V3: 512 + 64 = 576), so one
    matmul scores a query against both.

    Slots are written left to right for all rows at once; ``key_mask`` marks which slots hold a real token
    (left padding, finished rows and rejected speculative drafts leave holes). ``seen`` counts each row's real
    tokens, which gives the next RoPE position.
    """

    def __init__(self, num_layers: int, batch: int, max_len: int, kv_lora_rank: int, rope_dim: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"):
        self.kv_lora_rank = kv_lora_rank
        self.kv = torch.zeros(num_layers, batch, max_len, kv_lora_rank + rope_dim, dtype=dtype, device=device)
        self.key_mask = torch.zeros(batch, max_len, dtype=torch.bool, device=device)
        self.seen = torch.zeros(batch, dtype=torch.long, device=device)
        self.length = 0  # slots used

    @property
    def c_kv(self) -> torch.Tensor:  # (layers, B, max_len, kv_lora_rank)
        return self.kv[..., : self.kv_lora_rank]

    @property
    def k_rope(self) -> torch.Tensor:  # (layers, B, max_len, qk_rope_head_dim)
        return self.kv[..., self.kv_lora_rank:]

    @property
    def max_len(self) -> int:
        return self.kv.shape[2]

    @property
    def batch_size(self) -> int:
        return self.kv.shape[1]

    def store(self, layer: int, c_kv: torch.Tensor, k_rope: torch.Tensor) -> torch.Tensor:
        """Write T new slots of one layer at [length, length+T); return all slots so far (B, S, C + R)."""
        t = c_kv.shape[1]
        end = self.length + t
        if end > self.max_len:
            raise ValueError(f"cache: {end} tokens exceed max_len={self.max_len}")
        self.kv[layer, :, self.length:end, : self.kv_lora_rank] = c_kv
        self.kv[layer, :, self.length:end, self.kv_lora_rank:] = k_rope
        return self.kv[layer, :, :end]

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these batch rows (drop finished sequences)."""
        self.kv = self.kv.index_select(1, rows)
        self.key_mask = self.key_mask.index_select(0, rows)
        self.seen = self.seen.index_select(0, rows)

    def nbytes_per_token_per_layer(self) -> int:
        return self.kv.shape[-1] * self.kv.element_size()


class MLA(nn.Module):
    """Multi-head Latent Attention. Attribute names are transformers' (checkpoint keys)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        c = config
        self.num_heads = c.num_attention_heads
        self.q_lora_rank = c.q_lora_rank
        self.kv_lora_rank = c.kv_lora_rank
        self.qk_nope_head_dim = c.qk_nope_head_dim
        self.qk_rope_head_dim = c.qk_rope_head_dim
        self.v_head_dim = c.v_head_dim
        self.softmax_scale = c.qk_head_dim ** -0.5  # no YaRN mscale: no context extension here
        q_out = self.num_heads * c.qk_head_dim
        if c.q_lora_rank > 0:
            self.q_a_proj = make_linear(c.hidden_size, c.q_lora_rank, c.precision)  # W_DQ
            self.q_a_layernorm = RMSNorm(c.q_lora_rank, c.rms_norm_eps)
            self.q_b_proj = make_linear(c.q_lora_rank, q_out, c.precision)  # W_UQ and W_QR
        else:
            self.q_proj = make_linear(c.hidden_size, q_out, c.precision)
        # W_DKV and W_KR in one matrix: [latent c_kv | shared RoPE key]
        self.kv_a_proj_with_mqa = make_linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim, c.precision)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        # W_UK and W_UV in one matrix, per head [k_nope | v]
        self.kv_b_proj = make_linear(c.kv_lora_rank, self.num_heads * (c.qk_nope_head_dim + c.v_head_dim),
                                     c.precision)
        self.o_proj = make_linear(self.num_heads * c.v_head_dim, c.hidden_size, c.precision)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                cache: MLACache | None = None, cache_layer: int = 0, absorb: bool | None = None) -> torch.Tensor:
        """x (B, T, d); cos/sin (B, T, rope/2); mask (B, 1, T, S) bool, True = may attend.

        With a cache the new latents are stored and attention runs over all S cached slots; the absorbed
        path is the default then, the naive one otherwise (``absorb`` overrides).
        """
        b, t, _ = x.shape
        if self.q_lora_rank > 0:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        else:
            q = self.q_proj(x)
        q = q.view(b, t, self.num_heads, -1)  # (B, T, H, nope + rope)
        q_nope, q_rope = q.split([self.qk_nope_head_dim, self.qk_rope_head_dim], dim=-1)
        q_rope = apply_rope(q_rope, cos[:, :, None], sin[:, :, None])
        c_kv, k_rope = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, self.qk_rope_head_dim], dim=-1)
        c_kv = self.kv_a_layernorm(c_kv)  # (B, T, kv_lora_rank)
        k_rope = apply_rope(k_rope, cos, sin)  # (B, T, rope), one key for all heads
        if isinstance(cache, SharedAttention):  # GRPO's shared prompts / packed completions (r1model.model.shared_prefix)
            return self.o_proj(self._naive(q_nope, q_rope, c_kv, k_rope, mask, cache, cache_layer).reshape(b, t, -1))
        if absorb is None:
            absorb = cache is not None
        if cache is not None:
            kv = cache.store(cache_layer, c_kv, k_rope)  # (B, S, C + R): every cached token
            c_kv, k_rope = kv[..., : self.kv_lora_rank], kv[..., self.kv_lora_rank:]
        else:
            kv = torch.cat([c_kv, k_rope], dim=-1) if absorb else None
        if absorb:
            out = self._absorbed(q_nope, q_rope, kv, mask)
        else:
            out = self._naive(q_nope, q_rope, c_kv, k_rope, mask)
        return self.o_proj(out.reshape(b, t, -1))

    def _naive(self, q_nope, q_rope, c_kv, k_rope, mask, shared=None, layer: int = 0) -> torch.Tensor:
        b, s, _ = c_kv.shape
        kv = self.kv_b_proj(c_kv).view(b, s, self.num_heads, -1)  # (B, S, H, nope + v)
        k_nope, v = kv.split([self.qk_nope_head_dim, self.v_head_dim], dim=-1)
        k = torch.cat([k_nope, k_rope[:, :, None].expand(-1, -1, self.num_heads, -1)], dim=-1)
        q = torch.cat([q_nope, q_rope], dim=-1)
        if shared is not None:  # one of SharedAttention: it attends (and keeps or reads the prompts' k, v)
            return shared.attend(layer, q, k, v, mask, self.softmax_scale)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                             attn_mask=mask, scale=self.softmax_scale)  # (B, H, T, v)
        return out.transpose(1, 2)  # (B, T, H, v)

    def _absorbed(self, q_nope, q_rope, kv, mask) -> torch.Tensor:
        """kv (B, S, C + R): cached [c_kv | k_rope] rows. Scores = [q_nope W_UK | q_rope] . kv in one matmul.

        W_UK, W_UV and c_kv are taken as kv_b_proj's GEMM takes them in the naive path (under FP8 their E4M3
        round trips, fp8.gemm_weight / gemm_input), so that decoding samples from the very function that
        teacher forcing computes and trains: the absorbed product equals the naive one up to summation order.
        """
        b, t, h, _ = q_nope.shape
        latent = kv[..., : self.kv_lora_rank]
        gemm_latent = gemm_input(self.kv_b_proj, latent)
        if gemm_latent is not latent:
            kv = torch.cat([gemm_latent, kv[..., self.kv_lora_rank:]], dim=-1)
        w = gemm_weight(self.kv_b_proj).view(self.num_heads, -1, self.kv_lora_rank)  # (H, nope + v, C)
        w_uk, w_uv = w[:, : self.qk_nope_head_dim], w[:, self.qk_nope_head_dim:]
        q_latent = torch.einsum("bthd,hdc->bthc", q_nope, w_uk)  # query in latent space
        q = torch.cat([q_latent, q_rope], dim=-1).reshape(b, t * h, -1)  # (B, T*H, C + R)
        scores = torch.bmm(q, kv.transpose(1, 2)).view(b, t, h, -1) * self.softmax_scale  # (B, T, H, S)
        scores = scores.masked_fill(~mask.transpose(1, 2), float("-inf"))  # mask (B, 1, T, S) -> (B, T, 1, S)
        probs = scores.float().softmax(dim=-1).to(kv.dtype)
        out_latent = torch.bmm(probs.view(b, t * h, -1), kv[..., : self.kv_lora_rank]).view(b, t, h, -1)
        return torch.einsum("bthc,hvc->bthv", out_latent, w_uv)  # (B, T, H, v)
