"""Reads for the compare page: the config keys on which the runs differ."""
from __future__ import annotations

import json
from typing import Any

MISSING = object()
IGNORED = {"name"}  # the runs' names head the table already


def flat_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """`{"grpo": {"beta": 0}}` → `{"grpo.beta": 0}`; lists and scalars are leaves."""
    if not isinstance(config, dict):
        return {prefix: config} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flat_config(value, path))
        else:
            out[path] = value
    return out


def shown(value: Any) -> str:
    if value is MISSING:
        return "—"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def config_diff(runs) -> list[dict]:
    """The dotted config keys whose values are not the same in every run, sorted, each with one shown
    value per run (in the runs' order; "—" where a run's config lacks the key)."""
    flats = [flat_config(run.config or {}) for run in runs]
    keys = sorted({key for flat in flats for key in flat} - IGNORED)
    rows = []
    for key in keys:
        values = [flat.get(key, MISSING) for flat in flats]
        texts = [shown(v) for v in values]
        if len(set(texts)) > 1:
            rows.append({"key": key, "values": texts})
    return rows
