"""HFEngine: batched sampling from a transformers causal LM (r1model.model.hf.HFCausalLM) with its KV cache.

The same contract as BuiltinEngine: left-padded ragged prompts, each distinct prompt prefilled once and its
cache rows copied, temperature / top-p / top-k through the same ``sample`` (a token's logprob is
log_softmax(logits / T) before filtering, so at T = 1 it is the teacher-forced logprob), seeded, finished
rows dropped from the batch once a quarter of it has finished. It stops on the model's EOS ids (the
tokenizer's and generation_config.json's) and on ``</answer>`` matched as text, whether or not the tag
is one token of the vocabulary.
"""
from __future__ import annotations

import time

import torch

from r1model.model.hf import positions_of
from r1model.rollout.engine import (
    Completion, GenerationStats, RolloutEngine, SamplingParams, _check_prompts, _generator, left_pad, sample,
    tempered_entropy,
)

ANSWER_END = "</answer>"


class HFEngine(RolloutEngine):
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.last_stats = GenerationStats()
        self._gt_tokens: torch.Tensor | None = None  # tokens whose text may end '</answer>'

    def update_weights(self, model) -> None:
        if model is not self.model:
            self.model.load_state_dict(model.state_dict())

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
        _check_prompts(prompts)
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
        rows = torch.arange(len(prompts), device=device)
        tokens: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        entropies: list[list[float]] = [[] for _ in prompts]
        stopped = [False] * len(prompts)
        live = torch.ones(len(prompts), dtype=torch.bool, device=device)
        for step in range(params.max_new_tokens):
            tok, lp = sample(logits, params, generator)
            ent = tempered_entropy(logits, params.temperature)
            for r, alive, t, l, e in zip(rows.tolist(), live.tolist(), tok.tolist(), lp.tolist(), ent.tolist()):
                if alive:
                    tokens[r].append(t)
                    logprobs[r].append(l)
                    entropies[r].append(e)
            ended = torch.isin(tok, stop)
            if text_stop:  # '</answer>' as text: decode the tail of rows whose new token holds '>'
                for j in (live & may_close[tok.clamp(max=len(may_close) - 1)]).nonzero().squeeze(1).tolist():
                    tail = tokens[int(rows[j])][-len(ANSWER_END):]
                    if ANSWER_END in self.tokenizer.decode(tail):
                        ended[j] = True
            for j in (live & ended).nonzero().squeeze(1).tolist():
                stopped[int(rows[j])] = True
            live &= ~ended
            if step == params.max_new_tokens - 1 or not bool(live.any()):
                break
            if int(live.sum()) <= 0.75 * len(live):  # finished rows leave the batch and the cache
                keep = live.nonzero().squeeze(1)
                cache.reorder_cache(keep)
                rows, tok, live, mask, next_pos = rows[keep], tok[keep], live[keep], mask[keep], next_pos[keep]
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            out = model(tok[:, None], attention_mask=mask, position_ids=next_pos[:, None], past_key_values=cache,
                        use_cache=True)
            cache, logits = out.past_key_values, out.logits[:, -1]
            next_pos = next_pos + 1
        return tokens, logprobs, entropies, stopped
