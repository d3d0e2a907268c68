"""Rollout engines: the seam between the trainer and whatever generates completions.

``GenerationEngine`` is the interface (``generate`` and ``update_weights``; ``SpeculativeEngine`` is the other one);
``BuiltinEngine`` is batched sampling with r1model's absorbed-MLA KV cache: left-padded ragged prompts,
each distinct prompt prefilled once (GRPO sends every prompt G times) and its cache rows copied,
temperature / top-p / top-k, stop on eos or ``</answer>``, seeded, finished rows dropped from the batch
(in batches, once a quarter of it has finished).

A generate call draws from one generator for the whole batch, or, given ``RowGenerators``, each row from its
own stream: a row's completion then depends on its prompt and seed only, not on the other rows of the batch
(GRPO seeds row g of a step's global batch with base + g, so N ranks sample what one process samples).
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from r1model.model.tokenizer import ANSWER_END
from r1model.generation.logprobs import entropy_of


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 1.0  # 0 = greedy (logprobs are then those of temperature 1)
    top_p: float = 1.0  # nucleus sampling: keep the smallest set of tokens with probability >= top_p
    top_k: int = 0  # keep the k most likely tokens (0 = all)
    max_new_tokens: int = 128
    stop_token_ids: tuple[int, ...] = ()  # in addition to eos and </answer>
    seed: int | None = None  # seeds a fresh generator when generate() gets none
    ignore_eos: bool = False  # do not stop on eos / </answer> (benchmarks; stop_token_ids still apply)

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and self.temperature >= 0):
            raise ValueError(f"temperature: must be a number >= 0, got {self.temperature!r}")
        if not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            raise ValueError(f"top_p: must be in (0, 1], got {self.top_p!r}")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise ValueError(f"top_k: must be an integer >= 0, got {self.top_k!r}")
        if not (isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1):
            raise ValueError(f"max_new_tokens: must be an integer >= 1, got {self.max_new_tokens!r}")
        object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))


@dataclass
class Completion:
    prompt_ids: list[int]
    token_ids: list[int]  # generated tokens, the stop token included
    text: str  # decoded token_ids with special tokens kept, except eos / pad
    logprobs: list[float]  # log_softmax(logits / temperature) of each generated token, before top-p/top-k
    finish_reason: str  # 'stop' (a stop token was generated) or 'length' (max_new_tokens reached)
    # entropy of softmax(logits / temperature) at each generated token (before top-p/top-k); empty when
    # the engine does not report it (the trainer then computes it itself)
    entropies: list[float] = field(default_factory=list)


class GenerationEngine(abc.ABC):
    """Generates completions for token-id prompts; ``update_weights`` syncs it with the trained policy."""

    @abc.abstractmethod
    def generate(self, prompts: list[list[int]], params: SamplingParams,
                 generator: torch.Generator | RowGenerators | None = None) -> list[Completion]:
        ...

    def update_weights(self, model: torch.nn.Module) -> None:
        """Use these weights from now on (the same object is shared, another one is copied in). Engines that
        hold the weights elsewhere (vLLM) push them instead."""
        if model is not self.model:
            self.model.load_state_dict(model.state_dict())


@dataclass
class GenerationStats:
    prompts: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
    extras: dict = field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0


class BuiltinEngine(GenerationEngine):
    def __init__(self, model, tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.last_stats = GenerationStats()

    def stop_ids(self, params: SamplingParams) -> set[int]:
        if params.ignore_eos:
            return set(params.stop_token_ids)
        return {self.tokenizer.eos_id, self.tokenizer.token_id(ANSWER_END), *params.stop_token_ids}

    def generate(self, prompts: list[list[int]], params: SamplingParams,
                 generator: torch.Generator | None = None) -> list[Completion]:
        """Completions of every prompt (see the module docstring); the model's training mode is restored."""
        _check_prompts(prompts, generator)
        model = self.model
        generator = _generator(params, generator, model.device)
        stop = torch.tensor(sorted(self.stop_ids(params)), dtype=torch.long, device=model.device)
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            with torch.inference_mode(), model.stacked_experts():
                tokens, logprobs, entropies, extras = self._decode(prompts, params, generator, stop)
        finally:
            model.train(was_training)
        stop_set = set(stop.tolist())
        out = [self._completion(p, t, l, stop_set, e) for p, t, l, e in zip(prompts, tokens, logprobs, entropies)]
        self.last_stats = GenerationStats(len(prompts), sum(len(t) for t in tokens), time.perf_counter() - started,
                                          extras)
        return out

    def _decode(self, prompts, params: SamplingParams, generator, stop):
        """-> per prompt: token ids, their logprobs, their entropies; and the stats' extras."""
        model = self.model
        distinct: dict[tuple[int, ...], int] = {}
        source = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        ids, mask = left_pad([list(p) for p in distinct], self.tokenizer.pad_id, model.device)
        cache = model.new_cache(len(distinct), ids.shape[1] + params.max_new_tokens)
        logits = model(ids, attention_mask=mask, cache=cache, logits_to_keep=1).logits[:, -1]
        if len(distinct) < len(prompts):  # one prefill per distinct prompt, its cache rows copied
            source_rows = torch.tensor(source, device=model.device)
            cache.select(source_rows)
            logits = logits[source_rows]
        rows = torch.arange(len(prompts), device=model.device)  # original index of each batch row
        tokens: list[list[int]] = [[] for _ in prompts]
        logprobs: list[list[float]] = [[] for _ in prompts]
        entropies: list[list[float]] = [[] for _ in prompts]
        live = torch.ones(len(prompts), dtype=torch.bool, device=model.device)
        for step in range(params.max_new_tokens):
            tok, lp = sample(logits, params, generator, rows)
            ent = tempered_entropy(logits, params.temperature)
            for r, alive, t, l, e in zip(rows.tolist(), live.tolist(), tok.tolist(), lp.tolist(), ent.tolist()):
                if alive:
                    tokens[r].append(t)
                    logprobs[r].append(l)
                    entropies[r].append(e)
            live &= ~torch.isin(tok, stop)
            if step == params.max_new_tokens - 1 or not bool(live.any()):
                break
            # finished rows leave the batch and the cache once a quarter of it is finished (copying
            # the cache at every finish costs more than decoding a few dead rows)
            if int(live.sum()) <= 0.75 * len(live):
                keep = live.nonzero().squeeze(1)
                cache.select(keep)
                rows, tok, live = rows[keep], tok[keep], live[keep]
            logits = model(tok[:, None], cache=cache).logits[:, -1]
        return tokens, logprobs, entropies, {}

    def _completion(self, prompt, token_ids, logprobs, stop_set, entropies=()) -> Completion:
        finish = "stop" if token_ids and token_ids[-1] in stop_set else "length"
        shown = [t for t in token_ids if t not in (self.tokenizer.eos_id, self.tokenizer.pad_id)]
        return Completion(list(prompt), token_ids, self.tokenizer.decode(shown), logprobs, finish, list(entropies))


