"""Chains: recipes run one after another, each stage taking its inputs from earlier stages' artifacts.

    python -m r1model recipe run r1-mini --run-dir DIR [--quick] [--seed N] [--set KEY=V] [--set STAGE:KEY=V]

    from r1model.train.chains import CHAINS, run_chain
    exit_code = run_chain("r1-mini", "runs/r1-mini", quick=True)

The definitions (this module's top half) import without torch, as recipes.py does; running a stage imports
the runner. Layout of a chain directory:

    DIR/chain.json                 stages, status per stage (pending/running/completed/failed/stopped, reason),
                                   the artifacts each produced and the lineage (which stage's artifact each
                                   stage consumed, as which input), the code each stage ran (`code`: commit,
                                   dirty) and the code that wrote the comparison (top-level `code`)
    DIR/stages/NN-<name>/          a run stage: a normal run directory (config.json, events.jsonl,
                                   checkpoints/); a data stage: data.jsonl + summary.json
    DIR/comparison.json            the chain's comparison (r1-mini: Zero vs R1-mini), when it defines one

A stage is a recipe (or a config builder, quick -> config dict) plus where its model and dataset come from:
`From("zero")` is stage zero's last checkpoint, `From("base", step=600)` its checkpoints/step-600 (kept by
the stage: keep_checkpoints), `From("samples", "rollouts")` its rollouts.jsonl,
`From("cold-start-data", "data")` a data stage's file. A data stage (`make=`) turns an earlier stage's samples
into an SFT file with r1model.train.filters (no training); a merge stage (`merge=(From(a), From(b))`) averages two
checkpoints into its checkpoints/step-0 (r1model.train.merge); a model stage (`init=`) writes a model there (a
fresh transformers causal LM, or a given folder after checks: r1model.train.init_model). Chains: r1-mini (R1's pipeline) and long2short
(Kimi k1.5 §2.4: length-penalty RL, shortest rejection sampling, merging; comparison.json by token efficiency).

Failure and resume: a stage that fails stops the chain; chain.json names the stage and its one-line reason and
earlier stages stay completed, their artifacts usable. Running the same command again resumes: completed stages
are skipped (their artifacts reused), the failed or interrupted stage resumes from its own checkpoints (the
runner resumes a run directory), the later stages follow. A completed stage is run again when an artifact a
later stage takes from it is gone, and so is every stage that takes an input from a stage run again. The options a chain was started with (quick, seed,
sets) are kept in chain.json; resuming with other options is refused.

Adding a finding: a module of r1model/train/findings/ defining a Chain (a tuple of Stages), listed in that
package's MODULES; `r1model.train.findings.CHAINS` holds every chain (this module's two and the findings').

comparison.json of a finding (what the lab's Findings page draws; every key optional but `metrics`):
    "finding":  the report's claim the chain tests, one sentence
    "metrics":  {name: number | null} flat — what is averaged over seeds (mean ± sd) on the Findings page
    "verdict":  {"outcome": "reproduced" | "not reproduced" | "inconclusive", "reasons": [str]} — Chain.verdict
                applied to `metrics` (the Findings page applies it again to the seeds' means)
    "table":    {"columns": [str], "rows": [[str | number | null]]}
    "charts":   [{"title": str, "x_label": str, "y_label": str, "series": [{"name": str, "x": [...], "y": [...]}]}]
                (a series with "reference": true marks a level, e.g. a target: drawn once over several runs)
    "headline": {"name": str, "value": number | null} — also the chain's closing `name=value` line
    "note":     how the numbers were measured, and why a finding did not reproduce
"""
from __future__ import annotations

import copy
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from r1model.model.config import is_model_folder
from r1model.train.config import ConfigError, RunConfig, validate_run_config
from r1model.train.recipes import RECIPES, set_path, use_dataset, use_model

CHAIN_JSON = "chain.json"
COMPARISON_JSON = "comparison.json"
RUN_ARTIFACTS = {"checkpoint": None, "accepted": "accepted.jsonl", "rollouts": "rollouts.jsonl", "events": "events.jsonl"}
DATA_ARTIFACT = "data.jsonl"


@dataclass(frozen=True)
class From:
    """An input taken from an earlier stage: its `artifact` ("checkpoint": the last complete
    checkpoints/step-N, or with `step` that step's checkpoint — `quick_step` under --quick, default `step`;
    "accepted", "rollouts", "events": the run's files; "data": a data stage's file)."""

    stage: str
    artifact: str = "checkpoint"
    step: int | None = None
    quick_step: int | None = None

    def key(self, quick: bool = False) -> str:
        """The artifact's name among a stage's artifacts: "checkpoint@N" for a checkpoint at a given step."""
        step = self.quick_step if quick and self.quick_step is not None else self.step
        return self.artifact if step is None else f"{self.artifact}@{step}"


@dataclass(frozen=True)
class Stage:
    name: str
    description: str = ""
    recipe: str | None = None  # a recipe of RECIPES ...
    build: Callable[[bool], dict] | None = None  # ... or a config builder (quick -> config dict)
    model: From | None = None  # -> model.source (recipes.use_model: the recipe's base pretraining is dropped)
    dataset: From | None = None  # -> datasets (recipes.use_dataset)
    sets: tuple[tuple[str, Any], ...] = ()  # config changes, applied after the recipe's
    quick_sets: tuple[tuple[str, Any], ...] = ()  # ... and these only with --quick
    full_sets: tuple[tuple[str, Any], ...] = ()  # ... or these only without it (the full CPU-minutes scale)
    make: str | None = None  # a data stage: a builder of DATA_BUILDERS, reading `source`
    source: From | None = None
    merge: tuple[From, From] | None = None  # a merge stage: weight · A + (1 − weight) · B (r1model.train.merge)
    merge_weight: float = 0.5
    # a model stage: quick -> the spec of a model (r1model.train.init_model: a fresh transformers causal LM, or
    # `source` a folder, checked) written as its checkpoints/step-0; `STAGE:KEY=V` sets change the spec
    init: Callable[[bool], dict] | None = None
    # other config paths set to an earlier stage's artifact, e.g. ("rewards.0.model", From("prm")): a reward model
    paths: tuple[tuple[str, From], ...] = ()

    @property
    def kind(self) -> str:
        return "data" if self.make else "merge" if self.merge else "model" if self.init else "run"

    def inputs(self) -> dict[str, From]:
        """{input name: where it comes from}: model.source / datasets for a run stage, source for a data one,
        merge.a / merge.b for a merge stage, and each of `paths` by its config path."""
        named = {"model.source": self.model, "datasets": self.dataset, "source": self.source,
                 "merge.a": self.merge[0] if self.merge else None, "merge.b": self.merge[1] if self.merge else None,
                 **dict(self.paths)}
        return {key: value for key, value in named.items() if value is not None}


@dataclass(frozen=True)
class Chain:
    name: str
    description: str
    stages: tuple[Stage, ...]
    compare: tuple[str, str] | None = None  # (baseline stage, final stage) for comparison.json
    # or a comparison of its own: (chain directory, chain) -> (comparison.json's dict, the closing name=value line)
    summarise: Callable[[Path, "Chain"], tuple[dict, str]] | None = None
    quick_sets: tuple[tuple[str, Any], ...] = ()  # --quick changes for every run stage (before the stages' own)
    full_sets: tuple[tuple[str, Any], ...] = ()  # ... and these without --quick
    finding: str = ""  # the report's claim the chain tests (comparison.json's "finding")
    # flat metrics (one seed's comparison["metrics"], or the seeds' means) -> {"outcome": ..., "reasons": [...]}
    verdict: Callable[[dict], dict] | None = None
    # data builders of its own, by `make` name: run(source, out, quick=, seed=, settings=) -> summary, where settings
    # are the stage's (sets, quick_sets with --quick, then the user's STAGE:KEY=V); check(quick, settings) refuses
    # bad settings (ValueError naming the field) before any stage runs
    builders: tuple[tuple[str, "Builder"], ...] = ()

    def stage_dirs(self) -> list[str]:
        return [f"{index:02d}-{stage.name}" for index, stage in enumerate(self.stages, 1)]


