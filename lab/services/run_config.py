"""The lab's view of the trainer's RunConfig (r1model.train.config, which imports without torch).

The lab reads three things from it: the JSON Schema (the new-run form is generated from it),
validation (every error at once, by field) and the recipes.
"""
from __future__ import annotations

import copy
import functools

from django.core.exceptions import ValidationError
from r1model.train import config as run_config_module
from r1model.train import recipes as recipes_module


# In the lab, fields that name files take references (lab.services.references): their help says so.
LAB_FIELD_HELP = {
    ("ModelSpec", "source"): "A model preset (e.g. 'tiny': a fresh, randomly initialised model); a checkpoint "
    "of one of this team's runs, written run:ID@STEP (run:ID = its latest; each run page lists its checkpoints); "
    "a registered model of this team, written model:ID (the Models page lists them); or a Hugging Face hub id, "
    "written hf:org/name or hf:org/name@revision (downloaded by the worker).",
    ("DatasetSpec", "path"): "A dataset of this team, written dataset:ID (the datasets page lists them). Null when "
    "`task` is given.",
    ("EvalConfig", "benchmarks"): "'heldout' = the test split of the run's datasets; a built-in benchmark "
    "(math500, gsm8k, addition-test, …); or a dataset of this team, written dataset:ID.",
}


def config_schema() -> dict:
    """RunConfig's JSON Schema as the lab shows it (a copy; callers may change it)."""
    return copy.deepcopy(_config_schema())


@functools.lru_cache(maxsize=1)
def _config_schema() -> dict:
    schema = copy.deepcopy(run_config_module.run_config_schema())
    defs = schema.get("$defs", {})
    for (model, field), text in LAB_FIELD_HELP.items():
        prop = defs.get(model, {}).get("properties", {}).get(field)
        if prop is not None:
            prop["description"] = text
    return schema


def _as_dict(config) -> dict:
    return config.model_dump(mode="json")


def validate_config(config: dict) -> dict:
    """The validated config as JSON-ready dict; ValidationError listing every error by field."""
    return _as_dict(validated_config(config))


def validated_config(config: dict):
    """The RunConfig of `config` (one validation); ValidationError listing every error by field."""
    if not isinstance(config, dict):
        raise ValidationError({"config": "must be a JSON object"})
    try:
        return run_config_module.validate_run_config(config)
    except run_config_module.ConfigError as exc:
        raise ValidationError(_error_messages(exc)) from None


def config_warnings(config: dict) -> list[dict]:
    """[{"field", "msg"}]: settings of a stored (validated) config that are valid but probably not meant."""
    if not config:
        return []
    try:
        return run_config_module.config_warnings(run_config_module.validate_run_config(config))
    except run_config_module.ConfigError:
        return []


def _error_messages(exc: run_config_module.ConfigError) -> dict[str, list[str]]:
    """ConfigError's every error, grouped by its dotted field path."""
    by_field: dict[str, list[str]] = {}
    for item in exc.errors:
        by_field.setdefault(item["field"] or "config", []).append(item["msg"])
    return by_field


def resolve(prop: dict, defs: dict) -> dict:
    """Follow a $ref (also one wrapped in allOf/anyOf with null) to the property's own schema."""
    if "$ref" in prop:
        target = defs.get(prop["$ref"].rsplit("/", 1)[-1], {})
        return {**target, **{k: v for k, v in prop.items() if k != "$ref"}}
    for key in ("allOf", "anyOf"):
        options = [o for o in prop.get(key, []) if o.get("type") != "null"]
        if len(options) == 1 and ("$ref" in options[0] or "type" in options[0]):
            merged = {**resolve(options[0], defs), **{k: v for k, v in prop.items() if k != key}}
            if key == "anyOf":
                merged["nullable"] = True
            return merged
    return prop


def recipe_names() -> list[str]:
    """The trainer's recipe names (no config built: for checking a name)."""
    return list(recipes_module.RECIPES)


# What a recipe needs, in the lab's words: references, not the CLI's folders and files.
LAB_NEEDS = {
    "model.source": "a checkpoint of one of this team's runs (run:ID@STEP) or a registered model (model:ID)",
    "datasets": "a dataset of this team (dataset:ID), e.g. the accepted samples a rejection-sampling run saved",
}


def _need_text(need) -> str:
    return LAB_NEEDS.get(need.field, need.what)


def recipes() -> dict[str, dict]:
    """name → {"description": str, "config": dict, "needs": [{"field", "what"}]}: the trainer's recipes, for
    the new-run page. `needs`: what the user must give (a checkpoint in model.source, a dataset file); the
    stored config holds a placeholder there."""
    return {
        name: {
            "description": entry.description,
            "config": recipe_config(name),
            "needs": [{"field": need.field, "what": _need_text(need)} for need in entry.needs],
        }
        for name, entry in recipes_module.RECIPES.items()
    }


def recipe_input_errors(name: str, config) -> dict[str, list[str]]:
    """field → messages for each input the recipe needs and `config` (the merged, validated RunConfig) still
    lacks: a preset where a checkpoint belongs, a built-in task where a dataset belongs. References are
    checked by lab.services.references."""
    return {need.field: [f"recipe {name} needs {_need_text(need)}"]
            for need in recipes_module.missing_inputs(name, config)}


@functools.lru_cache(maxsize=64)
def _recipe_config(name: str, quick: bool) -> dict:
    # a recipe's config is a pure function of the code: built and validated once per process
    return _as_dict(recipes_module.recipe_config(name, quick=quick))


def recipe_config(name: str, *, quick: bool = False, overrides: dict | None = None) -> dict:
    """The config a recipe runs with (quick: scaled down), with `overrides` merged on top; KeyError if unknown."""
    return deep_merge(_recipe_config(name, bool(quick)), overrides or {})


def config_edits(shown: dict, edited: dict) -> dict:
    """What a user changed in a form that showed `shown`: the keys of `edited` whose values differ,
    nested objects compared key by key (so a quick recipe keeps its scaling where nothing was edited)."""
    out: dict = {}
    for key, value in edited.items():
        before = shown.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = config_edits(before, value)
            if inner:
                out[key] = inner
        elif value != before:
            out[key] = copy.deepcopy(value)
    return out


def deep_merge(base: dict, overrides: dict) -> dict:
    """`overrides` on top of `base`; nested objects merge, everything else (lists too) replaces."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