def left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged prompts -> ids (B, P) left-padded with pad_id, attention mask (B, P) (1 = token)."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids.to(device), mask.to(device)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 (wrapping arithmetic): a counter-based stream's k-th number."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RowGenerators:
    """One random stream per row of a generate call, row i's seeded `seeds[i]`: a counter-based SplitMix64
    stream per row, drawn for a whole batch at once on the CPU (the draws move to the model's device). Pass it
    as generate's `generator`: every draw of a batch row comes from that row's stream, one draw per row per
    draw call, so a row's samples do not depend on the batch around it."""

    _GAMMA = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, seeds):
        self.seeds = [int(s) for s in seeds]
        self._keys = _splitmix64(np.array([s % 2**64 for s in self.seeds], dtype=np.uint64))
        self._drawn = np.zeros(len(self.seeds), dtype=np.uint64)

    def __len__(self) -> int:
        return len(self.seeds)

    def uniform(self, rows, device) -> torch.Tensor:
        """One uniform in [0, 1) for each of `rows` (the call's row index of each batch row, distinct), shape
        (len(rows),), float64 (53 random bits)."""
        rows = np.asarray(rows.tolist() if isinstance(rows, torch.Tensor) else list(rows), dtype=np.int64)
        self._drawn[rows] += np.uint64(1)
        bits = _splitmix64(self._keys[rows] + self._drawn[rows] * self._GAMMA)
        return torch.from_numpy((bits >> np.uint64(11)).astype(np.float64) * 2.0**-53).to(device)


