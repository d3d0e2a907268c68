"""Shared prompts and packed completions: the teacher-forced forward of GRPO's update.

A GRPO minibatch holds G completions of each prompt. A plain forward would run every prompt+completion,
so each prompt's tokens G times. Here instead:

1. ``DeepSeekV3.encode_prefix`` runs the distinct prompts (left-padded, P rows) once; a ``SharedPrefix``
   passed through the layers as their attention hook keeps every layer's keys and values, with their
   autograd graph, and the next-token logits after each prompt;
2. ``DeepSeekV3.completion_logits`` runs the completions against it. ``PackedCompletions`` lays their
   real tokens side by side in one row — no padding through the projections and the experts — and pads
   them only around the attention, in buckets of rows of similar length (up to the next power of two),
   so one long completion does not widen every row's attention. In each layer a completion attends to
   its prompt's kept keys/values and its own causal past.

The log-probabilities and gradients are those of a plain forward of each prompt+completion: the prompt's
gradient is the sum over its group's completions. Attention layers (r1model.model.mla.MLA) see either hook
through one method, ``attend(layer, q, k, v, mask, scale)``, on per-head queries/keys/values (B, T, H, ·).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _attention(q, k, v, mask, scale) -> torch.Tensor:
    """(B, T, H, D) queries, (B, S, H, ·) keys/values, mask (B, 1, T, S) -> (B, T, H, v)."""
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         attn_mask=mask, scale=scale)
    return out.transpose(1, 2)


class SharedPrefix:
    """Per-layer keys and values of a batch of prompts (P, Tp), kept with their graph while the prompts run
    (as the layers' attention hook: ordinary attention, recording k and v), then read by PackedCompletions."""

    def __init__(self, num_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * num_layers  # (P, Tp, H, nope + rope)
        self.values: list[torch.Tensor | None] = [None] * num_layers  # (P, Tp, H, v)
        self.valid: torch.Tensor | None = None  # (P, Tp) bool, left padding False
        self.lengths: torch.Tensor | None = None  # (P,) real prompt tokens
        self.last_logits: torch.Tensor | None = None  # (P, V) next-token logits after each prompt

    def attend(self, layer: int, q, k, v, mask, scale) -> torch.Tensor:
        self.keys[layer], self.values[layer] = k, v
        return _attention(q, k, v, mask, scale)

    def finish(self, valid: torch.Tensor, last_logits: torch.Tensor) -> None:
        self.valid, self.lengths, self.last_logits = valid, valid.sum(1), last_logits


@dataclass
class PackedBucket:
    """Completion rows of similar length, padded together for the attention only."""

    group: torch.Tensor  # (b,) prompt row of each of its completion rows
    flat: torch.Tensor  # (n,) the real tokens' places in its padded (b·t) layout, row by row
    rows: int  # b
    width: int  # t, its longest row
    mask: torch.Tensor  # (b, 1, t, Tp + t) bool: the prompt's real tokens, then causal over its own


class PackedCompletions:
    """Right-padded completions (B, T), row b after prompt row ``group[b]`` of ``prefix``, packed: their N real
    tokens in bucket order (bucket 0's, then bucket 1's, …). ``order`` (N,) gives each packed token's place in
    the (B·T) layout, ``positions`` (N,) its RoPE position (after its prompt's real tokens)."""

    def __init__(self, prefix: SharedPrefix, group: torch.Tensor, valid: torch.Tensor):
        b, t = valid.shape
        device = valid.device
        lengths = valid.sum(1)
        if bool((valid != (torch.arange(t, device=device)[None, :] < lengths[:, None])).any()):
            raise ValueError("completion_logits: completions must be right-padded")
        self.prefix, self.group, self.shape = prefix, group, (b, t)
        width_class = torch.ceil(torch.log2(lengths.clamp(min=1).float())).long()
        self.buckets: list[PackedBucket] = []
        order = []
        for cls in width_class.unique().tolist():
            rows = (width_class == cls).nonzero().squeeze(1)
            width = int(lengths[rows].max())
            real = valid[rows, :width]
            pos = torch.arange(width, device=device)
            own = (pos[None, :] <= pos[:, None]) & real[:, None, None, :] | (pos[None, :] == pos[:, None])
            shared = prefix.valid[group[rows]][:, None, None, :].expand(len(rows), 1, width, -1)
            flat = real.reshape(-1).nonzero().squeeze(1)
            self.buckets.append(PackedBucket(group[rows], flat, len(rows), width, torch.cat([shared, own], dim=-1)))
            order.append((rows[:, None] * t + pos[None, :]).reshape(-1)[flat])  # places in the (B·T) layout
        self.order = torch.cat(order)
        positions = prefix.lengths[group][:, None] + torch.arange(t, device=device)[None, :]  # (B, T)
        self.positions = positions.reshape(-1)[self.order]

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, …) -> (N, …): the real tokens in packed order."""
        return x.reshape((-1,) + x.shape[2:])[self.order]

    def logits(self, packed: torch.Tensor) -> torch.Tensor:
        """Packed logits (N, V) (token j's predict token j + 1) -> (B, T, V), logits[:, j] predicting token j:
        column 0 from the prompt's last position, zeros past a row's end."""
        b, t = self.shape
        logits = packed.new_zeros(b * t, packed.shape[-1]).index_copy(0, self.order, packed).view(b, t, -1)
        return torch.cat([self.prefix.last_logits[self.group][:, None], logits[:, :-1]], dim=1)

    def attend(self, layer: int, q, k, v, mask, scale) -> torch.Tensor:
        """Packed queries/keys/values (1, N, H, ·) -> attention output (1, N, H, v), each completion over its
        prompt's keys/values and its own causal past (``mask`` is unused: the buckets hold theirs)."""
        outs, start = [], 0
        for bucket in self.buckets:
            n = bucket.flat.numel()
            qb, kb, vb = (self._pad(x[0, start:start + n], bucket) for x in (q, k, v))
            start += n
            kb = torch.cat([self.prefix.keys[layer][bucket.group], kb], dim=1)
            vb = torch.cat([self.prefix.values[layer][bucket.group], vb], dim=1)
            out = _attention(qb, kb, vb, bucket.mask, scale)
            outs.append(out.reshape((bucket.rows * bucket.width,) + out.shape[2:]).index_select(0, bucket.flat))
        return torch.cat(outs)[None]

    @staticmethod
    def _pad(x: torch.Tensor, bucket: PackedBucket) -> torch.Tensor:
        """(n, H, D) real tokens -> (b, t, H, D), zeros at the padding."""
        padded = x.new_zeros((bucket.rows * bucket.width,) + x.shape[1:]).index_copy(0, bucket.flat, x)
        return padded.view((bucket.rows, bucket.width) + x.shape[1:])


SharedAttention = (SharedPrefix, PackedCompletions)  # the attention hooks a layer may be handed as its cache
