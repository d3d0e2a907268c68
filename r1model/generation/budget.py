"""A think budget at inference (Kimi k1.5 §2.4 long2short: how much accuracy a shorter think keeps): the think is
cut at B tokens, `</think><answer>` is forced, and the model writes its answer from there.

    completions = generate_with_think_budget(engine, tokenizer, prompts, params, budget=16)

Two-phase generation on any engine (built-in, speculative, transformers): phase 1 samples at most B tokens and
stops early at `</think>` (when it is one token of the vocabulary), at EOS or at `</answer>`. A completion that
ended there is returned as it is; one that closed its think within B tokens continues unchanged; one that
reached B tokens without `</think>` gets the tokens of `</think><answer>` appended. Phase 2 continues every such
completion from prompt + its tokens so far, up to the same max_new_tokens in all (the forced tokens are not
counted: they were not sampled). The think therefore holds at most B sampled tokens.

The forced tokens carry logprob 0.0 (and entropy 0.0): they are placeholders for tokens nobody sampled, so a
budgeted completion is for evaluation, never for a policy-gradient update.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from r1model.generation.engine import Completion, SamplingParams

THINK_CLOSE = "</think>"
FORCED_TEXT = "</think><answer>"


@dataclass
class BudgetedCompletion(Completion):
    forced: bool = False  # the think reached the budget and `</think><answer>` was appended
    think_tokens: int = 0  # sampled tokens before `</think>` (≤ the budget)
    budget: int = 0


def _single_token(tokenizer, text: str) -> int | None:
    try:
        return int(tokenizer.token_id(text))
    except (KeyError, AttributeError, TypeError, ValueError):
        return None


def _think_tokens(tokenizer, token_ids: list[int], think_end: int | None) -> int:
    """Tokens before the first `</think>` (all of them when there is none)."""
    if think_end is not None and think_end in token_ids:
        return token_ids.index(think_end)
    for n in range(1, len(token_ids) + 1):  # a multi-token tag: the shortest prefix whose text holds it
        if THINK_CLOSE in tokenizer.decode(token_ids[:n]):
            return n - len(tokenizer.encode(THINK_CLOSE))
    return len(token_ids)


def generate_with_think_budget(engine, tokenizer, prompts: list[list[int]], params: SamplingParams, budget: int,
                               generator=None) -> list[BudgetedCompletion]:
    """Completions of `prompts` whose think is cut at `budget` sampled tokens (see the module docstring). With a
    budget ≥ params.max_new_tokens the budget cannot bind: plain generation."""
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"think budget must be an integer >= 1, got {budget!r}")
    think_end = _single_token(tokenizer, THINK_CLOSE)
    if budget >= params.max_new_tokens:
        return [_budgeted(c, tokenizer, think_end, budget, False) for c in engine.generate(prompts, params, generator)]
    forced_ids = list(tokenizer.encode(FORCED_TEXT))
    stops = params.stop_token_ids + ((think_end,) if think_end is not None else ())
    first = engine.generate(prompts, dataclasses.replace(params, max_new_tokens=budget, stop_token_ids=stops),
                            generator)
    out: list[BudgetedCompletion | None] = [None] * len(prompts)
    rows, prefixes, forced = [], [], []
    for i, c in enumerate(first):
        at_think_end = think_end is not None and bool(c.token_ids) and c.token_ids[-1] == think_end
        if c.finish_reason == "stop" and not (at_think_end and think_end not in params.stop_token_ids):
            out[i] = _budgeted(c, tokenizer, think_end, budget, False)  # ended (EOS, </answer>, a stop token)
            continue
        closed = at_think_end or THINK_CLOSE in c.text
        rows.append(i)
        forced.append(not closed)
        prefixes.append(list(c.token_ids) + ([] if closed else forced_ids))
    if rows:
        longest = max(params.max_new_tokens - len(first[i].token_ids) for i in rows)
        second = engine.generate([list(prompts[i]) + prefix for i, prefix in zip(rows, prefixes)],
                                 dataclasses.replace(params, max_new_tokens=max(1, longest),
                                                     seed=None if params.seed is None else params.seed + 1),
                                 generator)
        hidden = {getattr(tokenizer, "eos_id", None), getattr(tokenizer, "pad_id", None),
                  *getattr(tokenizer, "stop_ids", ())}
        for i, prefix, was_forced, cont in zip(rows, prefixes, forced, second):
            head = first[i]
            room = params.max_new_tokens - len(head.token_ids)  # this row's own share of max_new_tokens
            tail, tail_lp, tail_ent = cont.token_ids[:room], cont.logprobs[:room], list(cont.entropies[:room])
            finish = cont.finish_reason if len(cont.token_ids) <= room else "length"
            n_forced = len(prefix) - len(head.token_ids)
            ids = prefix + tail
            entropies = (list(head.entropies) + [0.0] * n_forced + tail_ent
                         if len(head.entropies) == len(head.token_ids) and len(tail_ent) == len(tail) else [])
            text = tokenizer.decode([t for t in ids if t not in hidden])
            out[i] = BudgetedCompletion(list(prompts[i]), ids, text, list(head.logprobs) + [0.0] * n_forced + tail_lp,
                                        finish, entropies, forced=was_forced,
                                        think_tokens=len(head.token_ids) if was_forced
                                        else _think_tokens(tokenizer, list(head.token_ids), think_end),
                                        budget=budget)
    return out  # type: ignore[return-value]


def _budgeted(c: Completion, tokenizer, think_end, budget: int, forced: bool) -> BudgetedCompletion:
    return BudgetedCompletion(c.prompt_ids, c.token_ids, c.text, c.logprobs, c.finish_reason, list(c.entropies),
                              forced=forced, think_tokens=_think_tokens(tokenizer, list(c.token_ids), think_end),
                              budget=budget)
