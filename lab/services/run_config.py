"""The lab's view of the trainer's RunConfig (r1model.train.config), imported lazily.

r1model.train.config imports without torch (TEAM_RULES), so the web process may use it. The lab
reads three things from it: the JSON Schema (the new-run form is generated from it), validation
(every error at once, by field) and the recipes. Until that module exists a small stand-in schema
keeps the pages usable; a config is then stored as given.
"""
from __future__ import annotations

import copy
import dataclasses
import importlib
from typing import Any

from django.core.exceptions import ValidationError

# Used only while r1model.train.config is missing (a fresh checkout mid-development).
STAND_IN_SCHEMA: dict = {
    "title": "RunConfig",
    "type": "object",
    "properties": {
        "kind": {
            "type": "string",
            "enum": ["pretrain", "sft", "grpo", "rollout", "evaluate"],
            "default": "grpo",
            "description": "What the job does.",
        },
        "model": {"type": "string", "default": "tiny", "description": "Model preset or checkpoint folder."},
        "seed": {"type": "integer", "default": 0, "description": "Random seed."},
        "steps": {"type": "integer", "default": 100, "description": "Optimizer steps."},
    },
}

STAND_IN_RECIPES = {
    "aha-mini": {
        "description": "R1-Zero in miniature: pretrain a tiny base on arithmetic, then GRPO with accuracy + format rewards.",
        "config": {},  # the worker runs the recipe by name (`python -m r1model recipe run aha-mini`)
    }
}


def _config_module():
    try:
        return importlib.import_module("r1model.train.config")
    except ImportError:
        return None


def config_schema() -> dict:
    """RunConfig's JSON Schema (a copy; callers may change it)."""
    module = _config_module()
    if module is not None:
        for name in ("run_config_schema", "json_schema"):
            if callable(getattr(module, name, None)):
                return copy.deepcopy(getattr(module, name)())
        run_config = getattr(module, "RunConfig", None)
        if run_config is not None and hasattr(run_config, "model_json_schema"):
            return run_config.model_json_schema()
    return copy.deepcopy(STAND_IN_SCHEMA)


def _as_dict(value: Any) -> dict:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dict):
        return value
    raise TypeError(f"validate_run_config returned {type(value).__name__}, expected a config")


def validate_config(config: dict) -> dict:
    """The validated config as JSON-ready dict; ValidationError listing every error by field."""
    if not isinstance(config, dict):
        raise ValidationError({"config": "must be a JSON object"})
    module = _config_module()
    if module is None or not hasattr(module, "validate_run_config"):
        return dict(config)
    try:
        return _as_dict(module.validate_run_config(config))
    except ValidationError:
        raise
    except Exception as exc:  # pydantic.ValidationError or the trainer's own ConfigError
        raise ValidationError(_error_messages(exc)) from None


def _error_messages(exc: Exception) -> dict[str, list[str]]:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = errors()
        except Exception:  # not pydantic's errors(): fall back to the message
            items = None
        if isinstance(items, list) and items and isinstance(items[0], dict):
            by_field: dict[str, list[str]] = {}
            for item in items:
                field = ".".join(str(p) for p in item.get("loc", ())) or "config"
                by_field.setdefault(field, []).append(str(item.get("msg", "invalid")))
            return by_field
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):  # r1model ConfigError
        by_field = {}
        for item in errors:
            field = str(item.get("field") or ".".join(str(p) for p in item.get("loc", ())) or "config")
            by_field.setdefault(field, []).append(str(item.get("msg", "invalid")))
        return by_field
    if isinstance(errors, dict):
        return {str(k): [str(v)] for k, v in errors.items()}
    return {"config": [str(exc)]}


def default_config() -> dict:
    """Every field at its default, as the schema states them."""
    return defaults_from_schema(config_schema())


def defaults_from_schema(schema: dict) -> dict:
    defs = schema.get("$defs", {})
    out: dict = {}
    for name, prop in schema.get("properties", {}).items():
        prop = resolve(prop, defs)
        if "default" in prop:
            out[name] = copy.deepcopy(prop["default"])
        elif prop.get("type") == "object" and "properties" in prop:
            out[name] = defaults_from_schema({"properties": prop["properties"], "$defs": defs})
    return out


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


def recipes() -> dict[str, dict]:
    """name → {"description": str, "config": dict}: the trainer's recipes, for the new-run page."""
    found = _trainer_recipes()
    return found if found else copy.deepcopy(STAND_IN_RECIPES)


def recipe_config(name: str, *, quick: bool = False) -> dict:
    """The config a recipe runs with (quick: scaled down for a smoke test); KeyError if unknown."""
    for module_name in ("r1model.train.recipes", "r1model.recipes"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for fn_name in ("recipe_config", "get_recipe"):
            fn = getattr(module, fn_name, None)
            if callable(fn):
                try:
                    return _as_dict(fn(name, quick=quick))
                except TypeError:
                    return _as_dict(fn(name))
    return copy.deepcopy(recipes()[name]["config"])


def _trainer_recipes() -> dict[str, dict]:
    for module_name in ("r1model.train.recipes", "r1model.recipes"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        table = getattr(module, "RECIPES", None)
        if isinstance(table, dict):
            out = {}
            for name, entry in table.items():
                description = getattr(entry, "description", None) or (entry.get("description") if isinstance(entry, dict) else "")
                try:
                    config = recipe_config(name)
                except Exception:  # a recipe whose config needs a run dir: list it, build it at launch
                    config = {}
                out[name] = {"description": description or "", "config": config}
            return out
    return {}
