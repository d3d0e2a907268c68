"""The language-mixing finding (DeepSeek-R1 report §2.3.2, §4): R1-Zero's chain of thought mixes languages; a
language-consistency reward (the share of target-language words in the think) removes the mixing at a slight
accuracy cost.

    python -m r1model recipe run language-mixing --run-dir DIR [--quick] [--seed N]

Stages: a bilingual base (tiny-bpe pretrained on additions whose worked lines are in English words or in Chinese,
switching language from line to line: r1model.tasks.arithmetic, language "en+zh") → Zero RL from it (accuracy +
format; the language reward computed at weight 0, logged only) → RL from the same base at the same budget with
accuracy + format + language → both evaluated alike (held-out problems, every sample written as a trace).
comparison.json (the general shape, r1model.train.chains): the mixing rate — the share of evaluated thinks whose
language-consistency reward is below 1 (r1model.train.chains.run_summary) — and accuracy of both.

Imports without torch (the findings registry is read by the lab).
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from r1model.train.chains import (BILINGUAL_CODE_SWITCH, BILINGUAL_DIGITS, BILINGUAL_LANGUAGE, Chain, From, Stage,
                                   run_summary)

FINDING = ("R1-Zero's chain of thought mixes languages; a language-consistency reward (the share of target-language "
           "words in the think) removes the mixing at a slight accuracy cost (DeepSeek-R1 §2.3.2, §4).")
ZERO_MIXING_AT_LEAST = 0.20  # Zero must mix in at least this share of its thinks ...
LANGUAGE_MIXING_AT_MOST = 0.02  # ... and the language reward bring it to at most this share
MIN_THINKS = 100  # fewer evaluated thinks per model (e.g. a --quick chain) make no verdict

# the bilingual corpus (r1model.train.chains, which r1-mini's full scale shares): 2-digit sums, two worked lines and
# the total, English first and each next line in the other language with chance CODE_SWITCH; the GRPO and
# evaluation problems are the same sums (the knobs only change how a worked solution is written)
CODE_SWITCH, DIGITS, LANGUAGE = BILINGUAL_CODE_SWITCH, BILINGUAL_DIGITS, BILINGUAL_LANGUAGE
QUICK_DIGITS = {"digits": 1}
EVAL_PROBLEMS, EVAL_SAMPLES = 200, 4  # 800 evaluated thinks per model
QUICK_EVAL_PROBLEMS, QUICK_EVAL_SAMPLES = 4, 2

BASE_STEPS, QUICK_BASE_STEPS = 400, 20
RL_STEPS, QUICK_RL_STEPS = 60, 2
RL_PROMPTS, RL_GROUP = 16, 8
QUICK_RL_PROMPTS, QUICK_RL_GROUP = 4, 4
MAX_NEW_TOKENS, QUICK_MAX_NEW_TOKENS = 64, 48
LANGUAGE_WEIGHT = 0.5  # R1's reasoning RL adds the language reward to accuracy; r1-mini weighs it 0.5 too
_MODEL = {"source": "tiny-bpe", "overrides": {"num_nextn_predict_layers": 0}}  # byte-level BPE: writes Chinese


def _dataset(quick: bool, eval_size: int) -> dict:
    return {"task": "addition", "difficulty": {**(QUICK_DIGITS if quick else DIGITS), **LANGUAGE},
            "eval_size": eval_size}


def _base(quick: bool) -> dict:
    """The bilingual base: every corpus answer worked (worked_fraction 1), so every think has words."""
    return {
        "kind": "pretrain", "name": "base", "model": dict(_MODEL), "datasets": [_dataset(quick, 0)],
        "template": "mini", "total_steps": QUICK_BASE_STEPS if quick else BASE_STEPS, "checkpoint_interval": 0,
        "supervised": {"batch_size": 8 if quick else 64, "learning_rate": 3e-3, "lr_schedule": "cosine",
                       "warmup_steps": 2 if quick else 50, "worked_fraction": 1.0, "completion_only_loss": True,
                       "max_seq_len": 128},
        "evaluation": {"benchmarks": [], "at_start": False},
    }


def _rl(language_weight: float):
    """GRPO from the base: accuracy + format, and the language reward at `language_weight` (Zero: 0 — computed
    and logged as rewards/language/mean, not rewarded). Both RL stages share everything else: the same budget."""
    def build(quick: bool) -> dict:
        return {
            "kind": "grpo", "name": "rl", "model": dict(_MODEL), "datasets": [_dataset(quick, 0)], "template": "mini",
            "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5},
                        {"name": "language", "weight": language_weight}],
            "total_steps": QUICK_RL_STEPS if quick else RL_STEPS, "checkpoint_interval": 0, "traces_per_step": 1,
            "grpo": {"group_size": QUICK_RL_GROUP if quick else RL_GROUP,
                     "prompts_per_step": QUICK_RL_PROMPTS if quick else RL_PROMPTS,
                     "learning_rate": 1e-4, "lr_schedule": "constant", "beta": 0.0, "epsilon_low": 0.2,
                     "epsilon_high": 0.2, "loss_aggregation": "grpo"},
            "sampling": {"temperature": 1.0, "max_new_tokens": QUICK_MAX_NEW_TOKENS if quick else MAX_NEW_TOKENS},
            "evaluation": {"benchmarks": [], "at_start": False},
        }
    return build


def _evaluate(quick: bool) -> dict:
    """Both RL models evaluated alike at the report's sampling (T 0.6, top-p 0.95), k samples per held-out
    problem; an evaluate job writes every sample as a trace, so the mixing rate counts them all."""
    return {
        "kind": "evaluate", "name": "evaluate", "model": dict(_MODEL),
        "datasets": [_dataset(quick, QUICK_EVAL_PROBLEMS if quick else EVAL_PROBLEMS)], "template": "mini",
        "total_steps": 0,
        "evaluation": {"at_start": True, "benchmarks": ["heldout"], "interval": 0,
                       "samples_per_problem": QUICK_EVAL_SAMPLES if quick else EVAL_SAMPLES,
                       "temperature": 0.6, "top_p": 0.95,
                       "max_new_tokens": QUICK_MAX_NEW_TOKENS if quick else MAX_NEW_TOKENS},
    }


# ---------------------------------------------------------------------------------------------- verdict

def verdict(metrics: dict) -> dict:
    """Reproduced when Zero mixes languages in at least ZERO_MIXING_AT_LEAST of its thinks and the language
    reward brings that to at most LANGUAGE_MIXING_AT_MOST; the reasons state the accuracy cost either way. Fewer
    than MIN_THINKS evaluated thinks for either model is inconclusive."""
    zero, language = metrics.get("zero_mixing_rate"), metrics.get("language_mixing_rate")
    if zero is None or language is None:
        return {"outcome": "inconclusive", "reasons": ["no evaluated thinks for Zero or for the language-reward model"]}
    thinks = min(metrics.get("zero_thinks") or 0, metrics.get("language_thinks") or 0)
    if thinks < MIN_THINKS:
        return {"outcome": "inconclusive", "reasons": [f"{thinks:g} evaluated thinks, fewer than {MIN_THINKS}"]}
    failed = []
    if zero < ZERO_MIXING_AT_LEAST:
        failed.append(f"Zero mixes in {zero:.1%} of thinks, under {ZERO_MIXING_AT_LEAST:.0%}")
    if language > LANGUAGE_MIXING_AT_MOST:
        failed.append(f"with the language reward {language:.1%} of thinks still mix, over {LANGUAGE_MIXING_AT_MOST:.0%}")
    cost = metrics.get("accuracy_cost")
    stated = [] if cost is None else [f"accuracy cost {cost * 100:+.1f} points (Zero's pass@1 minus the "
                                      "language-reward model's)"]
    return {"outcome": "not reproduced" if failed else "reproduced", "reasons": failed + stated}


# ---------------------------------------------------------------------------------------------- comparison

MODELS = (("zero", "Zero (accuracy + format)", "zero", "eval-zero"),
          ("language", "+ language reward", "language-rl", "eval-language-rl"))


def _thinks(run_dir: Path, step: int | None) -> dict[str, float | None]:
    """Over the evaluation's thinks (those run_summary counts): the mean language-consistency reward (share of
    English words), and the accuracy of the mixed thinks and of the wholly English ones."""
    from r1model.events import read_events
    from r1model.rewards.shaping import language_reward

    traces = [e for e in read_events(run_dir, types={"trace"})
              if e.get("source") == "eval" and e["step"] == step and e.get("think") is not None]
    values = [r.value for r in language_reward([e["completion"] for e in traces], [None] * len(traces))]

    def accuracy(mixed: bool) -> float | None:
        picked = [bool(e.get("correct")) for e, v in zip(traces, values) if (v < 1.0) == mixed]
        return sum(picked) / len(picked) if picked else None

    return {"english_share": statistics.fmean(values) if values else None,
            "accuracy_mixed": accuracy(True), "accuracy_english": accuracy(False)}


def _curves(run_dir: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Per-step training curves of an RL stage: the language reward's mean and the accuracy of the samples."""
    from r1model.events import read_events

    out: dict[str, tuple[list[int], list[float]]] = {"rewards/language/mean": ([], []), "accuracy": ([], [])}
    if not (run_dir / "events.jsonl").is_file():
        return out
    for event in read_events(run_dir, types={"metric"}):
        for key, (xs, ys) in out.items():
            value = event.get("values", {}).get(key)
            if value is not None and event.get("phase", "train") != "eval":
                xs.append(event["step"])
                ys.append(value)
    return out


