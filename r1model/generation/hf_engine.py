"""HFEngine: batched sampling from a transformers causal LM (r1model.model.hf.HFCausalLM) with its KV cache.

The same contract as BuiltinEngine: left-padded ragged prompts, each distinct prompt prefilled once and its
cache rows copied, temperature / top-p / top-k (a token's logprob is log_softmax(logits / T) before
filtering, so at T = 1 it is the teacher-forced logprob), seeded, finished rows dropped from the batch once
a quarter of it has finished. It stops on the model's EOS ids (the tokenizer's and generation_config.json's)
and on ``</answer>`` matched as text, whether or not the tag is one token of the vocabulary.

The prompts are prefilled by the model's own forward. Decoding then takes one of two paths:
- Llama-style decoders (Qwen2, Llama, Mistral: pre-norm blocks of RoPE attention + MLP, no sliding window,
  no q/k norms) run a lean decode step (``LeanDecoder``): the layers' own weights and submodules (norms,
  rotary embedding, MLP) called directly, q/k/v as one matmul, keys/values written in place into buffers
  preallocated for prompt + max_new_tokens, attention as two batched matmuls over the filled part. This skips what
  transformers' forward pays per token (mask construction, cache objects growing by concatenation, the
  module/kwargs plumbing), which dominates on small models;
- any other architecture steps through the model's forward with its cache (``_generic_step``).
Per-token results stay on tensors until the end (no per-row Python work per step), and sampling draws by
inverse CDF (one uniform per row and a searchsorted), an order of magnitude cheaper than torch.multinomial
on CPU, with the same distribution.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from r1model.model.hf import positions_of
from r1model.generation.engine import (
    Completion, GenerationStats, GenerationEngine, SamplingParams, _check_prompts, _generator, filter_probs, left_pad,
    uniform,
)

ANSWER_END = "</answer>"
LEAN_MODEL_TYPES = ("qwen2", "llama", "mistral")


def sample_with_entropy(logits: torch.Tensor, params: SamplingParams, generator, rows=None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits (N, V) -> token (N,), its logprob under softmax(logits / T) before filtering (N,), and the
    entropy of softmax(logits / T) (N,); T = 0 is greedy with the logprobs and entropy of T = 1 (as
    engine.sample / tempered_entropy). Sampling by inverse CDF: the first token whose cumulative
    probability exceeds u · total, u uniform in [0, 1) (each batch row's own with RowGenerators: `rows` as
    engine.sample)."""
    logits = logits.float()
    scaled = logits / params.temperature if params.temperature else logits
    logp = scaled.log_softmax(-1)
    entropy = -(logp.exp() * logp).sum(-1)
    if params.temperature == 0:
        tok = logits.argmax(-1)
    else:
        if params.top_k or params.top_p < 1.0:
            probs = filter_probs(scaled, params.top_k, params.top_p)
        else:
            probs = logp.exp()
        cdf = probs.cumsum(-1)
        u = uniform(len(cdf), generator, rows, cdf.device).to(cdf.dtype)[:, None] * cdf[:, -1:]
        tok = torch.searchsorted(cdf, u, right=True).squeeze(1)  # never a token of probability 0 ...
        over = tok >= cdf.shape[1]  # ... unless u rounded up to the total: then the likeliest token
        if bool(over.any()):
            tok = torch.where(over, probs.argmax(-1), tok)
    return tok, logp.gather(1, tok[:, None]).squeeze(1), entropy


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LeanDecoder:
    """One-token decode steps for a Llama-style transformers model over preallocated key/value buffers.
    ``supports(hf)`` says whether the model has that shape; built per generate call (the weights change
    between GRPO steps), from the prefill's DynamicCache."""

    @staticmethod
    def supports(hf) -> bool:
        config = hf.config
        base = getattr(hf, "model", None)
        if getattr(config, "model_type", None) not in LEAN_MODEL_TYPES or base is None:
            return False
        if not all(hasattr(base, name) for name in ("embed_tokens", "layers", "norm", "rotary_emb")):
            return False
        if not hasattr(hf, "lm_head"):
            return False
        for layer in base.layers:
            attn = getattr(layer, "self_attn", None)
            if attn is None or not all(hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj",
                                                                  "head_dim", "scaling")):
                return False
            if getattr(attn, "sliding_window", None) or hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
                return False
            if not all(hasattr(layer, n) for n in ("input_layernorm", "post_attention_layernorm", "mlp")):
                return False
        layer_types = getattr(config, "layer_types", None)
        return not layer_types or all(t == "full_attention" for t in layer_types)

    def __init__(self, hf, cache, mask: torch.Tensor, max_new_tokens: int):
        base = hf.model
        self.hf, self.base = hf, base
        self.layers = list(base.layers)
        self.prompt_len = mask.shape[1]
        width = self.prompt_len + max_new_tokens
        n = mask.shape[0]
        self.mask = torch.zeros(n, width, dtype=torch.bool, device=mask.device)
        self.mask[:, :self.prompt_len] = mask.bool()
        self.keys, self.values, self.qkv = [], [], []
        for layer, cache_layer in zip(self.layers, cache.layers):
            k, v = cache_layer.keys, cache_layer.values  # (n, Hkv, P, D)
            kb = k.new_empty(n, k.shape[1], width, k.shape[3])
            vb = v.new_empty(n, v.shape[1], width, v.shape[3])
            kb[:, :, :self.prompt_len] = k
            vb[:, :, :self.prompt_len] = v
            self.keys.append(kb)
            self.values.append(vb)
            attn = layer.self_attn
            weight = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
            parts = (attn.q_proj, attn.k_proj, attn.v_proj)
            bias = (torch.cat([p.bias if p.bias is not None else p.weight.new_zeros(p.weight.shape[0])
                               for p in parts]) if any(p.bias is not None for p in parts) else None)
            sizes = [p.weight.shape[0] for p in parts]
            self.qkv.append((weight, bias, sizes))

    def keep(self, rows: torch.Tensor) -> None:
        self.mask = self.mask[rows]
        self.keys = [k[rows] for k in self.keys]
        self.values = [v[rows] for v in self.values]

    def step(self, tok: torch.Tensor, positions: torch.Tensor, index: int) -> torch.Tensor:
        """Logits (n, V) after token `tok` (n,) at RoPE positions (n,), the `index`-th generated token."""
        col = self.prompt_len + index
        self.mask[:, col] = True
        # additive mask (n, 1, 1, L): attention by batched matmuls over the filled part of the buffers
        # (SDPA on these strided views is ~2x slower on CPU than the plain matmuls)
        attn_bias = torch.zeros(self.mask.shape[0], 1, 1, col + 1, dtype=self.keys[0].dtype, device=self.mask.device)
        attn_bias.masked_fill_(~self.mask[:, None, None, :col + 1], float("-inf"))
        n = tok.shape[0]
        x = self.base.embed_tokens(tok[:, None])  # (n, 1, H)
        cos, sin = self.base.rotary_emb(x, positions[:, None])  # (n, 1, D)
        cos, sin = cos[:, None], sin[:, None]  # (n, 1, 1, D) against (n, heads, 1, D)
        for layer, keys, values, (weight, bias, sizes) in zip(self.layers, self.keys, self.values, self.qkv):
            attn = layer.self_attn
            d = attn.head_dim
            h = layer.input_layernorm(x)
            q, k, v = F.linear(h, weight, bias).split(sizes, -1)
            q = q.view(n, 1, -1, d).transpose(1, 2)
            k = k.view(n, 1, -1, d).transpose(1, 2)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            keys[:, :, col:col + 1] = k
            values[:, :, col:col + 1] = v.view(n, 1, -1, d).transpose(1, 2)
            kv_heads = keys.shape[1]
            q = q.reshape(n, kv_heads, -1, d)  # (n, Hkv, group, D): the query heads sharing a key/value head
            scores = torch.matmul(q, keys[:, :, :col + 1].transpose(-1, -2)) * attn.scaling + attn_bias
            out = torch.matmul(scores.softmax(-1, dtype=torch.float32).to(q.dtype), values[:, :, :col + 1])
            x = x + attn.o_proj(out.reshape(n, 1, -1))
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        return self.hf.lm_head(self.base.norm(x))[:, -1].float()


