"""Optional shaping rewards: language consistency (R1 report §2.3.2), length (Kimi k1.5 §2.3.3) and an
n-gram repetition penalty (as in "Demystifying Long Chain-of-Thought Reasoning in LLMs")."""
from __future__ import annotations

import re
from collections import defaultdict

from r1model.language import CJK
from r1model.rewards.base import RewardResult
from r1model.template import parse_completion

# a word: a run of ASCII letters, one CJK character (those scripts write no spaces), or a run of other letters
# (the reward's own count; the lab's trace metric is r1model.language.language_mix)
_WORD = re.compile(rf"[A-Za-z]+|[{CJK}]|[^\W\d_A-Za-z{CJK}]+")


def language_reward(completions, problems, *, truncated=None, **kwargs) -> list[RewardResult]:
    """The share of target-language words in the think part. The target is English: a word counts when
    it is written in ASCII letters; each Chinese/Japanese/Korean character counts as one word. A think
    with no words (pure arithmetic) scores 1; no think scores 0. It reads the decoded text, so it sees other
    languages only through a tokenizer that keeps them: the byte-level BPE of the ``*-bpe`` presets does,
    the ASCII character tokenizer of ``tiny`` / ``small`` turns every other character into ``<unk>``."""
    results = []
    for completion in completions:
        think = parse_completion(completion).think
        if think is None:
            results.append(RewardResult(0.0, "no_think", "no <think> part"))
            continue
        words = _WORD.findall(think)
        if not words:
            results.append(RewardResult(1.0, "ok", "no words in the think part"))
            continue
        english = sum(word.isascii() for word in words)
        results.append(RewardResult(english / len(words), "ok", f"{english}/{len(words)} English words"))
    return results


def length_reward(completions, problems, *, truncated=None, accuracy=None, lengths=None,
                  **kwargs) -> list[RewardResult]:
    """Kimi k1.5: within each group (same problem id), λ = 0.5 − (len − min_len)/(max_len − min_len);
    a correct answer gets λ, a wrong one min(0, λ). λ = 0 when all lengths are equal.
    `lengths` (token counts: the trainer and the rollout job pass them, as Kimi measures length in tokens)
    default to character counts; `accuracy` is the accuracy reward's results (computed here when not given).
    Kimi k1.5 §2.3.3 adds it with a weight after a warm-up: RunConfig rewards' `warmup_steps`."""
    if accuracy is None:
        from r1model.rewards.rule_based import accuracy_reward

        accuracy = accuracy_reward(completions, problems, truncated=truncated, **kwargs)
    lengths = list(lengths) if lengths is not None else [len(c) for c in completions]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, problem in enumerate(problems):
        groups[problem.id].append(i)
    results: list[RewardResult | None] = [None] * len(completions)
    for members in groups.values():
        low, high = min(lengths[i] for i in members), max(lengths[i] for i in members)
        for i in members:
            lam = 0.0 if high == low else 0.5 - (lengths[i] - low) / (high - low)
            if accuracy[i].value is None:
                results[i] = RewardResult(None, "skipped", "accuracy could not be judged")
            elif accuracy[i].value > 0:
                results[i] = RewardResult(lam, "ok", f"correct, length {lengths[i]} in [{low}, {high}]")
            else:
                results[i] = RewardResult(min(0.0, lam), "ok", f"not correct, length {lengths[i]} in [{low}, {high}]")
    return results


def repetition_penalty(completions, problems, *, truncated=None, ngram: int = 3, max_penalty: float = 1.0,
                       **kwargs) -> list[RewardResult]:
    """−max_penalty × (share of repeated word n-grams): 0 for no repetition, towards −max_penalty for
    a completion that loops."""
    results = []
    for completion in completions:
        words = completion.split()
        grams = [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
        if not grams:
            results.append(RewardResult(0.0, "ok", f"fewer than {ngram} words"))
            continue
        repeated = 1.0 - len(set(grams)) / len(grams)
        results.append(RewardResult(-max_penalty * repeated, "ok", f"{repeated:.0%} of {ngram}-grams repeated"))
    return results
