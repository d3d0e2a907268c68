"""Named recipes: ready RunConfigs for the experiments the lab ships (no torch; the lab lists them).

    from r1model.train.recipes import RECIPES, recipe_config
    cfg = recipe_config("aha-mini", quick=True, seed=1)   # a RunConfig
    cfg = recipe_config("evaluate", model="runs/aha/checkpoints/step-80", require_inputs=True)

The pipeline of the R1 report in miniature: `r1-zero` (or `aha-mini`) → `rejection-sampling` from its
checkpoint → `distill` (or `cold-start-sft`) on the accepted samples → `evaluate`. A recipe that needs
something it cannot guess (a model checkpoint, a dataset file) lists it in `needs`; its stored config
holds a placeholder (the `tiny` preset, a built-in task), and `missing_inputs` says which needs the
placeholder still fills.

Report values are used where they do not depend on the model's size (G, β, ε, temperatures, reference
refresh, rewards); sizes that do (learning rate, lengths, steps) are set for the tiny model and the
report's value is named in the description.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from r1model.model.config import PRESETS, is_model_folder, parse_hub_id
from r1model.train.config import ConfigError, RunConfig, validate_run_config


@dataclass(frozen=True)
class Need:
    """An input a recipe cannot guess: the config field, what it must be, the CLI option that sets it."""

    field: str  # "model.source" (a checkpoint folder) or "datasets" (at least one dataset file)
    what: str
    option: str

    def message(self, recipe: str, *, cli: bool = False) -> str:
        how = f"; pass {self.option} or --set {self.field}=..." if cli else ""
        return f"recipe {recipe} needs {self.what}{how}"


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build: Callable[[bool], dict]  # quick -> config dict (seed filled in by recipe_config)
    needs: tuple[Need, ...] = ()


CHECKPOINT = Need("model.source", "a model checkpoint folder (HF layout, e.g. RUN_DIR/checkpoints/step-N)", "--model PATH")
ACCEPTED = Need(
    "datasets",
    "a dataset file of accepted samples ({prompt, completion} JSONL, e.g. a rejection-sampling run's "
    "RUN_DIR/accepted.jsonl or a lab dataset)",
    "--dataset PATH",
)


def _tiny_base(steps: int) -> dict:
    """Pretrain the tiny preset inside the run (as aha-mini does) when no checkpoint is given."""
    return {"steps": steps, "checkpoint_interval": 300 if steps >= 300 else 0}


_BASE_SUPERVISED = {
    "batch_size": 64, "learning_rate": 3e-3, "lr_schedule": "cosine", "warmup_steps": 50,
    "worked_fraction": 0.3, "completion_only_loss": True, "max_seq_len": 128,
}
_ADDITION = {"task": "addition", "difficulty": {"digits": 4, "min_digits": 4}}

QUICK_MAX_NEW_TOKENS = 48
QUICK_EVAL_SIZE = 16


def _quick_scale(config: dict, *, total_steps: int, base: dict | None = None, batch_size: int = 16,
                 warmup_steps: int = 5, eval_size: int | None = QUICK_EVAL_SIZE,
                 max_new_tokens: int | None = QUICK_MAX_NEW_TOKENS) -> dict:
    """The --quick scale (a smoke test on a CPU in a minute) of a recipe's config, in place, applied to the
    sections the config has: `total_steps`; the in-run base (`base`, its whole section); no intermediate
    checkpoints; supervised batches of `batch_size` with `warmup_steps`; groups of 4 × 4 prompts (GRPO and
    rejection-sampling jobs); generation (sampling and evaluation max_new_tokens) capped at `max_new_tokens` (None: kept);
    the first dataset's eval set of `eval_size` problems (None: kept); no periodic evaluation, 1 sample per
    problem."""
    config["total_steps"] = total_steps
    if base is not None:
        config["base"] = base
    if "checkpoint_interval" in config:
        config["checkpoint_interval"] = 0
    if "supervised" in config:
        config["supervised"].update(batch_size=batch_size, warmup_steps=warmup_steps)
    if config["kind"] in ("grpo", "rejection_sampling"):
        config["grpo"].update(group_size=4, prompts_per_step=4)
    for section in ("sampling", "evaluation"):
        if max_new_tokens is not None and "max_new_tokens" in config.get(section, {}):
            config[section]["max_new_tokens"] = max_new_tokens
    if eval_size is not None:
        config["datasets"][0]["eval_size"] = eval_size
    evaluation = config.get("evaluation", {})
    for key, value in (("interval", 0), ("samples_per_problem", 1)):
        if key in evaluation:
            evaluation[key] = value
    return config


_AHA_PROBE = {"first": 800, "interval": 100, "extra_steps": 0, "min_accuracy": 0.2, "problems": 64,
              "samples_per_problem": 4, "temperature": 1.0, "max_new_tokens": 64}


def _aha_mini(quick: bool) -> dict:
    """R1-Zero in miniature: a tiny base that prefers short direct answers but
    can write steps, then GRPO with accuracy + format rewards only — no length reward — and the length grows."""
    config = {
        "kind": "grpo",
        "name": "aha-mini",
        # MTP off: it costs a third of each pretraining step and GRPO does not use it
        "model": {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}},
        # a measured base budget: the cosine spans 1,200 steps; the base stops at the first probe (sampled pass@1
        # at T 1 on 64 test-split problems, the weak-base chain's probe) ≥ 0.2 from step 800, else at the cosine's
        # end. Seeds 0-9: 7 stop at 800-1,100 (+84 to +99 points), 3 reach 1,200 at 0.06-0.10 (+38 to +42.5); a
        # seed costs ≤ 14.5 CPU-min. Pretraining on to the probe's 0.2 gave those 3 +50 to +87 but took 1,700-1,900
        # steps, 18-21 CPU-min (bench/RESULTS.md, 2026-12-07). A fixed budget below 1,200 leaves more seeds under
        # the sampled skill GRPO needs (weak-base: +98 points from ≥ 0.22, +20 from 0.02)
        "base": {"steps": 1200, "checkpoint_interval": 300, "probe": _AHA_PROBE},
        # 4-digit sums: within this budget the tiny MLA/MoE base learns the worked (digit by digit) route but
        # not direct answers; with 6 digits 1,500 steps left it unable to finish either (accuracy 0, no signal)
        "datasets": [{**_ADDITION, "eval_size": 200}],
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.1}],
        "deterministic": False,
        "threads": 1,
        "total_steps": 80,
        "checkpoint_interval": 20,
        "keep_checkpoints": 2,
        "traces_per_step": 1,
        "supervised": dict(_BASE_SUPERVISED),
        "grpo": {
            "group_size": 8,
            "prompts_per_step": 16,
            "learning_rate": 1e-4,
            "lr_schedule": "constant",
            "beta": 0.0,
            "num_iterations": 1,
            "minibatches": 1,
            "loss_aggregation": "grpo",
        },
        "sampling": {"temperature": 1.0, "max_new_tokens": 64},
        "evaluation": {
            "interval": 10,
            "at_start": True,
            "benchmarks": ["heldout"],
            "temperature": 0.0,
            "top_p": 1.0,
        },
    }
    quick_base = {"steps": 30, "probe": {**_AHA_PROBE, "first": None, "interval": 10, "extra_steps": 10,
                                         "problems": 8, "samples_per_problem": 2, "max_new_tokens": QUICK_MAX_NEW_TOKENS}}
    return _quick_scale(config, total_steps=2, base=quick_base) if quick else config


def _r1_zero(quick: bool) -> dict:
    """R1-Zero (report §2.2): GRPO straight on a base model, rule-based accuracy + format rewards only."""
    config = {
        "kind": "grpo",
        "name": "r1-zero",
        "model": {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}},
        "base": _tiny_base(1200),
        "datasets": [{**_ADDITION, "eval_size": 200}],
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5}],
        "total_steps": 200,
        "checkpoint_interval": 50,
        "supervised": dict(_BASE_SUPERVISED),
        "grpo": {
            "group_size": 16,  # report
            "prompts_per_step": 32,  # report (batch 512)
            "learning_rate": 1e-4,  # report 3e-6 for the 671B model; the tiny model wants ~1e-4
            "lr_schedule": "constant",
            "beta": 0.001,  # report
            "epsilon_low": 0.2,
            "epsilon_high": 0.2,
            "ref_refresh_interval": 400,  # report
            "loss_aggregation": "grpo",
        },
        "sampling": {"temperature": 1.0, "max_new_tokens": 128},  # report: T 1.0; 32,768 tokens
        "evaluation": {"interval": 20, "at_start": True, "benchmarks": ["heldout"], "samples_per_problem": 4,
                       "temperature": 0.6, "top_p": 0.95},  # report's evaluation sampling
    }
    return _quick_scale(config, total_steps=2, base=_tiny_base(30)) if quick else config


def _cold_start_sft(quick: bool) -> dict:
    """R1's cold start: SFT on a few thousand readable long-CoT examples before reasoning RL."""
    config = {
        "kind": "sft",
        "name": "cold-start-sft",
        "model": {"source": "tiny", "overrides": {"num_nextn_predict_layers": 0}},
        "base": _tiny_base(1200),
        # built-in tasks give worked solutions (the long CoT) to every sft example; a {prompt, completion}
        # file is used as it is
        "datasets": [{**_ADDITION, "eval_size": 200}],
        "template": "mini",
        "total_steps": 100,  # 100 × 32 = 3,200 examples: "thousands" of cold-start samples
        "checkpoint_interval": 50,
        "supervised": {**_BASE_SUPERVISED, "batch_size": 32, "learning_rate": 1e-3, "warmup_steps": 10},
        "sampling": {"max_new_tokens": 128},
        "evaluation": {"interval": 0, "at_start": True, "benchmarks": ["heldout"], "temperature": 0.0, "top_p": 1.0},
    }
    return _quick_scale(config, total_steps=5, base=_tiny_base(30), batch_size=8, warmup_steps=1) if quick else config


