"""Events → plain row tuples, one builder per event type (the columns of store.COLUMNS, in order).

Everything here is pure Python and needs no database, so a block's rows are built in the helper thread
while the block before is stored. Trace rows get the reading aids the trace pages filter on
(has_reflection, language_mix) when the trainer did not send them.
"""
from __future__ import annotations

import json
import math

from lab.models import CheckpointRecord, EvalResult, Metric, RunLog, Trace
from lab.services.traces import has_reflection, language_mix

TRACE_STATUSES = ("correct", "wrong", "unparseable", "skipped")

_isfinite = math.isfinite
_dumps = json.JSONEncoder().encode  # json.dumps with default arguments, without its argument checks


def as_number(value) -> float | None:
    """JSON number → float; NaN, inf and non-numbers → None (the database stores null)."""
    if type(value) is float:  # the common case first: ingestion calls this for every stored number
        return value if _isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def as_int(value) -> int:
    if type(value) is int:
        return value
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def as_text(value, limit: int | None = None) -> str:
    if type(value) is str:
        return value[:limit] if limit else value
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    return text[:limit] if limit else text


def event_rows(run_id: int, event: dict) -> tuple:
    """(model, [row tuple, …]) of one event (its type is one of ROW_BUILDERS)."""
    model, build = ROW_BUILDERS[event["type"]]
    return model, build(run_id, event)


def _metric_rows(run_id: int, event: dict) -> list[tuple]:
    values = event.get("metrics") or event.get("values")
    if not isinstance(values, dict):
        values = {event["name"]: event.get("value")} if "name" in event else {}
    seq, step = event["seq"], as_int(event.get("step"))
    return [(run_id, seq, step, as_text(name, 100), as_number(value)) for name, value in values.items()]


def _trace_status(event: dict) -> str:
    status = event.get("status")
    if status in TRACE_STATUSES:
        return status
    correct = event.get("correct")
    if correct is None:
        return "unparseable" if event.get("answer") in (None, "") else ""
    return "correct" if correct else "wrong"


def _trace_rows(run_id: int, event: dict) -> list[tuple]:
    get = event.get
    rewards = get("rewards")
    # JSONField's own preparation is json.dumps on both databases; done here it skips two adapter layers
    rewards = _dumps({str(k): as_number(v) for k, v in rewards.items()} if isinstance(rewards, dict) else {})
    think, completion = as_text(get("think")), as_text(get("completion"))
    # the reading aids the trace pages filter on, computed here once when the trainer did not send them
    reasoning = think or completion
    reflection = bool(event["has_reflection"]) if "has_reflection" in event else has_reflection(reasoning)
    mix = as_number(event["language_mix"]) if "language_mix" in event else language_mix(reasoning)
    return [(
        run_id, event["seq"], as_int(get("step")),
        as_text(get("group_id") or get("group"), 64), as_text(get("prompt_id"), 128),
        as_text(get("prompt")), completion, think,
        as_text(get("answer")), as_number(get("reward")), rewards, as_number(get("advantage")),
        _trace_status(event), as_int(get("tokens")), bool(get("truncated", False)),
        reflection, mix,
        as_text(get("source") or "train", 16),
        as_text(get("gold")),
    )]


def _checkpoint_rows(run_id: int, event: dict) -> list[tuple]:
    return [(run_id, event["seq"], as_int(event.get("step")), as_text(event.get("path"), 500))]


def _eval_rows(run_id: int, event: dict) -> list[tuple]:
    return [(run_id, event["seq"], as_int(event.get("step")), as_text(event.get("benchmark"), 64),
             as_text(event.get("metric"), 32), as_number(event.get("value")), as_int(event.get("n")))]


def _log_rows(run_id: int, event: dict) -> list[tuple]:
    message = event.get("message")
    if event["type"] == "status" and not message:
        message = event.get("phase")
    return [(run_id, event["seq"], event["type"], as_text(message))]


ROW_BUILDERS = {
    "metric": (Metric, _metric_rows),
    "trace": (Trace, _trace_rows),
    "checkpoint": (CheckpointRecord, _checkpoint_rows),
    "eval": (EvalResult, _eval_rows),
    "status": (RunLog, _log_rows),
    "log": (RunLog, _log_rows),
}
