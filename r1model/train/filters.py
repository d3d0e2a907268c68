"""Which sampled completions become SFT data: the rejection-sampling filters and the cold-start selection of
R1 (report §2.3.1 cold start, §2.3.3 rejection sampling), in one place. Standard library only.

A *sample* is a dict as a rollout run writes it to `rollouts.jsonl` (`{id, problem, answer, prompt,
completion, status, truncated, ...}`) or as a trace event carries it (`correct` instead of `status` works
too). The filters read the completion text themselves (format, language, repetition), so they do not depend
on which rewards the sampling run had switched on.

    reasons = rejection_reasons(sample)          # [] when kept; else e.g. ["mixed", "repetitive"]
    kept = [s for s in samples if not rejection_reasons(s)]
    data = mix_reasoning(reasoning, plain, ratio=3.0, seed=0)   # ~3:1 as the report's 600k : 200k

Rejection reasons (each a word, in this order):
- `wrong`: the checker did not judge it correct (status != "correct", or correct is not True);
- `truncated`: cut off at the token limit;
- `malformed`: not exactly `<think>…</think><answer>…</answer>`;
- `mixed`: the language-consistency reward of the think part is below `min_language` (1.0: every word of the
  think in the target language). The ASCII char tokenizer of `tiny` cannot write other scripts, so on it
  nothing is ever mixed; the byte-level `*-bpe` presets can;
- `repetitive`: more than `max_repeated` of its word 3-grams are repeats (the repetition reward).

Readability (cold start): among kept samples a worked one (non-empty think: it shows its steps) reads better
than a bare answer, and of two worked ones the shorter (fewer characters in the completion) reads better;
`select_readable` keeps the `per_problem` most readable samples of each problem (each text once).

Shortest (long2short, Kimi k1.5 §2.4): `select_shortest_correct` keeps, of each problem's n samples, the
shortest kept one (in tokens when the rollout recorded them), the SFT data of shortest rejection sampling.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterable

from r1model.rewards.shaping import language_reward, repetition_penalty
from r1model.template import format_completion, parse_completion

MIN_LANGUAGE = 1.0
MAX_REPEATED = 0.3
REASONING_RATIO = 3.0  # report: ~600k reasoning to ~200k non-reasoning samples


def is_correct(sample: dict) -> bool:
    if "status" in sample:
        return sample["status"] == "correct"
    return sample.get("correct") is True


def language_score(completion: str) -> float:
    """The language-consistency reward of the think part (0 when there is no think)."""
    return float(language_reward([completion], [None])[0].value)


def repeated_share(completion: str) -> float:
    """Share of the completion's word 3-grams that repeat an earlier one (0 for fewer than 3 words)."""
    return -float(repetition_penalty([completion], [None])[0].value)


def rejection_reasons(sample: dict, *, min_language: float = MIN_LANGUAGE,
                      max_repeated: float = MAX_REPEATED) -> list[str]:
    """Why the sample may not be SFT data ([] when it may): see the module docstring."""
    completion = sample["completion"]
    truncated = bool(sample.get("truncated"))
    parsed = parse_completion(completion, truncated=truncated)
    reasons = []
    if not is_correct(sample):
        reasons.append("wrong")
    if truncated:
        reasons.append("truncated")
    if not parsed.well_formed:
        reasons.append("malformed")
    if parsed.think is not None and language_score(completion) < min_language:
        reasons.append("mixed")
    if repeated_share(completion) > max_repeated:
        reasons.append("repetitive")
    return reasons


def is_reasoning(sample: dict) -> bool:
    """A worked sample: its think part is not empty."""
    think = parse_completion(sample["completion"]).think
    return bool(think and think.strip())


def readability_key(sample: dict) -> tuple:
    """Sort key, most readable first: worked before bare answers, then shorter, then the text (stable)."""
    return (0 if is_reasoning(sample) else 1, len(sample["completion"]), sample["completion"])