def _rejection_sampling(quick: bool) -> dict:
    """R1's rejection sampling: G samples per prompt from an RL checkpoint, the checker keeps correct ones."""
    config = {
        "kind": "rejection_sampling",
        "name": "rejection-sampling",
        "model": {"source": "tiny"},  # placeholder: the checkpoint is required
        "datasets": [{**_ADDITION, "eval_size": 200}],
        "template": "mini",
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "format", "weight": 0.5}],
        "total_steps": 20,  # 20 × 32 prompts × 16 = 10,240 samples (report: ~600k reasoning samples kept)
        "grpo": {"group_size": 16, "prompts_per_step": 32},
        "sampling": {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 128},
        "evaluation": {"benchmarks": [], "at_start": False},
    }
    return _quick_scale(config, total_steps=2, eval_size=None) if quick else config


def _distill(quick: bool) -> dict:
    """R1's distillation: plain SFT of a smaller student on the teacher's accepted samples (no RL)."""
    config = {
        "kind": "sft",
        "name": "distill",
        # a fresh student half the teacher's depth
        "model": {"source": "tiny", "overrides": {"num_hidden_layers": 2, "num_nextn_predict_layers": 0}},
        "datasets": [{**_ADDITION, "eval_size": 0}],  # placeholder: the teacher's samples are required
        "template": "mini",
        "total_steps": 300,
        "checkpoint_interval": 100,
        "supervised": {**_BASE_SUPERVISED, "batch_size": 32, "learning_rate": 3e-3, "warmup_steps": 20},
        "sampling": {"max_new_tokens": 128},
        "evaluation": {"benchmarks": [], "at_start": False},
    }
    # quick: the placeholder dataset's eval set and the (unused) generation length stay
    return _quick_scale(config, total_steps=5, batch_size=8, warmup_steps=1, eval_size=None,
                        max_new_tokens=None) if quick else config