class ChainError(ValueError):
    """A chain that cannot start: unknown name, a bad definition, options that differ from chain.json's."""


@dataclass(frozen=True)
class Builder:
    """A chain's own data builder (Chain.builders) that takes the chain's options."""

    run: Callable[..., dict]
    check: Callable[[bool, list], None] | None = None


def builder_settings(chain: Chain, stage: Stage, quick: bool, sets: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The settings a chain's own builder gets: the stage's sets, its quick_sets (--quick) or full_sets, the user's
    `STAGE:` sets."""
    return (list(stage.sets) + list(stage.quick_sets if quick else stage.full_sets)
            + split_sets(sets, chain).get(stage.name, []))


# ---------------------------------------------------------------------------------------------- definitions

def _recipe_base(recipe: str) -> Callable[[bool], dict]:
    """A builder of the recipe's in-run base pretraining (same model, data, steps, supervised settings) as a
    stage of its own, so that every later stage that starts from the base shares it."""
    def build(quick: bool) -> dict:
        config = RECIPES[recipe].build(quick)
        return {
            "kind": "pretrain", "name": "base", "model": config["model"], "datasets": config["datasets"],
            "template": config["template"], "supervised": config["supervised"],
            "total_steps": config["base"]["steps"], "checkpoint_interval": config["base"].get("checkpoint_interval", 0),
            "evaluation": {"benchmarks": [], "at_start": False},
        }
    return build


_base_pretraining = _recipe_base("r1-zero")  # Zero and every SFT of the base share it


_R1_REWARDS = ("rewards", [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5},
                           {"name": "language", "weight": 0.5}])
_NO_EVAL = (("evaluation.benchmarks", []), ("evaluation.at_start", False))
_MORE_SAMPLES = (("grpo.group_size", 8), ("grpo.prompts_per_step", 8))

R1_MINI_SIDES = (("zero", "baseline"), ("r1-mini", "final"), ("difference", "difference"))
R1_MINI_METRICS = ("accuracy", "format_rate", "mixing_rate", "mean_length")
R1_MINI_TOLERANCE = 0.05  # "similar accuracy": R1-mini at most 5 points of pass@1 below Zero
# a rate within one point is the same rate: one malformed answer in 800 (format 0.999) is not a fall
R1_MINI_RATE_TOLERANCE = 0.01
R1_MINI_RULE = (
    "Reproduced when R1-mini is more readable than Zero — format rate not lower and language-mixing rate not "
    f"higher (within {R1_MINI_RATE_TOLERANCE:.2f}), and one of them better by more than that — at similar or better "
    f"accuracy (pass@1 at most {R1_MINI_TOLERANCE:.2f} below Zero's); no difference in readability is inconclusive."
)


def r1_mini_verdict(metrics: dict) -> dict:
    """R1's §2.3 claim on flat metrics ("difference.accuracy", "difference.format_rate",
    "difference.mixing_rate": R1-mini − Zero; one seed's or the seeds' means), by R1_MINI_RULE."""
    acc, fmt, mix = (metrics.get(f"difference.{key}") for key in ("accuracy", "format_rate", "mixing_rate"))
    out = {"outcome": "inconclusive", "reasons": [], "rule": R1_MINI_RULE}
    if acc is None or fmt is None:
        return {**out, "reasons": ["accuracy or format rate missing for Zero or R1-mini"]}
    reasons = []
    if fmt < -R1_MINI_RATE_TOLERANCE:
        reasons.append(f"format rate fell by {-fmt:.2f}")
    if mix is not None and mix > R1_MINI_RATE_TOLERANCE:
        reasons.append(f"mixing rate rose by {mix:.2f}")
    if acc < -R1_MINI_TOLERANCE:
        reasons.append(f"accuracy fell by {-acc:.2f}")
    if reasons:
        return {**out, "outcome": "not reproduced", "reasons": reasons}
    fmt_better, mix_better = fmt > R1_MINI_RATE_TOLERANCE, mix is not None and mix < -R1_MINI_RATE_TOLERANCE
    if not (fmt_better or mix_better):
        return {**out, "reasons": [f"R1-mini reads no better than Zero: format and mixing rates within "
                                   f"{R1_MINI_RATE_TOLERANCE:.2f} of Zero's"]}
    better = ([f"format rate up {fmt:.2f}"] if fmt_better else []) + ([f"mixing rate down {-mix:.2f}"] if mix_better else [])
    return {**out, "outcome": "reproduced", "reasons": better + [f"accuracy {acc:+.2f}"]}


# The bilingual corpus (the language-mixing chain's, and r1-mini's at full scale): 2-digit sums whose worked lines
# are in English words or Chinese, English first, each next line switching language with this chance.
BILINGUAL_CODE_SWITCH = 0.3
BILINGUAL_DIGITS = {"digits": 2, "min_digits": 2}
BILINGUAL_LANGUAGE = {"language": "en+zh", "code_switch": BILINGUAL_CODE_SWITCH}

# The full scale (no --quick) fits a CPU: ≤ 15 CPU-minutes a seed. The bilingual corpus on tiny-bpe, so that
# Zero's thinks mix languages and readability has something to show; Zero and R1-mini spend the same RL steps
# (Zero 60; reasoning RL 30 + final RL 30), both at language-mixing's GRPO scale.
R1_MINI_TASK = {**BILINGUAL_DIGITS, **BILINGUAL_LANGUAGE}
R1_MINI_BASE_STEPS, R1_MINI_ZERO_STEPS, R1_MINI_RL_STEPS = 400, 60, 30
_R1_MINI_GRPO = (("grpo.group_size", 8), ("grpo.prompts_per_step", 16), ("sampling.max_new_tokens", 64))
_R1_MINI_RL = _R1_MINI_GRPO + (("grpo.beta", 0.0), ("evaluation.interval", 30), ("evaluation.samples_per_problem", 1),
                               ("checkpoint_interval", 0))
# each data stage samples 4 steps × 64 prompts × 4 = 1,024 completions of 256 problems: at T 0.6 a problem's samples
# are mostly one text, so the SFT data has ~one row a problem, and 16 prompts (64 problems) left the SFT of the base
# over-fitting its few rows (first try: the base's 0.98 fell to 0.53 after the cold-start SFT; R1-mini ended 16
# points below Zero)
R1_MINI_SAMPLING = (("total_steps", 4), ("grpo.prompts_per_step", 64), ("grpo.group_size", 4),
                    ("sampling.max_new_tokens", 64))
R1_MINI_SFT_LR = 3e-4  # the base's last pretraining rate: the SFTs continue it (the recipe's 1e-3 is for a fresh start)
_R1_MINI_SFT = (("supervised.batch_size", 16), ("supervised.learning_rate", R1_MINI_SFT_LR))
_R1_MINI_EVAL = (("evaluation.max_new_tokens", 64),)  # 200 held-out problems × 4 samples at T 0.6, top-p 0.95


def _r1_mini_eval(name: str, model: str, what: str) -> Stage:
    """An evaluate stage: every sample is written as a trace, so the mixing rate counts all 800 thinks (a
    training run's evaluation traces a few problems only)."""
    return Stage(name, f"evaluate {what} (held-out, k samples, every sample a trace)", recipe="evaluate",
                 model=From(model), full_sets=_R1_MINI_EVAL)


R1_MINI = Chain(
    name="r1-mini",
    description="DeepSeek-R1's pipeline in miniature: base → Zero RL → cold-start data from Zero's most readable "
    "correct samples → SFT of the base → reasoning RL (accuracy + format + language) → rejection sampling "
    "(correct, unmixed, untruncated, not repetitive; ~3:1 reasoning to direct answers) → SFT of the base → final "
    "RL → Zero and R1-mini evaluated alike; comparison.json: Zero vs R1-mini (accuracy, format rate, mixing rate, "
    "length).",
    stages=(
        Stage("base", "pretrain the base (full: tiny-bpe on the bilingual corpus; --quick: the tiny preset)",
              build=_base_pretraining,
              # --quick: long enough, and worked often enough, that Zero gets 1-digit sums right with steps
              quick_sets=(("total_steps", 60), ("supervised.worked_fraction", 0.7)),
              # full: language-mixing's bilingual base, every answer worked (so every think has words to mix)
              full_sets=(("model.source", "tiny-bpe"), ("total_steps", R1_MINI_BASE_STEPS),
                         ("checkpoint_interval", 0), ("supervised.worked_fraction", 1.0))),
        Stage("zero", "R1-Zero: GRPO on the base, accuracy + format", recipe="r1-zero", model=From("base"),
              full_sets=_R1_MINI_RL + (("total_steps", R1_MINI_ZERO_STEPS),)),
        Stage("zero-samples", "sample Zero (G per prompt) for the cold-start data", recipe="rejection-sampling",
              model=From("zero"), quick_sets=_MORE_SAMPLES, full_sets=R1_MINI_SAMPLING),
        Stage("cold-start-data", "Zero's most readable correct samples", make="cold-start",
              source=From("zero-samples", "rollouts")),
        Stage("cold-start-sft", "SFT of the base on the cold-start data", recipe="cold-start-sft",
              model=From("base"), dataset=From("cold-start-data", "data"), sets=_NO_EVAL,
              # full: the cold-start finding's 20 × 16 examples, ~one pass over the readable samples
              full_sets=(("total_steps", 20),) + _R1_MINI_SFT),
        Stage("reasoning-rl", "reasoning RL: accuracy + format + language consistency", recipe="r1-zero",
              model=From("cold-start-sft"), sets=(_R1_REWARDS,),
              full_sets=_R1_MINI_RL + (("total_steps", R1_MINI_RL_STEPS),)),
        Stage("rejection-sampling", "sample the reasoning-RL checkpoint", recipe="rejection-sampling",
              model=From("reasoning-rl"), quick_sets=_MORE_SAMPLES, full_sets=R1_MINI_SAMPLING),
        Stage("sft-data", "filtered samples, ~3:1 reasoning to direct answers", make="sft-data",
              source=From("rejection-sampling", "rollouts")),
        Stage("sft", "SFT of the base on the rejection-sampled data", recipe="cold-start-sft",
              model=From("base"), dataset=From("sft-data", "data"), sets=_NO_EVAL + (("total_steps", 300),),
              quick_sets=(("total_steps", 5),),
              full_sets=(("total_steps", 60),) + _R1_MINI_SFT),
        Stage("final-rl", "final RL: accuracy + format + language consistency", recipe="r1-zero",
              model=From("sft"), sets=(_R1_REWARDS,),
              full_sets=_R1_MINI_RL + (("total_steps", R1_MINI_RL_STEPS),)),
        _r1_mini_eval("eval-zero", "zero", "Zero"),
        _r1_mini_eval("eval-r1-mini", "final-rl", "R1-mini (the final RL)"),
    ),
    compare=("eval-zero", "eval-r1-mini"),
    summarise=lambda root, chain: r1_mini_comparison(root, chain),
    finding="R1's pipeline (cold start, reasoning RL with a language-consistency reward, rejection sampling + SFT, "
    "final RL) reasons more readably than R1-Zero — no language mixing, well-formed output — at similar accuracy "
    "(DeepSeek-R1 §2.2.4, §2.3).",
    verdict=r1_mini_verdict,
    # --quick: 1-digit sums (their test split holds 7 problems: 4 held out), where a 60-step base already
    # answers some correctly, so every filter has something to keep
    quick_sets=(("datasets.0.difficulty", {"digits": 1}), ("datasets.0.eval_size", 4)),
    full_sets=(("datasets.0.difficulty", R1_MINI_TASK), ("datasets.0.eval_size", 200)),
)


_aha_base = _recipe_base("aha-mini")  # the long model and every long2short method share it


# long2short compute: the length-penalty RL and the rejection sampling draw the same number of completions
# (steps × prompts × G) and train on the same number of sequences (RL: those samples; SFT: steps × batch)
L2S_STEPS, L2S_PROMPTS, L2S_G = 40, 16, 8  # Kimi samples n = 8 per problem for shortest rejection sampling
L2S_QUICK = (2, 4, 4)
L2S_SFT_BATCH, L2S_QUICK_SFT_BATCH = 32, 8
L2S_BUDGETS, L2S_QUICK_BUDGETS = [8, 16, 32], [8, 16]
# the full scale fits 15 CPU-minutes a seed: 2-digit sums on a 300-step base, 70% worked (distill-mini's teacher,
# which its GRPO lifts to ~0.9+), where aha-mini's 4-digit 1,200-step base alone costs ~12 CPU-minutes
L2S_TASK = {"digits": 2, "min_digits": 2}
L2S_BASE_STEPS, L2S_LONG_STEPS, L2S_EVAL_SIZE = 300, 40, 200
L2S_METHODS = {"long": "eval-long", "length-penalty": "eval-length-rl", "shortest-rejection": "eval-short-sft",
               "merge": "eval-merge"}
L2S_ROUTES = {"long": (), "length-penalty": ("length-rl",), "shortest-rejection": ("long-samples", "short-sft"),
              "merge": ("long-samples", "short-sft", "merge")}


def _l2s_scale(quick: bool) -> tuple[tuple[str, Any], ...]:
    steps, prompts, group = L2S_QUICK if quick else (L2S_STEPS, L2S_PROMPTS, L2S_G)
    return (("total_steps", steps), ("grpo.prompts_per_step", prompts), ("grpo.group_size", group))


def _l2s_eval(quick: bool) -> dict:
    """Every method evaluated alike: greedy, the long model's max_new_tokens, the think budgets."""
    config = RECIPES["evaluate"].build(quick)
    config["evaluation"].update(samples_per_problem=1, temperature=0.0, top_p=1.0,
                                max_new_tokens=48 if quick else 64,
                                think_budgets=L2S_QUICK_BUDGETS if quick else L2S_BUDGETS)
    return config


_L2S_LENGTH_REWARDS = ("rewards", [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1},
                                   {"name": "length", "weight": 0.5}])


