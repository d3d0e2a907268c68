"""What a stored batch of events does to its run: the Run fields pages show (stage, step, phase, ETA,
data split, the step a resumed attempt started from) and the evaluation jobs its checkpoints ask for.
"""
from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.utils import timezone

from lab.models import Run
from lab.services.ingest.rows import as_int, as_number, as_text

logger = logging.getLogger(__name__)


MAIN_PHASES = ("sft", "grpo", "rejection_sampling", "rollout", "eval", "done")  # status phases only the main job emits (rollout: runs before the rename)


def _stage_of(event: dict) -> str | None:
    """"base" for the base pretraining's events (phase "pretrain"), "main" for the main job's, None for
    events either stage emits (starting, checkpointing, failed, stopped, checkpoints, logs)."""
    kind, phase = event["type"], event.get("phase")
    if phase == "pretrain":
        return "base"
    if kind in ("metric", "trace", "eval") or (kind == "status" and phase in MAIN_PHASES):
        return "main"
    return None


def _trainer_plan(event: dict) -> dict | None:
    """Run.base_steps / main_steps from the trainer's own plan: the `stages` of its "starting" status
    (docs/API_trainer.md); None for any other event, or a stream written before the trainer said it."""
    stages = event.get("stages") if event["type"] == "status" and event.get("phase") == "starting" else None
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        return None
    steps = {s.get("name"): max(0, as_int(s.get("total_steps"))) for s in stages}
    return {"base_steps": steps.get("base", 0), "main_steps": steps.get("main", 0)}


def _config_plan(run: Run) -> dict:
    """The plan re-derived from the run's config, for event streams without the trainer's: a base stage
    runs before the main job when base.steps > 0 and the run is not itself a pretraining."""
    config = run.config if isinstance(run.config, dict) else {}
    base = config.get("base") if isinstance(config.get("base"), dict) else {}
    kind = config.get("kind", run.kind)
    base_steps = as_int(base.get("steps")) if kind != "pretrain" else 0
    return {"base_steps": max(0, base_steps), "main_steps": max(0, as_int(config.get("total_steps")))}


def _stage_plan(run: Run, events: list[dict]) -> dict:
    """Run.base_steps / main_steps: the trainer's plan (the batch's last "starting" status that carries
    one), else the plan an earlier batch stored, else (a stream that never says it) the config's."""
    for event in reversed(events):
        plan = _trainer_plan(event)
        if plan is not None:
            return plan
    if run.ingested_seq >= 0:
        return {"base_steps": run.base_steps, "main_steps": run.main_steps}
    return _config_plan(run)


def progress(run: Run, events: list[dict]) -> dict:
    """Run fields to update after a batch: highest seq, latest step, the last status event's view, the
    stage plan and the stage the last events came from (StageProgress). `run` must hold the stored
    ingested_seq / base_steps / main_steps (ingest keeps them so between batches)."""
    update = {"ingested_seq": events[-1]["seq"], "last_activity_at": timezone.now(), **_stage_plan(run, events)}
    if update["base_steps"]:
        for event in reversed(events):  # the trainer names the stage in its status events; older streams did not
            stage = event.get("stage") if event["type"] == "status" else None
            stage = stage if stage in ("base", "main") else _stage_of(event)
            if stage:
                update["stage"] = stage
                break
    steps = [e["step"] for e in events if isinstance(e.get("step"), int)]
    if steps:
        update["step"] = steps[-1]
    for event in reversed(events):  # the last status tells phase, total and ETA; the step is the last event's
        if event["type"] == "status":
            if isinstance(event.get("total_steps"), int):
                update["total_steps"] = event["total_steps"]
            if event.get("phase"):
                update["phase"] = str(event["phase"])[:32]
            if "eta_s" in event:
                update["eta_s"] = as_number(event["eta_s"])
            break
    for event in events:
        if event["type"] == "status" and event.get("phase") == "starting" and isinstance(event.get("step"), int):
            update["resumed_from_step"] = event["step"]  # the attempt's first status: where its trainer started
        elif event["type"] == "log" and isinstance(event.get("datasets"), list):
            update["data_split"] = _data_split(run, event["datasets"])
    return update


def _data_split(run: Run, sizes: list) -> list[dict]:
    """The trainer's split sizes, each named by the config's own reference or task (the trainer names the
    resolved file, a server path that pages must not show)."""
    specs = (run.config or {}).get("datasets") or [] if isinstance(run.config, dict) else []
    out = []
    for index, item in enumerate(sizes[:100]):
        if not isinstance(item, dict):
            continue
        spec = specs[index] if index < len(specs) and isinstance(specs[index], dict) else {}
        out.append({"dataset": as_text(spec.get("path") or spec.get("task") or f"dataset {index + 1}", 200),
                    "train_size": item["train_size"] if isinstance(item.get("train_size"), int) else None,
                    "heldout_size": as_int(item.get("heldout_size"))})
    return out



def schedule_evaluations(run_id: int, checkpoints: list[dict]) -> None:
    """Evaluation jobs for the checkpoints the run asked for (Run.eval_every), in the batch's transaction,
    so a crash never stores a checkpoint without its job; lab.services.evaluations makes it idempotent."""
    if not checkpoints:
        return
    from lab.services.evaluations import schedule_evaluation

    parent = Run.objects.filter(id=run_id, eval_every__gt=0).first()
    if parent is None:
        return
    for event in checkpoints:
        try:
            schedule_evaluation(parent, as_int(event.get("step")), as_text(event.get("path")))
        except (ValidationError, OSError) as exc:  # a bad job must not stop ingestion
            logger.error("run %s: no evaluation job for step %s: %s", run_id, event.get("step"), exc)