class HFEngine(GenerationEngine):
    def __init__(self, model, tokenizer, lean: bool | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.last_stats = GenerationStats()
        self._gt_tokens: torch.Tensor | None = None  # tokens whose text may end '</answer>'
        self.lean = LeanDecoder.supports(model.hf) if lean is None else lean  # lean=False: the generic path

    def stop_ids(self, params: SamplingParams) -> set[int]:
        if params.ignore_eos:
            return set(params.stop_token_ids)
        return {*self.tokenizer.stop_ids, *params.stop_token_ids}

    def _may_close_tag(self, device) -> torch.Tensor:
        """(V,) bool: vocabulary entries whose text holds '>' (the last character of </answer>)."""
        if self._gt_tokens is None:
            hf = self.tokenizer.hf
            pieces = hf.convert_ids_to_tokens(list(range(len(hf))))
            flags = [piece is not None and ">" in piece for piece in pieces]
            vocab = max(len(flags), int(self.model.config.vocab_size))
            self._gt_tokens = torch.tensor(flags + [False] * (vocab - len(flags)), dtype=torch.bool)
        return self._gt_tokens.to(device)

    def generate(self, prompts: list[list[int]], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[Completion]:
        _check_prompts(prompts, generator)
        model = self.model
        device = model.device
        generator = _generator(params, generator, device)
        stop = torch.tensor(sorted(self.stop_ids(params)), dtype=torch.long, device=device)
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode():
                tokens, logprobs, entropies, stopped = self._decode(prompts, params, generator, stop)
        finally:
            model.train(was_training)
        hidden = {self.tokenizer.eos_id, self.tokenizer.pad_id, *self.tokenizer.stop_ids}
        out = []
        for p, t, lp, e, s in zip(prompts, tokens, logprobs, entropies, stopped):
            text = self.tokenizer.decode([x for x in t if x not in hidden])
            out.append(Completion(list(p), t, text, lp, "stop" if s else "length", e))
        self.last_stats = GenerationStats(len(prompts), sum(len(t) for t in tokens), time.perf_counter() - started)
        return out

    def _decode(self, prompts, params: SamplingParams, generator, stop):
        model, device = self.model, self.model.device
        text_stop = not params.ignore_eos
        may_close = self._may_close_tag(device) if text_stop else None
        distinct: dict[tuple[int, ...], int] = {}
        source = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        ids, mask = left_pad([list(p) for p in distinct], self.tokenizer.pad_id, device)
        positions = positions_of(mask)
        out = model(ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
        cache, logits = out.past_key_values, out.logits[:, -1]
        source_rows = torch.tensor(source, device=device)
        if len(distinct) < len(prompts):  # one prefill per distinct prompt, its cache rows copied
            cache.reorder_cache(source_rows)
            logits = logits[source_rows]
        mask, next_pos = mask[source_rows], positions[source_rows, -1] + 1
        lean = LeanDecoder(model.hf, cache, mask, params.max_new_tokens) if self.lean else None
        n, steps = len(prompts), params.max_new_tokens
        out_tok = torch.zeros(n, steps, dtype=torch.long, device=device)
        out_lp = torch.zeros(n, steps, dtype=torch.float32, device=device)
        out_ent = torch.zeros(n, steps, dtype=torch.float32, device=device)
        length = torch.full((n,), steps, dtype=torch.long, device=device)
        stopped = torch.zeros(n, dtype=torch.bool, device=device)
        rows = torch.arange(n, device=device)
        live = torch.ones(n, dtype=torch.bool, device=device)
        for step in range(steps):
            tok, lp, ent = sample_with_entropy(logits, params, generator, rows)
            out_tok[rows, step], out_lp[rows, step], out_ent[rows, step] = tok, lp, ent
            ended = torch.isin(tok, stop) & live
            if text_stop:  # '</answer>' as text: decode the tail of rows whose new token holds '>'
                for j in (live & may_close[tok.clamp(max=len(may_close) - 1)]).nonzero().squeeze(1).tolist():
                    r = int(rows[j])
                    tail = out_tok[r, max(0, step + 1 - len(ANSWER_END)):step + 1].tolist()
                    if ANSWER_END in self.tokenizer.decode(tail):
                        ended[j] = True
            if bool(ended.any()):
                length[rows[ended]] = step + 1
                stopped[rows[ended]] = True
                live &= ~ended
                if not bool(live.any()):
                    break
            if step == steps - 1:
                break
            if int(live.sum()) <= 0.75 * len(live):  # finished rows leave the batch and the cache
                keep = live.nonzero().squeeze(1)
                if lean is not None:
                    lean.keep(keep)
                else:
                    cache.reorder_cache(keep)
                rows, tok, live, mask, next_pos = rows[keep], tok[keep], live[keep], mask[keep], next_pos[keep]
            if lean is not None:
                logits = lean.step(tok, next_pos, step)
            else:
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
                out = model(tok[:, None], attention_mask=mask, position_ids=next_pos[:, None], past_key_values=cache,
                            use_cache=True)
                cache, logits = out.past_key_values, out.logits[:, -1]
            next_pos = next_pos + 1
        lengths = length.tolist()
        tokens = [t[:m] for t, m in zip(out_tok.tolist(), lengths)]
        logprobs = [t[:m] for t, m in zip(out_lp.tolist(), lengths)]
        entropies = [t[:m] for t, m in zip(out_ent.tolist(), lengths)]
        return tokens, logprobs, entropies, stopped.tolist()