def _eval_stage(name: str, model: str) -> Stage:
    return Stage(name, f"evaluate {model} (greedy, think budgets)", build=_l2s_eval, model=From(model))


LONG2SHORT = Chain(
    name="long2short",
    description="Kimi k1.5 long2short (§2.4) in miniature: an aha-mini long model, then three ways to shorten it at "
    "equal compute — (a) RL with the length penalty (§2.3.3) and a smaller max rollout length, (b) shortest "
    "rejection sampling (n = 8, the shortest correct sample per problem) → SFT, (c) merging the long and the short "
    "model's weights — each evaluated alike (greedy, think budgets); comparison.json: token efficiency (pass@1 per "
    "response token) per method, the headline.",
    stages=(
        Stage("base", "pretrain the tiny preset (aha-mini's base)", build=_aha_base,
              sets=(("total_steps", L2S_BASE_STEPS), ("supervised.worked_fraction", 0.7)),
              quick_sets=(("total_steps", 60),)),
        Stage("long", "the long model: aha-mini GRPO (accuracy + format), the length grows", recipe="aha-mini",
              model=From("base"), sets=(("total_steps", L2S_LONG_STEPS),), quick_sets=(("total_steps", 2),)),
        Stage("length-rl", "(a) long2short RL: + the length penalty, max_new_tokens halved", recipe="aha-mini",
              model=From("long"), sets=(_L2S_LENGTH_REWARDS, ("sampling.max_new_tokens", 32)) + _NO_EVAL + _l2s_scale(False),
              quick_sets=(("sampling.max_new_tokens", 24),) + _l2s_scale(True)),
        Stage("long-samples", "(b) sample the long model n = 8 times per problem", recipe="rejection-sampling",
              model=From("long"), sets=(("sampling.max_new_tokens", 64),) + _l2s_scale(False),
              quick_sets=(("sampling.max_new_tokens", 48),) + _l2s_scale(True)),
        Stage("shortest-data", "(b) the shortest correct sample of each problem", make="shortest-correct",
              source=From("long-samples", "rollouts")),
        Stage("short-sft", "(b) SFT of the long model on its shortest correct samples", recipe="cold-start-sft",
              model=From("long"), dataset=From("shortest-data", "data"),
              sets=_NO_EVAL + (("supervised.batch_size", L2S_SFT_BATCH), ("supervised.learning_rate", 3e-4),
                               ("supervised.warmup_steps", 5),
                               ("total_steps", L2S_STEPS * L2S_PROMPTS * L2S_G // L2S_SFT_BATCH)),
              quick_sets=(("supervised.batch_size", L2S_QUICK_SFT_BATCH), ("supervised.warmup_steps", 1),
                          ("total_steps", L2S_QUICK[0] * L2S_QUICK[1] * L2S_QUICK[2] // L2S_QUICK_SFT_BATCH))),
        Stage("merge", "(c) average the long and the short model's weights", merge=(From("long"), From("short-sft"))),
        _eval_stage("eval-long", "long"),
        _eval_stage("eval-length-rl", "length-rl"),
        _eval_stage("eval-short-sft", "short-sft"),
        _eval_stage("eval-merge", "merge"),
    ),
    summarise=lambda root, chain: long2short_comparison(root, chain),
    finding="A long-CoT model's answers can be made shorter — by RL with a length penalty, shortest rejection "
    "sampling + SFT, or merging the long and the short model — raising token efficiency (accuracy per response "
    "token) at little cost in accuracy (Kimi k1.5 §2.4).",
    verdict=lambda metrics: long2short_verdict(metrics),
    quick_sets=(("datasets.0.difficulty", {"digits": 1}), ("datasets.0.eval_size", 4)),
    full_sets=(("datasets.0.difficulty", L2S_TASK), ("datasets.0.eval_size", L2S_EVAL_SIZE)),
)

CHAINS: dict[str, Chain] = {R1_MINI.name: R1_MINI, LONG2SHORT.name: LONG2SHORT}


def _data_builders() -> dict[str, Callable[..., dict]]:
    from r1model.train import filters

    def prm(source, out):  # torch: imported when the stage runs
        from r1model.train.prm import build_prm

        return build_prm(source, out)

    return {"cold-start": filters.build_cold_start, "sft-data": filters.build_sft_data,
            "shortest-correct": filters.build_shortest_correct, "accepted": filters.build_accepted, "prm": prm}


def get_chain(name: str) -> Chain:
    from r1model.train.findings import CHAINS as every_chain  # the findings' modules import this one

    try:
        return every_chain[name]
    except KeyError:
        raise KeyError(f"unknown chain {name!r}; known: {', '.join(sorted(every_chain))}") from None


def check_chain(chain: Chain) -> None:
    """ChainError when a stage is not a recipe/builder/data stage, or takes an input from a stage that does
    not come before it."""
    seen: list[str] = []
    for stage in chain.stages:
        if (stage.make is None and stage.merge is None and stage.init is None
                and (stage.recipe is None) == (stage.build is None)):
            raise ChainError(f"chain {chain.name}: stage {stage.name} needs exactly one of recipe / build / make / "
                             "merge / init")
        if stage.recipe is not None and stage.recipe not in RECIPES:
            raise ChainError(f"chain {chain.name}: stage {stage.name}: unknown recipe {stage.recipe!r}")
        if stage.make is not None and stage.source is None:
            raise ChainError(f"chain {chain.name}: data stage {stage.name} needs a source")
        for name, origin in stage.inputs().items():
            steps = [origin.step, origin.quick_step]
            if any(s is not None for s in steps) and (origin.artifact != "checkpoint" or origin.step is None
                                                      or any(s is not None and s < 0 for s in steps)):
                raise ChainError(f"chain {chain.name}: stage {stage.name} takes {name} at step {origin.step} "
                                 f"(quick {origin.quick_step}): a step needs a checkpoint artifact and steps >= 0")
            if origin.stage not in seen:
                raise ChainError(f"chain {chain.name}: stage {stage.name} takes {name} from {origin.stage!r}, "
                                 "which is not an earlier stage")
        if stage.name in seen:
            raise ChainError(f"chain {chain.name}: two stages named {stage.name}")
        seen.append(stage.name)


def split_sets(sets: Iterable[tuple[str, Any]], chain: Chain) -> dict[str | None, list[tuple[str, Any]]]:
    """--set items by stage: `STAGE:KEY.PATH` for one stage, `KEY.PATH` for every run stage (key None)."""
    names = {stage.name for stage in chain.stages}
    out: dict[str | None, list[tuple[str, Any]]] = {}
    for key, value in sets:
        stage, sep, path = key.partition(":")
        if not sep:
            stage, path = None, key
        elif stage not in names:
            raise ChainError(f"--set {key}: no stage {stage!r} in chain {chain.name} ({', '.join(sorted(names))})")
        out.setdefault(stage, []).append((path, value))
    return out


def stage_config(chain: Chain, stage: Stage, *, quick: bool = False, seed: int | None = None,
                 sets: Iterable[tuple[str, Any]] = (), inputs: dict[str, str] | None = None) -> RunConfig:
    """The RunConfig of a run stage: the recipe (or builder) at its scale, the chain's quick (or full) sets,
    the stage's sets (then its quick or full sets), the user's sets (for every stage, then those addressed `STAGE:`), then
    the inputs from earlier stages (model.source, datasets: paths) — last, so a set never points a stage
    elsewhere. ConfigError naming the stage."""
    data = copy.deepcopy(RECIPES[stage.recipe].build(quick) if stage.recipe else stage.build(quick))
    data["name"] = f"{chain.name}:{stage.name}"
    if seed is not None:
        data["seed"] = seed
    by_stage = split_sets(sets, chain)
    source = f"chain {chain.name} stage {stage.name}"
    changes = (list(chain.quick_sets if quick else chain.full_sets) + list(stage.sets)
               + list(stage.quick_sets if quick else stage.full_sets) + by_stage.get(None, []) + by_stage.get(stage.name, []))
    for key, value in changes:
        try:
            set_path(data, key, value)
        except ValueError as exc:
            raise ConfigError([{"field": key, "loc": tuple(key.split(".")), "msg": str(exc)}], source) from None
    inputs = inputs or {}
    if "model.source" in inputs:
        use_model(data, inputs["model.source"])
    if "datasets" in inputs:
        use_dataset(data, inputs["datasets"])
    for key, _origin in stage.paths:
        if key in inputs:
            try:
                set_path(data, key, inputs[key])
            except ValueError as exc:
                raise ConfigError([{"field": key, "loc": tuple(key.split(".")), "msg": str(exc)}], source) from None
    return validate_run_config(data, source=source)


def chain_plan(chain: Chain) -> dict:
    """The chain as JSON (for `recipe show` and the lab): its stages, what each runs and where its inputs
    come from."""
    stages = []
    for dirname, stage in zip(chain.stage_dirs(), chain.stages):
        entry = {"name": stage.name, "dir": f"stages/{dirname}", "kind": stage.kind, "description": stage.description}
        if stage.recipe:
            entry["recipe"] = stage.recipe
        if stage.make:
            entry["make"] = stage.make
        if stage.merge:
            entry["merge_weight"] = stage.merge_weight
        entry["inputs"] = {name: {"stage": o.stage, "artifact": o.artifact,
                                  **({"step": o.step, "quick_step": o.quick_step} if o.step is not None else {})}
                           for name, o in stage.inputs().items()}
        stages.append(entry)
    return {"chain": chain.name, "description": chain.description, "stages": stages,
            "compare": list(chain.compare) if chain.compare else None, "summarise": chain.summarise is not None}


# ---------------------------------------------------------------------------------------------- running

def _checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """The complete checkpoints/step-N, by step (same rule as checkpoint.list_checkpoints, without torch)."""
    found = []
    if folder.is_dir():
        for child in folder.iterdir():
            match = re.fullmatch(r"step-(\d+)", child.name)
            if match and is_model_folder(child) and (child / "trainer_state.json").is_file():
                found.append((int(match.group(1)), child))
    return sorted(found)


def _latest_checkpoint(folder: Path) -> Path | None:
    """The last complete checkpoints/step-N."""
    found = _checkpoints(folder)
    return found[-1][1] if found else None


def _artifacts(stage: Stage, stage_dir: Path) -> dict[str, str]:
    if stage.kind == "data":
        data = stage_dir / DATA_ARTIFACT
        out = {"data": str(data)} if data.is_file() else {}
        found = _checkpoints(stage_dir / "checkpoints")  # a data stage that trains a model (prm)
        return {**out, "checkpoint": str(found[-1][1])} if found and out else out
    out = {}
    found = _checkpoints(stage_dir / "checkpoints")
    if found:
        out["checkpoint"] = str(found[-1][1])
    out.update({f"checkpoint@{step}": str(path) for step, path in found})
    for name, filename in RUN_ARTIFACTS.items():
        if filename and (stage_dir / filename).is_file():
            out[name] = str(stage_dir / filename)
    return out


def _rel(path: str | Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _last_status(stage_dir: Path) -> dict | None:
    from r1model.events import read_events

    if not (stage_dir / "events.jsonl").is_file():
        return None
    statuses = read_events(stage_dir, types={"status"})
    return statuses[-1] if statuses else None


class _State:
    """chain.json, written atomically after every change."""

    def __init__(self, chain: Chain, root: Path, options: dict):
        self.root, self.path = root, root / CHAIN_JSON
        if self.path.is_file():
            self.data = json.loads(self.path.read_text())
            if self.data.get("chain") != chain.name:
                raise ChainError(f"{self.path} is chain {self.data.get('chain')!r}, not {chain.name!r}")
            if self.data.get("options") != options:
                raise ChainError(f"{self.path} was started with {self.data.get('options')}; resume it with the same "
                                 f"options (got {options}) or use another --run-dir")
            self._add_new_stages(chain)
        else:
            plan = chain_plan(chain)
            self.data = {"chain": chain.name, "description": chain.description, "options": options,
                         "status": "pending", "reason": None, "stages": plan["stages"], "lineage": [],
                         "compare": plan["compare"]}
            for entry in self.data["stages"]:
                entry.update(status="pending", reason=None, artifacts={}, attempts=0)
            self.save()

    def _add_new_stages(self, chain: Chain) -> None:
        """A chain directory from before the chain gained stages at its end (r1-mini's evaluate stages) resumes
        with them appended, pending; stages that differ otherwise are refused (ChainError)."""
        plan = chain_plan(chain)
        stored = [entry.get("name") for entry in self.data.get("stages", [])]
        names = [entry["name"] for entry in plan["stages"]]
        if stored == names:
            return
        if names[:len(stored)] != stored:
            raise ChainError(f"{self.path} has stages {', '.join(map(str, stored))}; chain {chain.name} now has "
                             f"{', '.join(names)}: use another --run-dir")
        for entry in plan["stages"][len(stored):]:
            self.data["stages"].append({**entry, "status": "pending", "reason": None, "artifacts": {}, "attempts": 0})
        self.data["compare"] = plan["compare"]
        if self.data.get("status") == "completed":
            self.data["status"] = "pending"
        self.save()

    def stage(self, index: int) -> dict:
        return self.data["stages"][index]

    def save(self) -> None:
        self.data["updated"] = time.time()
        tmp = self.path.with_name(CHAIN_JSON + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.path)


def run_chain(chain: Chain | str, run_dir: str | os.PathLike, *, quick: bool = False, seed: int | None = None,
              sets: Iterable[tuple[str, Any]] = (), progress_stream=None, install_signals: bool = True) -> int:
    """Run (or resume) the chain in run_dir: 0 completed (or stopped by a signal, resumable), 1 a stage failed
    (chain.json names it and why). ChainError before any work for a bad chain or mismatched options."""
    from r1model.train.runner import EXIT_FAILED, EXIT_OK

    chain = get_chain(chain) if isinstance(chain, str) else chain
    check_chain(chain)
    sets = [(key, value) for key, value in sets]
    split_sets(sets, chain)  # a STAGE: prefix naming no stage fails here
    root = Path(run_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    stream = progress_stream if progress_stream is not None else sys.stderr
    for stage in chain.stages:  # a model stage's spec (a student the chain cannot use) is refused before any work
        if stage.init is not None:
            model_spec(chain, stage, quick=quick, seed=seed, sets=sets, check=True)
    own_builders = dict(chain.builders)
    for stage in chain.stages:  # a chain's own builder refuses bad settings before any work
        builder = own_builders.get(stage.make)
        if builder is not None and builder.check is not None:
            try:
                builder.check(quick, builder_settings(chain, stage, quick, sets))
            except ValueError as exc:
                raise ChainError(f"chain {chain.name} stage {stage.name}: {exc}") from None
    state = _State(chain, root, {"quick": quick, "seed": seed, "sets": [[k, v] for k, v in sets]})
    state.data.update(status="running", reason=None)
    state.save()
    produced: dict[str, dict[str, str]] = {}
    ran: set[str] = set()  # stages run (not reused) in this invocation
    code = code_commit()
    lineage: list[dict] = []
    for index, (dirname, stage) in enumerate(zip(chain.stage_dirs(), chain.stages)):
        entry, stage_dir = state.stage(index), root / "stages" / dirname
        label = f"stage {index + 1}/{len(chain.stages)} {stage.name}"
        inputs = {}
        entry_inputs = {}
        for name, origin in stage.inputs().items():
            key = origin.key(quick)
            path = produced.get(origin.stage, {}).get(key)
            if path is None:  # the earlier stage completed without it: this stage cannot start
                reason = f"stage {origin.stage} produced no {key} for {name}"
                return _fail(state, entry, label, reason, stream)
            inputs[name] = path
            entry_inputs[name] = {"stage": origin.stage, "artifact": key, "path": _rel(path, root)}
            lineage.append({"from": origin.stage, "artifact": key, "to": stage.name, "as": name,
                            "path": _rel(path, root)})
        entry["inputs"] = entry_inputs
        state.data["lineage"] = lineage
        artifacts = _artifacts(stage, stage_dir)
        needed = {o.key(quick) for later in chain.stages for o in later.inputs().values() if o.stage == stage.name}
        fresh_inputs = any(origin.stage in ran for origin in stage.inputs().values())  # rebuilt upstream: stale
        if entry["status"] == "completed" and artifacts and needed <= set(artifacts) and not fresh_inputs:
            print(f"[chain {chain.name}] {label}: completed earlier, reused", file=stream)
            produced[stage.name] = artifacts
            continue
        resumed = entry["attempts"] > 0
        ran.add(stage.name)
        entry.update(status="running", reason=None, attempts=entry["attempts"] + 1, started=time.time(), code=code)
        state.save()
        print(f"[chain {chain.name}] {label}: {'resuming' if resumed else 'starting'} in {_rel(stage_dir, root)}",
              file=stream)
        try:
            if stage.kind == "data":
                stage_dir.mkdir(parents=True, exist_ok=True)
                if stage.make in own_builders:
                    summary = own_builders[stage.make].run(inputs["source"], stage_dir / DATA_ARTIFACT, quick=quick,
                                                           seed=seed, settings=builder_settings(chain, stage, quick, sets))
                else:
                    summary = _data_builders()[stage.make](inputs["source"], stage_dir / DATA_ARTIFACT)
                (stage_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
                entry["summary"] = summary
                outcome, reason = "completed", None
            elif stage.kind == "merge":
                _merge_stage(stage, stage_dir, inputs)
                outcome, reason = "completed", None
            elif stage.kind == "model":
                entry["summary"] = _model_stage(chain, stage, stage_dir, quick, seed, sets)
                outcome, reason = "completed", None
            else:
                outcome, reason = _run_stage(chain, stage, stage_dir, quick, seed, sets, inputs, stream,
                                             install_signals)
        except (ConfigError, ValueError, OSError) as exc:
            from r1model.train.runner import describe_error

            outcome, reason = "failed", describe_error(exc)
        entry["finished"] = time.time()
        if outcome == "failed":
            return _fail(state, entry, label, reason, stream)
        if outcome == "stopped":
            entry.update(status="stopped", reason=reason)
            state.data.update(status="stopped", reason=f"{label} stopped: {reason}")
            state.save()
            print(f"[chain {chain.name}] {label} stopped; run the same command to resume", file=stream)
            return EXIT_OK
        artifacts = _artifacts(stage, stage_dir)
        entry.update(status="completed", reason=None, artifacts={k: _rel(v, root) for k, v in artifacts.items()})
        produced[stage.name] = artifacts
        state.save()
    state.data["code"] = code  # the code that wrote the comparison
    if chain.summarise is not None:
        comparison, line = chain.summarise(root, chain)
        (root / COMPARISON_JSON).write_text(json.dumps(comparison, indent=2) + "\n")
        state.data["comparison"] = COMPARISON_JSON
        print(line)
    elif chain.compare:
        baseline, final = chain.compare
        names = [stage.name for stage in chain.stages]
        dirs = dict(zip(names, chain.stage_dirs()))
        comparison = compare_runs(root / "stages" / dirs[baseline], root / "stages" / dirs[final],
                                  labels=(baseline, final))
        (root / COMPARISON_JSON).write_text(json.dumps(comparison, indent=2) + "\n")
        state.data["comparison"] = COMPARISON_JSON
        diff = comparison["difference"]["accuracy"]
        print(f"r1_mini_minus_zero_accuracy={'nan' if diff is None else f'{diff:.4f}'}"
              if chain.name == "r1-mini" else f"{final}_minus_{baseline}_accuracy={diff}")
    state.data.update(status="completed", reason=None)
    state.save()
    return EXIT_OK


COMMIT = re.compile(r"[0-9a-f]{7,64}")  # a git commit id as `git rev-parse` prints it (or abbreviated)


def git_head(path: str | Path) -> str:
    """`git rev-parse HEAD` of the checkout holding `path`; "unknown" outside one (or without git)."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and COMMIT.fullmatch(commit) else "unknown"


def code_commit() -> dict:
    """The code a stage runs: {"commit": git_head of the checkout holding r1model, "dirty": whether tracked files
    differ from it}. chain.json keeps it per stage, and the lab shows the commit a finding was measured at from it
    (an import later, at another commit, does not change it)."""
    import subprocess

    where = Path(__file__).resolve().parent
    commit = git_head(where)
    if commit == "unknown":
        return {"commit": commit, "dirty": False}
    try:
        status = subprocess.run(["git", "--no-optional-locks", "-C", str(where), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return {"commit": commit, "dirty": False}
    return {"commit": commit, "dirty": status.returncode == 0 and bool(status.stdout.strip())}


def _fail(state: _State, entry: dict, label: str, reason: str, stream) -> int:
    entry.update(status="failed", reason=reason)
    state.data.update(status="failed", reason=f"{label} failed: {reason}")
    state.save()
    print(f"[chain {state.data['chain']}] {label} failed: {reason}", file=stream)
    return 1


def _merge_stage(stage: Stage, stage_dir: Path, inputs: dict[str, str]) -> None:
    """checkpoints/step-0 of the stage: the two input checkpoints averaged (r1model.train.merge), with a
    trainer_state.json so that it counts as the stage's checkpoint."""
    import shutil

    from r1model.train.merge import merge_checkpoints

    out = stage_dir / "checkpoints" / "step-0"
    if out.exists():  # a re-run: its inputs were rebuilt
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    merge_checkpoints(inputs["merge.a"], inputs["merge.b"], out, stage.merge_weight)
    (out / "trainer_state.json").write_text(json.dumps({"step": 0, "phase": "merge", "weight": stage.merge_weight,
                                                        "a": inputs["merge.a"], "b": inputs["merge.b"]}) + "\n")


def model_spec(chain: Chain, stage: Stage, *, quick: bool = False, seed: int | None = None,
               sets: Iterable[tuple[str, Any]] = (), check: bool = False) -> dict:
    """A model stage's spec: its init(quick), the chain's seed (when given), the sets addressed `STAGE:` (sets
    for every stage are for run configs and do not apply). check: ChainError naming the field when the spec (or
    the folder it names) cannot be used (r1model.train.init_model.check_spec)."""
    spec = copy.deepcopy(stage.init(quick))
    if seed is not None:
        spec["seed"] = seed
    for key, value in split_sets(sets, chain).get(stage.name, []):
        try:
            set_path(spec, key, value)
        except ValueError as exc:
            raise ChainError(f"chain {chain.name} stage {stage.name}: {exc}") from None
    if check:
        from r1model.train.init_model import check_spec

        try:
            spec = check_spec(spec, f"chain {chain.name} stage {stage.name}")
        except ValueError as exc:
            raise ChainError(str(exc)) from None
    return spec


def _model_stage(chain, stage, stage_dir, quick, seed, sets) -> dict:
    """checkpoints/step-0 of a model stage (r1model.train.init_model.create_model), with a trainer_state.json so
    that it counts as the stage's checkpoint; returns the model's summary."""
    from r1model.train.init_model import create_model

    spec = model_spec(chain, stage, quick=quick, seed=seed, sets=sets)
    out = stage_dir / "checkpoints" / "step-0"
    summary = create_model(spec, out, f"chain {chain.name} stage {stage.name}")
    (out / "trainer_state.json").write_text(json.dumps({"step": 0, "phase": "model", **summary}) + "\n")
    (stage_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _run_stage(chain, stage, stage_dir, quick, seed, sets, inputs, stream, install_signals) -> tuple[str, str | None]:
    """One run stage through the normal runner (which resumes the stage's directory from its checkpoints)."""
    from r1model.train.runner import run

    config = stage_config(chain, stage, quick=quick, seed=seed, sets=sets, inputs=inputs)
    code = run(config, stage_dir, progress_stream=stream, install_signals=install_signals)
    status = _last_status(stage_dir) or {}
    phase = status.get("phase")
    if code == 0 and phase == "done":
        return "completed", None
    if code == 0 and phase == "stopped":
        return "stopped", status.get("message") or "stopped by signal"
    return "failed", status.get("message") or f"the run exited {code}"


# ---------------------------------------------------------------------------------------------- comparison

def run_summary(run_dir: str | os.PathLike, benchmark: str = "heldout") -> dict:
    """The run's final evaluation: pass@1 (accuracy), format_rate, mean_length, worked_ratio at the last eval
    step, and the mixing rate: the share of that step's evaluation traces with a think part whose
    language-consistency reward is below 1 (evaluation writes traces for a few problems only: `mixing_n`)."""
    from r1model.events import read_events
    from r1model.rewards.shaping import language_reward

    events = read_events(run_dir, types={"eval", "trace"})
    evals = [e for e in events if e["type"] == "eval" and e["benchmark"] == benchmark]
    if not evals:
        return {"step": None, "accuracy": None, "format_rate": None, "mean_length": None, "worked_ratio": None,
                "mixing_rate": None, "mixing_n": 0, "n": 0}
    step = max(e["step"] for e in evals)
    final = {e["metric"]: e for e in evals if e["step"] == step}
    thinks = [e["completion"] for e in events if e["type"] == "trace" and e.get("source") == "eval"
              and e["step"] == step and e.get("think") is not None]
    mixed = sum(result.value < 1.0 for result in language_reward(thinks, [None] * len(thinks)))

    def value(name):
        return final[name]["value"] if name in final else None

    return {"step": step, "accuracy": value("pass@1"), "format_rate": value("format_rate"),
            "mean_length": value("mean_length"), "worked_ratio": value("worked_ratio"),
            "mixing_rate": mixed / len(thinks) if thinks else None, "mixing_n": len(thinks),
            "n": final["pass@1"]["n"] if "pass@1" in final else 0}


def compare_runs(baseline_dir: Path, final_dir: Path, labels: tuple[str, str] = ("zero", "final-rl"),
                 model_dir: Path | None = None) -> dict:
    """comparison.json: the two runs' final evaluations side by side and final − baseline per metric; the note
    names the tokenizer of model_dir's checkpoints (default final_dir's: an evaluate run has none of its own)."""
    baseline, final = run_summary(baseline_dir), run_summary(final_dir)
    difference = {}
    for key in ("accuracy", "format_rate", "mixing_rate", "mean_length", "worked_ratio"):
        a, b = baseline.get(key), final.get(key)
        difference[key] = None if a is None or b is None else b - a
    tokenizer = _tokenizer_of(model_dir or final_dir)
    note = ("mixing rate: language-consistency reward of the evaluation traces' thinks; the model's tokenizer is "
            f"{tokenizer!r}")
    if tokenizer == "char":
        note += ", which cannot write non-ASCII text, so the mixing rate is 0 by construction (use a *-bpe preset)"
    return {"baseline": {"stage": labels[0], **baseline}, "final": {"stage": labels[1], **final},
            "difference": difference, "note": note}


def r1_mini_comparison(root: Path, chain: Chain) -> tuple[dict, str]:
    """comparison.json of r1-mini: compare_runs (Zero vs final RL: baseline, final, difference, note) plus the
    general keys (module docstring): flat metrics "zero.X", "r1-mini.X", "difference.X", the verdict
    (r1_mini_verdict), a table, charts (heldout pass@1 at each run stage's last evaluation; Zero vs R1-mini on
    the rates) and the headline R1-mini − Zero accuracy."""
    baseline, final = chain.compare or ("zero", "final-rl")
    dirs = dict(zip((stage.name for stage in chain.stages), chain.stage_dirs()))
    final_model = next((s.model.stage for s in chain.stages if s.name == final and s.model), final)
    comparison = compare_runs(root / "stages" / dirs[baseline], root / "stages" / dirs[final],
                              labels=(baseline, final), model_dir=root / "stages" / dirs[final_model])
    comparison.update(r1_mini_general(comparison, chain))
    stages = [s.name for s in chain.stages if s.kind == "run"]
    accuracy = [_eval_values(root / "stages" / dirs[name], "heldout")["accuracy"] for name in stages]
    if any(value is not None for value in accuracy):
        comparison["charts"].insert(0, {"title": "heldout accuracy at each stage", "x_label": "stage",
                                        "y_label": "pass@1", "series": [{"name": "pass@1", "x": stages, "y": accuracy}]})
    diff = comparison["difference"]["accuracy"]
    return comparison, f"r1_mini_minus_zero_accuracy={'nan' if diff is None else f'{diff:.4f}'}"


def r1_mini_general(comparison: dict, chain: Chain | None = None) -> dict:
    """The general keys of an r1-mini comparison from its baseline / final / difference (also what the lab
    reads from an r1-mini comparison.json stored before they existed)."""
    chain = chain or R1_MINI
    sides = {label: comparison.get(key) or {} for label, key in R1_MINI_SIDES}
    metrics = {f"{label}.{m}": sides[label].get(m) for label, _ in R1_MINI_SIDES for m in R1_MINI_METRICS}
    rates = ("accuracy", "format_rate", "mixing_rate")
    return {
        "finding": chain.finding, "metrics": metrics, "verdict": r1_mini_verdict(metrics),
        "table": {"columns": ["metric", "Zero", "R1-mini", "R1-mini − Zero"],
                  "rows": [[m, sides["zero"].get(m), sides["r1-mini"].get(m), sides["difference"].get(m)]
                           for m in R1_MINI_METRICS]},
        "charts": [{"title": "Zero vs R1-mini", "x_label": "metric", "y_label": "rate",
                    "series": [{"name": name, "x": list(rates), "y": [sides[label].get(m) for m in rates]}
                               for label, name in (("zero", "Zero"), ("r1-mini", "R1-mini"))]}],
        "headline": {"name": "r1_mini_minus_zero_accuracy", "value": sides["difference"].get("accuracy")},
    }


def _tokenizer_of(run_dir: Path) -> str:
    checkpoint = _latest_checkpoint(run_dir / "checkpoints")
    if checkpoint is not None:
        try:
            tokenizer = json.loads((checkpoint / "tokenizer.json").read_text())
            model = tokenizer.get("model", {}) if isinstance(tokenizer, dict) else {}
            return {"BPE": "bpe", "WordLevel": "char"}.get(model.get("type"), str(model.get("type")))
        except (OSError, ValueError):
            pass
    return "unknown"


def _stage_compute(stage_dir: Path) -> dict:
    """What a stage cost, from its config.json: completions sampled and sequences trained on."""
    path = stage_dir / "config.json"
    if not path.is_file():
        return {"sampled_completions": 0, "trained_sequences": 0}
    config = json.loads(path.read_text())
    steps, kind = config.get("total_steps", 0), config.get("kind")
    grpo, supervised = config.get("grpo", {}), config.get("supervised", {})
    sampled = steps * grpo.get("prompts_per_step", 0) * grpo.get("group_size", 0) if kind in ("grpo", "rejection_sampling", "rollout") else 0
    trained = sampled if kind == "grpo" else steps * supervised.get("batch_size", 0) if kind == "sft" else 0
    return {"sampled_completions": sampled, "trained_sequences": trained}


def _eval_values(run_dir: Path, benchmark: str) -> dict:
    """The last evaluation of `benchmark` in a run: accuracy (pass@1), mean_length (response tokens),
    token_efficiency (pass@1 / mean_length), format_rate, truncated_ratio, n."""
    from r1model.events import read_events

    evals = [e for e in read_events(run_dir, types={"eval"}) if e["benchmark"] == benchmark]
    if not evals:
        return {"accuracy": None, "mean_length": None, "token_efficiency": None, "format_rate": None,
                "truncated_ratio": None, "n": 0}
    step = max(e["step"] for e in evals)
    final = {e["metric"]: e for e in evals if e["step"] == step}

    def value(name):
        return final[name]["value"] if name in final else None

    return {"accuracy": value("pass@1"), "mean_length": value("mean_length"),
            "token_efficiency": value("token_efficiency"), "format_rate": value("format_rate"),
            "truncated_ratio": value("truncated_ratio"), "n": final["pass@1"]["n"] if "pass@1" in final else 0}


def long2short_comparison(root: Path, chain: Chain, benchmark: str = "heldout") -> tuple[dict, str]:
    """comparison.json of long2short: per method (the long model and the three shortening methods) its evaluation
    (accuracy, mean response tokens, token efficiency = accuracy per response token, Kimi k1.5's headline), the
    accuracy-vs-think-budget curve and the compute its route beyond the long model took; `best` by token
    efficiency. `baseline` / `final` / `difference` (long vs best) have the shape of r1-mini's."""
    dirs = dict(zip((stage.name for stage in chain.stages), chain.stage_dirs()))
    methods = {}
    for method, eval_stage in L2S_METHODS.items():
        run_dir = root / "stages" / dirs[eval_stage]
        config_path = run_dir / "config.json"
        budgets = json.loads(config_path.read_text())["evaluation"].get("think_budgets", []) if config_path.is_file() else []
        compute = {"sampled_completions": 0, "trained_sequences": 0}
        for stage in L2S_ROUTES[method]:
            for key, value in _stage_compute(root / "stages" / dirs[stage]).items():
                compute[key] += value
        methods[method] = {"eval_stage": eval_stage, **_eval_values(run_dir, benchmark),
                           "think_budgets": {str(b): _eval_values(run_dir, f"{benchmark}@think<={b}") for b in budgets},
                           "compute": compute}
    scored = {m: v["token_efficiency"] for m, v in methods.items() if v["token_efficiency"] is not None}
    best = max(scored, key=lambda m: (scored[m], m != "long")) if scored else None
    baseline, final = methods["long"], methods[best] if best else {}
    difference = {key: None if baseline.get(key) is None or final.get(key) is None else final[key] - baseline[key]
                  for key in ("accuracy", "format_rate", "mean_length", "token_efficiency")}
    comparison = {
        "benchmark": benchmark, "methods": methods, "best": best,
        "baseline": {"stage": "long", **{k: v for k, v in baseline.items() if k != "think_budgets"}},
        "final": {"stage": best, **{k: v for k, v in final.items() if k != "think_budgets"}},
        "difference": difference,
        "note": "token_efficiency = pass@1 / mean response tokens (Kimi k1.5 §2.4 reports long2short this way); "
                "every method evaluated greedily with the long model's max_new_tokens. Equal compute: the length-"
                "penalty RL and the rejection sampling draw the same completions and train on the same number of "
                "sequences; merging adds no training to the short model it takes.",
    }
    comparison.update(long2short_general(comparison, chain))
    value = scored.get(best) if best else None
    return comparison, f"long2short_best_token_efficiency={'nan' if value is None else f'{value:.6f}'}"


L2S_METRICS = ("accuracy", "mean_length", "token_efficiency")
L2S_TOLERANCE = 0.05  # "at little accuracy cost": at most 5 points of pass@1 below the long model
L2S_SHORTER = 0.05  # "shorter": at least 5% fewer mean response tokens than the long model, when both are known
L2S_RULE = ("Reproduced when a shortening method (length-penalty RL, shortest rejection sampling + SFT, merging) "
            "has higher token efficiency (pass@1 per response token) than the long model at accuracy at most "
            f"{L2S_TOLERANCE:.2f} below the long model's and answers at least {L2S_SHORTER:.0%} shorter (an "
            "efficiency raised by accuracy alone is no shortening); a long model that solves nothing, or methods "
            "that all score the same as it, is inconclusive.")


def long2short_verdict(metrics: dict) -> dict:
    """Kimi k1.5 §2.4's claim on flat metrics ("METHOD.accuracy", "METHOD.token_efficiency" per method of
    L2S_METHODS; one seed's or the seeds' means), by L2S_RULE."""
    out = {"outcome": "inconclusive", "reasons": [], "rule": L2S_RULE}
    long_acc, long_eff = metrics.get("long.accuracy"), metrics.get("long.token_efficiency")
    long_length = metrics.get("long.mean_length")
    if long_acc is None or long_eff is None:
        return {**out, "reasons": ["the long model has no evaluation"]}
    if long_acc <= 0:
        return {**out, "reasons": ["the long model solves none of the held-out problems: nothing to shorten"]}
    shorter, failed, same = [], [], 0
    for method in L2S_METHODS:
        if method == "long":
            continue
        acc, eff = metrics.get(f"{method}.accuracy"), metrics.get(f"{method}.token_efficiency")
        if acc is None or eff is None:
            failed.append(f"{method}: not evaluated")
            continue
        same += acc == long_acc and eff == long_eff
        if eff <= long_eff:
            failed.append(f"{method}: token efficiency {eff:.4f} not above the long model's {long_eff:.4f}")
        elif acc < long_acc - L2S_TOLERANCE:
            failed.append(f"{method}: accuracy {acc:.2f} is {long_acc - acc:.2f} below the long model's")
        elif (length := metrics.get(f"{method}.mean_length")) is not None and long_length is not None \
                and length > long_length * (1 - L2S_SHORTER):
            failed.append(f"{method}: mean length {length:.1f} tokens, not {L2S_SHORTER:.0%} below the long model's "
                          f"{long_length:.1f} (its efficiency rose with accuracy alone)")
        else:
            shorter.append(f"{method}: token efficiency {eff:.4f} vs {long_eff:.4f} at accuracy {acc:.2f} "
                           f"(long {long_acc:.2f})")
    if shorter:
        return {**out, "outcome": "reproduced", "reasons": shorter}
    if same == len(L2S_METHODS) - 1:
        return {**out, "reasons": ["every method scores exactly as the long model"]}
    if len(failed) == sum(r.endswith("not evaluated") for r in failed):
        return {**out, "reasons": failed}
    return {**out, "outcome": "not reproduced", "reasons": failed}


def long2short_general(comparison: dict, chain: Chain | None = None) -> dict:
    """The general keys of a long2short comparison from its `methods` (also what the lab reads from a
    long2short comparison.json stored before they existed)."""
    chain = chain or LONG2SHORT
    methods = comparison.get("methods") or {}
    metrics = {f"{method}.{key}": (methods.get(method) or {}).get(key) for method in L2S_METHODS for key in L2S_METRICS}
    rows = []
    for method in L2S_METHODS:
        entry = methods.get(method) or {}
        compute = entry.get("compute") or {}
        rows.append([method, entry.get("accuracy"), entry.get("mean_length"), entry.get("token_efficiency"),
                     compute.get("sampled_completions"), compute.get("trained_sequences")])
    charts = []
    for key, title, label in (("accuracy", "accuracy vs think budget", "pass@1"),
                              ("mean_length", "mean length vs think budget", "response tokens")):
        series = []
        for method in L2S_METHODS:
            budgets = (methods.get(method) or {}).get("think_budgets") or {}
            xs = sorted(budgets, key=lambda b: int(b) if str(b).isdigit() else 0)
            if xs:
                series.append({"name": method, "x": [int(b) for b in xs], "y": [budgets[b].get(key) for b in xs]})
        if series:
            charts.append({"title": title, "x_label": "think budget (tokens)", "y_label": label, "series": series})
    best = comparison.get("best")
    return {"finding": chain.finding, "metrics": metrics, "verdict": long2short_verdict(metrics),
            "table": {"columns": ["method", "accuracy", "mean length", "token efficiency", "sampled completions",
                                  "trained sequences"], "rows": rows},
            "charts": charts,
            "headline": {"name": "long2short_best_token_efficiency",
                         "value": (methods.get(best) or {}).get("token_efficiency") if best else None}}
