"""DeepSeekV3: the whole model — embedding, MLA + (dense | DeepSeekMoE) blocks, final norm, output head,
and the MTP modules. Checkpoints are HF DeepseekV3 folders (see r1model.model.checkpoint)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from r1model.model.block import Block
from r1model.model.config import ModelConfig
from r1model.model.mla import MLACache
from r1model.model.moe import MoE
from r1model.model.mtp import MTPModule
from r1model.model.norm import RMSNorm
from r1model.model.rope import RotaryEmbedding
from r1model.model.shared_prefix import PackedCompletions, SharedPrefix

IGNORE_INDEX = -100


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, T, V) fp32 (only the last logits_to_keep positions when asked)
    loss: torch.Tensor | None = None  # lm_loss + mtp_loss_weight * mtp_loss + aux_loss
    lm_loss: torch.Tensor | None = None  # next-token CE over labels != -100
    mtp_loss: torch.Tensor | None = None  # (1/D) sum_k CE_k of the MTP modules (unweighted)
    aux_loss: torch.Tensor | None = None  # sequence-wise balance loss, summed over MoE layers (alpha included)
    hidden_states: torch.Tensor | None = None  # (B, T, d) last block's output, before the final norm
    cache: MLACache | None = None


class DeepSeekV3(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)  # high precision (fp32)
        self.layers = nn.ModuleList(Block(c, i) for i in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)  # high precision (fp32)
        self.mtp = nn.ModuleList(MTPModule(c, c.num_hidden_layers + k) for k in range(c.num_nextn_predict_layers))
        self.rotary = RotaryEmbedding(c.qk_rope_head_dim, c.rope_theta)
        self.apply(self._init_weights)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif hasattr(module, "e_score_correction_bias"):  # moe.Gate
            nn.init.normal_(module.weight, mean=0.0, std=std)

    @property
    def device(self) -> torch.device:
        return self.embed_tokens.weight.device

    # ---- caches and masks ------------------------------------------------------------------------
    def new_cache(self, batch: int, max_len: int, mtp: bool = False) -> MLACache:
        """An empty absorbed-MLA cache for the main layers (or, with mtp=True, for the MTP modules)."""
        c = self.config
        layers = c.num_nextn_predict_layers if mtp else c.num_hidden_layers
        return MLACache(layers, batch, max_len, c.kv_lora_rank, c.qk_rope_head_dim, device=self.device)

    def _prepare(self, shape, attention_mask, position_ids, cache):
        """-> position ids (B, T), valid new tokens (B, T) bool, attention mask (B, 1, T, S) bool."""
        b, t = shape
        start = cache.length if cache is not None else 0
        if attention_mask is None:
            valid = torch.ones(b, t, dtype=torch.bool, device=self.device)
        else:
            valid = attention_mask.to(self.device).bool()
            if valid.shape[1] == start + t and start > 0:  # HF style: the mask of every token so far
                valid = valid[:, start:]
            if valid.shape != (b, t):
                raise ValueError(f"attention_mask: shape {tuple(attention_mask.shape)} does not match "
                                 f"input_ids ({b}, {t})")
        if position_ids is None:  # left padding: positions count real tokens only
            offset = cache.seen[:, None] if cache is not None else 0
            position_ids = (offset + valid.long().cumsum(1) - 1).clamp(min=0)
        if cache is not None:
            cache.key_mask[:, start:start + t] = valid
            cache.seen += valid.sum(1)
            key_valid = cache.key_mask[:, :start + t]
        else:
            key_valid = valid
        q_pos = torch.arange(start, start + t, device=self.device)
        k_pos = torch.arange(start + t, device=self.device)
        causal = k_pos[None, :] <= q_pos[:, None]  # (T, S)
        mask = key_valid[:, None, None, :] & causal
        # Every query may see itself, so a padding query's softmax is never empty (its output is unused).
        mask = mask | (k_pos[None, :] == q_pos[:, None])
        return position_ids.to(self.device), valid, mask

    # ---- forward ---------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                cache: MLACache | None = None, past_key_values: MLACache | None = None,
                logits_to_keep: int = 0, absorb: bool | None = None) -> ModelOutput:
        """input_ids (B, T). labels (B, T) are the input ids (shifted inside), -100 = ignore.

        With a cache (``cache`` or ``past_key_values``) the new tokens' latents are appended and attention
        uses the absorbed path. Left padding: pass attention_mask; positions are derived from it.
        """
        cache = cache if cache is not None else past_key_values
        b, t = input_ids.shape
        position_ids, valid, mask = self._prepare((b, t), attention_mask, position_ids, cache)
        cos, sin = self.rotary(position_ids)
        x, aux_loss = self._blocks(self.embed_tokens(input_ids), cos, sin, mask, valid, cache, absorb)
        if cache is not None:
            cache.length += t
        h = self.norm(x)
        if logits_to_keep:
            h = h[:, -logits_to_keep:]
        logits = self.lm_head(h).float()
        out = ModelOutput(logits=logits, hidden_states=x, cache=cache)
        if labels is None:
            return out
        labels = labels.to(self.device)
        out.lm_loss = _shifted_ce(logits, labels, 1)
        mtp_losses = []
        h_prev = x
        for k, module in enumerate(self.mtp, start=1):
            n = t - k  # positions i whose token i+k exists
            if n < 2:
                break
            emb = self.embed_tokens(input_ids[:, k:])
            h_prev, aux = module(h_prev[:, :n], emb, cos[:, :n], sin[:, :n], mask[:, :, :n, :n], valid[:, :n],
                                 absorb=absorb)
            aux_loss = aux_loss + aux
            logits_k = self.lm_head(module.shared_head.norm(h_prev)).float()
            mtp_losses.append(_shifted_ce(logits_k, labels[:, k:], 1))  # position i predicts t_{i+k+1}
        out.mtp_loss = torch.stack(mtp_losses).mean() if mtp_losses else logits.new_zeros(())
        out.aux_loss = aux_loss
        out.loss = out.lm_loss + self.config.mtp_loss_weight * out.mtp_loss + aux_loss
        return out

    def _blocks(self, x, cos, sin, mask, valid, cache, absorb=None) -> tuple[torch.Tensor, torch.Tensor]:
        aux_loss = x.new_zeros((), dtype=torch.float32)
        for i, layer in enumerate(self.layers):
            x, aux = layer(x, cos, sin, mask, valid, cache, i, absorb)
            aux_loss = aux_loss + aux
        return x, aux_loss

    # ---- shared-prompt forwards (GRPO: G completions per prompt; r1model.model.shared_prefix) ---------
    def encode_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SharedPrefix:
        """Run left-padded prompts (P, Tp) once and keep every layer's keys/values (with grad) for
        ``completion_logits``. The last column must be each prompt's last token (left padding)."""
        b, t = input_ids.shape
        position_ids, valid, mask = self._prepare((b, t), attention_mask, None, None)
        if not bool(valid[:, -1].all()):
            raise ValueError("encode_prefix: prompts must be left-padded (the last column holds a real token)")
        prefix = SharedPrefix(len(self.layers))
        cos, sin = self.rotary(position_ids)
        x, _ = self._blocks(self.embed_tokens(input_ids), cos, sin, mask, valid, prefix)
        prefix.finish(valid, self.lm_head(self.norm(x[:, -1])).float())
        return prefix

    def completion_logits(self, prefix: SharedPrefix, group: torch.Tensor, input_ids: torch.Tensor,
                          attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, V) of right-padded completions (B, T), each after prompt row ``group[b]`` of
        ``prefix``: logits[:, j] predicts token j (j = 0 from the prompt's last position). The same numbers
        as a plain forward of each prompt+completion, without running a shared prompt G times, and with the
        completions packed: only real tokens go through the projections and the experts; the attention pads
        rows within buckets of lengths up to the next power of two. Positions past a row's end get zeros."""
        b, t = input_ids.shape
        valid = (torch.ones(b, t, dtype=torch.bool, device=self.device) if attention_mask is None
                 else attention_mask.to(self.device).bool())
        packed = PackedCompletions(prefix, group.to(self.device), valid)
        cos, sin = self.rotary(packed.positions[None])
        x = self.embed_tokens(packed.pack(input_ids)[None])  # (1, N, d)
        x, _ = self._blocks(x, cos, sin, None, torch.ones_like(packed.order, dtype=torch.bool)[None], packed)
        return packed.logits(self.lm_head(self.norm(x[0])).float())

    def mtp_forward(self, hidden: torch.Tensor, next_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                    position_ids: torch.Tensor | None, cache: MLACache | None = None,
                    depth: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """MTP module ``depth`` at positions with representation ``hidden`` (B, T, d) and next tokens
        ``next_ids`` (B, T). Returns (its representation, logits (B, T, V) for the token after next)."""
        b, t = next_ids.shape
        position_ids, valid, mask = self._prepare((b, t), attention_mask, position_ids, cache)
        cos, sin = self.rotary(position_ids)
        module = self.mtp[depth - 1]
        h, _ = module(hidden, self.embed_tokens(next_ids), cos, sin, mask, valid, cache, depth - 1)
        if cache is not None:
            cache.length += t
        return h, self.lm_head(module.shared_head.norm(h)).float()

    # ---- DeepSeekMoE balance ---------------------------------------------------------------------
    def moe_layers(self) -> list[tuple[str, MoE]]:
        named = [(f"layer{i}", block.mlp) for i, block in enumerate(self.layers) if block.is_moe]
        named += [(f"mtp{k}", m.mlp) for k, m in enumerate(self.mtp) if m.is_moe]
        return named

    @contextlib.contextmanager
    def stacked_experts(self):
        """For one stretch of inference whose weights do not change (a generate call): every MoE layer with
        fp32 experts stacks their weights once, so a decoding step runs its experts as a few batched GEMMs."""
        layers = [moe for _, moe in self.moe_layers() if moe._plain_experts]
        for moe in layers:
            moe.stack_weights()
        try:
            yield
        finally:
            for moe in layers:
                moe.drop_stack()

    def update_expert_bias(self, gamma: float | None = None) -> None:
        """Aux-loss-free balancing; call once after each optimizer step (uses loads since the last call)."""
        gamma = self.config.bias_update_speed if gamma is None else gamma
        for _, moe in self.moe_layers():
            moe.gate.update_bias(gamma)

    def expert_load_stats(self) -> dict[str, float]:
        """``moe/layer{i}/max_violation`` = max_load / mean_load - 1 per MoE layer, ``moe/max_violation`` their
        mean over the main model's layers. Loads: since the last update_expert_bias(), else those of it."""
        stats: dict[str, float] = {}
        main = []
        for name, moe in self.moe_layers():
            load = moe.gate.load()
            if load.sum() == 0:
                continue
            violation = float(load.max() / load.mean() - 1)
            stats[f"moe/{name}/max_violation"] = violation
            if name.startswith("layer"):
                main.append(violation)
        if main:
            stats["moe/max_violation"] = sum(main) / len(main)
        return stats

    # ---- sizes -----------------------------------------------------------------------------------
    def num_parameters(self, activated: bool = False, include_mtp: bool = True) -> int:
        """Parameters (unique tensors); activated=True counts only K of the routed experts per MoE layer."""
        seen, total = set(), 0
        for name, p in self.named_parameters():
            if id(p) in seen or (not include_mtp and name.startswith("mtp.")):
                continue
            seen.add(id(p))
            total += p.numel()
        if activated:
            c = self.config
            for name, moe in self.moe_layers():
                if not include_mtp and name.startswith("mtp"):
                    continue
                per_expert = sum(p.numel() for p in moe.experts[0].parameters())
                total -= per_expert * (c.n_routed_experts - c.num_experts_per_tok)
        return total

    # ---- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, tokenizer=None) -> Path:
        from r1model.model.checkpoint import save_pretrained
        return save_pretrained(self, directory, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **config_overrides) -> "DeepSeekV3":
        from r1model.model.checkpoint import load_pretrained
        return load_pretrained(cls, directory, **config_overrides)


def _shifted_ce(logits: torch.Tensor, labels: torch.Tensor, shift: int) -> torch.Tensor:
    """Mean CE of logits[:, i] against labels[:, i + shift] over labels != -100 (0 when none)."""
    n = labels.shape[1] - shift
    pred = logits[:, :n].reshape(-1, logits.shape[-1])
    target = labels[:, shift:shift + n].reshape(-1)
    total = F.cross_entropy(pred, target, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (target != IGNORE_INDEX).sum().clamp(min=1)