def select_readable(samples: Iterable[dict], per_problem: int = 1, **filters) -> list[dict]:
    """The kept samples (no rejection reason), the `per_problem` most readable of each problem id, each text
    once; problems in order of first appearance."""
    by_problem: dict[str, dict[str, dict]] = {}
    for sample in samples:
        if rejection_reasons(sample, **filters):
            continue
        key = str(sample.get("prompt_id") or sample.get("id"))
        by_problem.setdefault(key, {}).setdefault(sample["completion"], sample)
    out = []
    for texts in by_problem.values():
        out.extend(sorted(texts.values(), key=readability_key)[:per_problem])
    return out


def mix_reasoning(reasoning: list[dict], plain: list[dict], *, ratio: float = REASONING_RATIO,
                  seed: int = 0) -> list[dict]:
    """About `ratio` reasoning samples per non-reasoning one, as many as the pools allow: every reasoning
    sample and round(len(reasoning) / ratio) plain ones when there are that many; when plain ones are short,
    the reasoning ones are cut to `ratio` × the plain ones (drawn at random with `seed`). With no plain
    sample at all the reasoning ones are returned alone (the ratio cannot be kept). Shuffled."""
    rng = random.Random(seed)
    n_plain = min(len(plain), round(len(reasoning) / ratio))
    n_reasoning = len(reasoning)
    if plain and len(plain) < round(len(reasoning) / ratio):  # direct answers are short: cut the reasoning
        n_reasoning = min(len(reasoning), max(1, round(n_plain * ratio)))
    mixed = rng.sample(reasoning, n_reasoning) + rng.sample(plain, n_plain)
    rng.shuffle(mixed)
    return mixed


def sft_row(sample: dict) -> dict:
    """A {prompt, completion} row (with problem and answer, so the SFT wraps the problem in its template)."""
    row = {"id": str(sample.get("id")), "prompt": sample.get("prompt") or sample["problem"],
           "completion": sample["completion"]}
    for key in ("problem", "answer"):
        if sample.get(key) is not None:
            row[key] = sample[key]
    return row


def direct_answer(sample: dict) -> dict:
    """The non-reasoning sample of a problem: its gold answer with an empty think (the stand-in for the
    report's non-reasoning SFT data, which came from DeepSeek-V3's own pipeline)."""
    return {**sample, "completion": format_completion("", str(sample["answer"])), "status": "correct",
            "truncated": False, "source": "direct"}


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
            count += 1
    tmp.replace(path)
    return count


def reason_counts(samples: Iterable[dict], **filters) -> dict[str, int]:
    """How many samples each rejection reason hit, plus `kept` and `total`."""
    counts = {"total": 0, "kept": 0}
    for sample in samples:
        counts["total"] += 1
        reasons = rejection_reasons(sample, **filters)
        counts["kept"] += not reasons
        for reason in reasons:
            counts[reason] = counts.get(reason, 0) + 1
    return counts


def build_cold_start(rollouts: str | Path, out: str | Path, *, per_problem: int = 1, **filters) -> dict:
    """Cold-start SFT data from a model's samples (Zero's): the most readable kept samples of each problem,
    worked ones only (cold-start data is long CoT). ValueError when none is left. Returns a summary."""
    samples = read_jsonl(rollouts)
    chosen = [s for s in select_readable(samples, per_problem=per_problem, **filters) if is_reasoning(s)]
    if not chosen:
        raise ValueError(f"no sample of {rollouts} is correct, well-formed, unmixed, untruncated, not repetitive "
                         "and worked: no cold-start data")
    rows = write_jsonl(out, (sft_row(s) for s in chosen))
    return {"rows": rows, "problems": len({s.get("id") for s in chosen}), "filters": reason_counts(samples, **filters),
            "mean_length": sum(len(s["completion"]) for s in chosen) / rows}