def summarise(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json: mixing rate, accuracy, format rate, length and English share of both evaluations; the
    RL stages' language-reward and accuracy curves; the verdict; headline: the mixing rate's drop."""
    dirs = dict(zip((stage.name for stage in chain.stages), chain.stage_dirs()))
    sides: dict[str, dict[str, Any]] = {}
    for key, _label, rl_stage, eval_stage in MODELS:
        summary = run_summary(root / "stages" / dirs[eval_stage])
        summary.update(_thinks(root / "stages" / dirs[eval_stage], summary["step"]))
        summary["curves"] = _curves(root / "stages" / dirs[rl_stage])
        sides[key] = summary
    zero, language = sides["zero"], sides["language"]

    def minus(a, b):
        return None if a is None or b is None else a - b

    metrics = {
        "zero_mixing_rate": zero["mixing_rate"], "language_mixing_rate": language["mixing_rate"],
        "zero_accuracy": zero["accuracy"], "language_accuracy": language["accuracy"],
        "accuracy_cost": minus(zero["accuracy"], language["accuracy"]),
        "mixing_rate_drop": minus(zero["mixing_rate"], language["mixing_rate"]),
        "zero_english_share": zero["english_share"], "language_english_share": language["english_share"],
        # does mixing itself cost Zero accuracy? (None when Zero has no thinks of that kind)
        "zero_accuracy_mixed_thinks": zero["accuracy_mixed"], "zero_accuracy_english_thinks": zero["accuracy_english"],
        "zero_format_rate": zero["format_rate"], "language_format_rate": language["format_rate"],
        "zero_mean_length": zero["mean_length"], "language_mean_length": language["mean_length"],
        "zero_thinks": zero["mixing_n"], "language_thinks": language["mixing_n"],
    }
    outcome = verdict(metrics)
    rows = [[label, sides[key]["mixing_rate"], sides[key]["mixing_n"], sides[key]["english_share"],
             sides[key]["accuracy"], sides[key]["format_rate"], sides[key]["mean_length"]]
            for key, label, _rl, _eval in MODELS]
    charts = []
    for curve, title, y_label in (("rewards/language/mean", "Language-consistency reward of the RL samples",
                                   "share of English words in the think"),
                                  ("accuracy", "Accuracy of the RL samples", "accuracy")):
        charts.append({"title": title, "x_label": "GRPO step", "y_label": y_label, "series": [
            {"name": label, "x": sides[key]["curves"][curve][0], "y": sides[key]["curves"][curve][1]}
            for key, label, _rl, _eval in MODELS]})
    note = (f"Mixing rate: the share of evaluated thinks whose language-consistency reward (share of English words; "
            f"a word is an ASCII letter run or one CJK character) is below 1 — a think wholly in Chinese counts as "
            f"mixed, as English is the target. Measured on {zero['mixing_n']} (Zero) and {language['mixing_n']} "
            f"(language reward) thinks: every sample of the held-out problems at T 0.6 / top-p 0.95. Both RL runs "
            f"start from one bilingual base (worked lines in English or Chinese, each next line switching with "
            f"chance {CODE_SWITCH}) and have the same steps, prompts and group size; Zero computes the language "
            f"reward at weight 0 (logged, not rewarded). accuracy_cost = Zero's pass@1 minus the language-reward "
            f"model's.")
    drift = [f"{label} {ys[0]:.2f} → {ys[-1]:.2f}" for key, label, _rl, _eval in MODELS
             for ys in [sides[key]["curves"]["rewards/language/mean"][1]] if ys]
    if drift:
        note += f" English share of the RL samples (T 1), first → last step: {'; '.join(drift)}."
    if outcome["outcome"] != "reproduced":
        note += " Not reproduced here: " + "; ".join(outcome["reasons"]) + "."
    drop = metrics["mixing_rate_drop"]
    comparison = {
        "finding": FINDING, "metrics": metrics, "verdict": outcome,
        "table": {"columns": ["model", "mixing rate", "thinks", "English share", "accuracy (pass@1)", "format rate",
                              "mean length"], "rows": rows},
        "charts": charts, "headline": {"name": "mixing_rate_drop", "value": drop}, "note": note,
    }
    return comparison, f"mixing_rate_drop={'nan' if drop is None else f'{drop:.4f}'}"


CHAIN = Chain(
    name="language-mixing",
    description="R1's language mixing (§2.3.2) in miniature: a bilingual base (tiny-bpe; worked additions in "
    "English or Chinese, switching from line to line) → Zero RL (accuracy + format) and, from the same base at the "
    "same budget, RL with accuracy + format + the language-consistency reward → both evaluated alike; "
    "comparison.json: mixing rate (thinks not wholly English) and accuracy of each, the accuracy cost.",
    stages=(
        Stage("base", "pretrain tiny-bpe on bilingual worked additions", build=_base),
        Stage("zero", "R1-Zero: GRPO on the base, accuracy + format", build=_rl(0.0), model=From("base")),
        Stage("language-rl", "GRPO on the same base, accuracy + format + language consistency",
              build=_rl(LANGUAGE_WEIGHT), model=From("base")),
        Stage("eval-zero", "evaluate Zero (every sample traced)", build=_evaluate, model=From("zero")),
        Stage("eval-language-rl", "evaluate the language-reward model (every sample traced)", build=_evaluate,
              model=From("language-rl")),
    ),
    summarise=summarise,
    finding=FINDING,
    verdict=verdict,
)