def uniform(n: int, generator, rows, device) -> torch.Tensor:
    """(n,) uniforms in [0, 1): from `generator`, or each batch row's own stream (RowGenerators; rows: the
    call's row index of each batch row, None = 0..n-1)."""
    if isinstance(generator, RowGenerators):
        return generator.uniform(range(n) if rows is None else rows, device)
    return torch.rand((n,), generator=generator, device=device)


def categorical(probs: torch.Tensor, generator, rows=None) -> torch.Tensor:
    """One token (N,) from each row of probs (N, V): torch.multinomial with one generator; with RowGenerators
    by inverse CDF on the row's own uniform (never a token of probability 0)."""
    if not isinstance(generator, RowGenerators):
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    cdf = probs.cumsum(-1)
    u = uniform(len(probs), generator, rows, probs.device).to(cdf.dtype)[:, None] * cdf[:, -1:]
    tok = torch.searchsorted(cdf, u, right=True).squeeze(1)
    over = tok >= cdf.shape[1]  # u rounded up to the total: the likeliest token
    return torch.where(over, probs.argmax(-1), tok)


def sample(logits: torch.Tensor, params: SamplingParams, generator,
           rows=None) -> tuple[torch.Tensor, torch.Tensor]:
    """logits (N, V) -> (token (N,), its logprob under softmax(logits / T) before filtering (N,)).
    `rows`: the call's row index of each batch row (RowGenerators only; None = 0..N-1)."""
    logits = logits.float()
    if params.temperature == 0:
        tok = logits.argmax(-1)
        return tok, logits.log_softmax(-1).gather(1, tok[:, None]).squeeze(1)
    scaled = logits / params.temperature
    logp = scaled.log_softmax(-1)
    probs = filter_probs(scaled, params.top_k, params.top_p)
    tok = categorical(probs, generator, rows)
    return tok, logp.gather(1, tok[:, None]).squeeze(1)


def tempered_entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Entropy (N,) of softmax(logits / T) for logits (N, V); T = 0 (greedy) reports that of T = 1."""
    return entropy_of((logits.float() / (temperature or 1.0)).log_softmax(-1))


def filter_probs(scaled: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Probabilities after top-k and top-p (nucleus) filtering of tempered logits (N, V)."""
    if top_k and top_k < scaled.shape[-1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = scaled.softmax(-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p  # mass of the more likely tokens
        drop_sorted = before >= top_p  # the most likely token is always kept
        drop = torch.zeros_like(drop_sorted).scatter(1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def _check_prompts(prompts, generator=None) -> None:
    if not prompts:
        raise ValueError("prompts: empty batch")
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompts[{i}]: empty prompt")
    if isinstance(generator, RowGenerators) and len(generator) != len(prompts):
        raise ValueError(f"generator: {len(generator)} row streams for {len(prompts)} prompts")


def _generator(params: SamplingParams, generator, device) -> torch.Generator | RowGenerators:
    if generator is not None:
        return generator
    g = torch.Generator(device=device)
    if params.seed is not None:
        g.manual_seed(params.seed)
    else:
        g.seed()
    return g