def build_sft_data(rollouts: str | Path, out: str | Path, *, ratio: float = REASONING_RATIO, seed: int = 0,
                   **filters) -> dict:
    """Rejection-sampled SFT data: every kept sample (each text once per problem) is a reasoning one when
    worked, a non-reasoning one when its think is empty; the non-reasoning pool is topped up with the gold
    direct answers of the sampled problems; mixed ~ratio:1 (mix_reasoning). ValueError when nothing is kept."""
    samples = read_jsonl(rollouts)
    kept = select_readable(samples, per_problem=len(samples) or 1, **filters)
    reasoning = [s for s in kept if is_reasoning(s)]
    plain = [s for s in kept if not is_reasoning(s)]
    answered = {str(s.get("id")) for s in plain}
    problems: dict[str, dict] = {}
    for s in samples:
        if s.get("answer") is not None and str(s.get("id")) not in answered:
            problems.setdefault(str(s.get("id")), s)
    plain += [direct_answer(s) for s in problems.values()]
    mixed = mix_reasoning(reasoning, plain, ratio=ratio, seed=seed)
    if not mixed:
        raise ValueError(f"no sample of {rollouts} passed the filters: no SFT data")
    rows = write_jsonl(out, (sft_row(s) for s in mixed))
    n_reasoning = sum(is_reasoning(s) for s in mixed)
    return {"rows": rows, "reasoning": n_reasoning, "non_reasoning": rows - n_reasoning,
            "model_direct_answers": sum(1 for s in mixed if not is_reasoning(s) and s.get("source") != "direct"),
            "filters": reason_counts(samples, **filters)}


def build_accepted(rollouts: str | Path, out: str | Path, **filters) -> dict:
    """Distillation data (R1 §2.4): every kept sample of a teacher (correct, well-formed, unmixed, untruncated,
    not repetitive), each text once per problem, the teacher's own text only (no gold answers added).
    ValueError when nothing is kept. Returns a summary."""
    samples = read_jsonl(rollouts)
    kept = select_readable(samples, per_problem=len(samples) or 1, **filters)
    if not kept:
        raise ValueError(f"no sample of {rollouts} passed the filters: no distillation data")
    rows = write_jsonl(out, (sft_row(s) for s in kept))
    return {"rows": rows, "problems": len({str(s.get("prompt_id") or s.get("id")) for s in kept}),
            "reasoning": sum(is_reasoning(s) for s in kept), "filters": reason_counts(samples, **filters),
            "mean_length": sum(len(s["completion"]) for s in kept) / rows}


# ---------------------------------------------------------------------------------------------- long2short

def sample_length(sample: dict) -> int:
    """The sample's response length: its token count when the rollout recorded one (`tokens`), else characters."""
    tokens = sample.get("tokens")
    return int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else len(sample["completion"])


def select_shortest_correct(samples: Iterable[dict], **filters) -> list[dict]:
    """Kimi k1.5 §2.4 shortest rejection sampling: of each problem's n samples, the shortest one that is kept
    (correct and every other filter of `rejection_reasons`); a problem with no kept sample is left out. Ties go
    to the earlier sample. Problems in order of first appearance."""
    best: dict[str, tuple[int, int, dict]] = {}
    for order, sample in enumerate(samples):
        if rejection_reasons(sample, **filters):
            continue
        key = str(sample.get("prompt_id") or sample.get("id"))
        candidate = (sample_length(sample), order, sample)
        if key not in best or candidate[:2] < best[key][:2]:
            best[key] = candidate
    return [entry[2] for entry in best.values()]


def build_shortest_correct(rollouts: str | Path, out: str | Path, **filters) -> dict:
    """long2short SFT data (Kimi k1.5 §2.4): the shortest kept sample of each sampled problem. ValueError when no
    problem has one. Returns a summary (rows, mean length of the chosen vs of every correct sample)."""
    samples = read_jsonl(rollouts)
    chosen = select_shortest_correct(samples, **filters)
    if not chosen:
        raise ValueError(f"no sample of {rollouts} is correct, well-formed, unmixed, untruncated and not repetitive: "
                         "no shortest-correct data")
    rows = write_jsonl(out, (sft_row(s) for s in chosen))
    correct = [sample_length(s) for s in samples if is_correct(s)]
    return {"rows": rows, "problems": len({str(s.get("prompt_id") or s.get("id")) for s in samples}),
            "filters": reason_counts(samples, **filters),
            "mean_length": sum(sample_length(s) for s in chosen) / rows,
            "mean_length_correct": sum(correct) / len(correct) if correct else None}
