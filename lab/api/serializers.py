"""Model rows → JSON-ready dicts for the API (one function per model, no framework)."""
from __future__ import annotations

from lab.services.references import redact_paths
from lab.services.run_config import config_warnings


def _iso(value):
    return value.isoformat() if value else None


def dataset_json(d) -> dict:
    return {
        "id": d.id, "name": d.name, "version": d.version, "source": d.source, "generator": d.generator,
        "content_hash": d.content_hash, "rows": d.row_count, "report": d.report, "created_at": _iso(d.created_at),
    }


def run_json(r, *, full: bool = False) -> dict:
    data = {
        "id": r.id, "name": r.name, "kind": r.kind, "recipe": r.recipe, "quick": r.quick, "queue": r.queue,
        "status": r.status, "message": redact_paths(r.message), "step": r.stage_step, "total_steps": r.total_steps, "progress": r.progress,
        # one progress across the stages (a base pretraining, then the main job); step/total_steps are the stage's
        "stage": {"index": r.stage_index, "count": r.stage_count, "name": r.stage_name},
        "overall_step": r.overall_step, "overall_total": r.overall_total,
        "eta_scope": r.eta_scope, "phase": r.phase, "attempt": r.attempt, "max_attempts": r.max_attempts, "attempt_note": r.attempt_note,
        "data_split": r.data_split,
        "eta_s": r.eta_s, "compute_seconds": r.compute_seconds, "gpu_count": r.gpu_count,
        "project": r.project.name if r.project_id else None, "worker": r.worker.name if r.worker_id else None,
        "parent": r.parent_id, "parent_step": r.parent_step, "created_at": _iso(r.created_at),
        "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at), "last_activity_at": _iso(r.last_activity_at),
    }
    if full:
        data["config"] = r.config
        data["config_warnings"] = config_warnings(r.config)
    return data


def trace_json(t, *, full: bool = False) -> dict:
    data = {
        "id": t.id, "run": t.run_id, "seq": t.seq, "step": t.step, "group_id": t.group_id, "prompt_id": t.prompt_id,
        "answer": t.answer, "gold": t.gold, "reward": t.reward, "advantage": t.advantage, "status": t.status, "tokens": t.tokens,
        "truncated": t.truncated, "has_reflection": t.has_reflection, "language_mix": t.language_mix, "source": t.source,
    }
    if full:
        data.update(prompt=t.prompt, completion=t.completion, think=t.think, rewards=t.rewards)
    return data


def annotation_json(a) -> dict:
    return {
        "id": a.id, "trace": a.trace_id, "user": a.user.get_username(), "rating": a.rating, "labels": a.labels,
        "comment": a.comment, "updated_at": _iso(a.updated_at),
    }