def _evaluate(quick: bool) -> dict:
    """Benchmarks only: pass@1 over k samples at the report's evaluation sampling."""
    config = {
        "kind": "evaluate",
        "name": "evaluate",
        "model": {"source": "tiny"},  # placeholder: the checkpoint is required
        "datasets": [{**_ADDITION, "eval_size": 200}],
        "template": "mini",
        "total_steps": 0,
        "evaluation": {"at_start": True, "benchmarks": ["heldout"], "samples_per_problem": 4,
                       "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 128},
    }
    return _quick_scale(config, total_steps=0) if quick else config


RECIPES: dict[str, Recipe] = {
    "aha-mini": Recipe(
        name="aha-mini",
        description="R1-Zero's aha moment in miniature on a CPU: pretrain the tiny preset on 4-digit addition "
        "(30% worked solutions), then GRPO with accuracy + format rewards only; watch accuracy and length grow.",
        build=_aha_mini,
    ),
    "r1-zero": Recipe(
        name="r1-zero",
        description="R1-Zero GRPO on a dataset with accuracy + format rewards only: report G 16, 32 prompts/step, "
        "beta 0.001, eps 0.2, T 1, reference refreshed every 400 steps, eval T 0.6 / top-p 0.95 (lr 1e-4 for the "
        "tiny model; report 3e-6). Default: a tiny base pretrained in the run on 4-digit addition; or start from "
        "a checkpoint (the model) and a problem file (the dataset).",
        build=_r1_zero,
    ),
    "cold-start-sft": Recipe(
        name="cold-start-sft",
        description="R1's cold start: SFT on long-CoT examples (a {prompt, completion} dataset; default: worked "
        "solutions of 4-digit addition) before RL, from a checkpoint or a tiny base pretrained in the run.",
        build=_cold_start_sft,
    ),
    "rejection-sampling": Recipe(
        name="rejection-sampling",
        description="R1's rejection sampling: G 16 samples per prompt at T 0.6 / top-p 0.95 from a checkpoint; "
        "the checker keeps the correct ones (the run's accepted.jsonl; the lab saves them as a dataset).",
        build=_rejection_sampling,
        needs=(CHECKPOINT,),
    ),
    "distill": Recipe(
        name="distill",
        description="R1's distillation: SFT only of a fresh 2-layer tiny student on a teacher's accepted "
        "samples (the dataset: e.g. what a rejection-sampling run accepted); no RL.",
        build=_distill,
        needs=(ACCEPTED,),
    ),
    "evaluate": Recipe(
        name="evaluate",
        description="Evaluate a checkpoint on the benchmarks: pass@1 over 4 samples at the report's T 0.6 / "
        "top-p 0.95 on held-out 4-digit addition (evaluation.benchmarks names others).",
        build=_evaluate,
        needs=(CHECKPOINT,),
    ),
}


def _recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise KeyError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None


def parse_set(item: str) -> tuple[str, Any]:
    """'a.b=VALUE' -> ("a.b", value): VALUE is read as JSON when it parses (numbers, true, null, lists,
    objects), otherwise taken as a string. ValueError without '='."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {item!r}: expected KEY.PATH=VALUE")
    try:
        value = json.loads(text)
    except ValueError:
        value = text
    return key.strip(), value


def set_path(data: dict, dotted: str, value: Any) -> None:
    """Set `dotted` ("grpo.beta", "datasets.0.difficulty.digits") in a config dict; objects on the way are
    created, list items are addressed by index. ValueError naming the path when it cannot be followed."""
    parts = dotted.split(".")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(f"--set {dotted}: {where!r} is not an item of a list of {len(node)}")
            key: Any = int(part)
        elif isinstance(node, dict):
            key = part
            if not last and not isinstance(node.get(key), (dict, list)):
                node[key] = {}
        else:
            raise ValueError(f"--set {dotted}: {'.'.join(parts[:depth])!r} is a value, not an object")
        if last:
            node[key] = value
        else:
            node = node[key]


def use_model(data: dict, source: str) -> None:
    """Start from `source` (a checkpoint folder or a preset name). A checkpoint is the base: the recipe's
    base pretraining stage is dropped and preset overrides do not apply."""
    if source in PRESETS:
        data.setdefault("model", {})["source"] = source
        return
    data["model"] = {"source": source}
    if "base" in data:
        data["base"] = {**data["base"], "steps": 0}


def use_dataset(data: dict, path: str) -> None:
    """Train (or sample, or evaluate) on one dataset file in place of the recipe's datasets; the first
    dataset's eval_size is kept."""
    first = (data.get("datasets") or [{}])[0]
    spec = {"task": None, "path": path}
    if "eval_size" in first:
        spec["eval_size"] = first["eval_size"]
    data["datasets"] = [spec]


def missing_inputs(name: str, config: RunConfig, *, check_paths: bool = False) -> list[Need]:
    """The recipe's needs that `config` does not meet: a preset where a checkpoint is needed, no dataset file
    where one is, or (check_paths, on the machine that runs it) a path that is not there."""
    missing = []
    for need in _recipe(name).needs:
        if need.field == "model.source":
            source = config.model.source
            local = is_model_folder(source)
            hub = not Path(source).exists() and parse_hub_id(source) is not None  # downloaded by the run
            if source in PRESETS or (check_paths and not (local or hub)):
                missing.append(need)
        elif need.field == "datasets":
            paths = [spec.path for spec in config.datasets if spec.path is not None]
            if not paths or (check_paths and not all(Path(p).is_file() for p in paths)):
                missing.append(need)
    return missing


def recipe_config(
    name: str,
    *,
    quick: bool = False,
    seed: int | None = None,
    model: str | None = None,
    dataset: str | None = None,
    sets: Iterable[tuple[str, Any]] = (),
    require_inputs: bool = False,
) -> RunConfig:
    """The validated RunConfig of a recipe; KeyError naming the known recipes.

    model / dataset / sets change the recipe's config before validation (in that order, so `sets` win).
    require_inputs: ConfigError naming each field the recipe needs and the config still lacks (the CLI's
    `recipe run`; it also checks that the paths exist)."""
    recipe = _recipe(name)
    data = copy.deepcopy(recipe.build(quick))
    if seed is not None:
        data["seed"] = seed
    if model is not None:
        use_model(data, model)
    if dataset is not None:
        use_dataset(data, dataset)
    source = f"recipe {name}"
    for key, value in sets:
        try:
            set_path(data, key, value)
        except ValueError as exc:  # the error names the path being set, `key`
            raise ConfigError([{"field": key, "loc": tuple(key.split(".")), "msg": str(exc)}], source) from None
    config = validate_run_config(data, source=source)
    if require_inputs:
        missing = missing_inputs(name, config, check_paths=True)
        if missing:
            raise ConfigError(
                [{"field": need.field, "loc": tuple(need.field.split(".")), "msg": _missing_message(name, need, config)}
                 for need in missing],
                source,
            )
    return config


def _missing_message(name: str, need: Need, config: RunConfig) -> str:
    message = need.message(name, cli=True)
    if need.field == "model.source" and config.model.source not in PRESETS:
        return f"no checkpoint at {config.model.source!r} (no config.json there); {message}"
    if need.field == "datasets":
        absent = [spec.path for spec in config.datasets if spec.path is not None and not Path(spec.path).is_file()]
        if absent:
            return f"dataset file not found: {absent[0]!r}; {message}"
    return message
