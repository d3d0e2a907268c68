"""Evaluation jobs: a run that asks for them (Run.eval_every = K) gets, for each checkpoint at a multiple
of K steps, a child run of kind "evaluate" that scores that checkpoint on the run's benchmarks.

The child is created when ingestion stores the checkpoint event (lab.services.ingest), in the same
transaction, and is dispatched after commit like any run: a free worker slot on the parent's queue takes
it, so training never waits for it. The unique constraint `one_eval_per_checkpoint` (parent, parent_step,
kind "evaluate") makes creation idempotent: an event ingested again (a re-read file, a resumed attempt)
finds the child already there.

The child evaluates its own copy of the checkpoint, hard-linked into its run directory
(`<run_dir>/input-checkpoint/`), so the parent's checkpoint rotation (keep_checkpoints) cannot delete it
before the child starts. The trainer emits the checkpoint event just before it renames
`.tmp-step-N` to `step-N` (r1model.train.checkpoint), with the model files already complete: the copy
is taken from whichever of the two names exists.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from lab.models import Run, RunStatus
from lab.services.references import INPUT_DIR, checkpoint_ref
from lab.services.run_config import validate_config

logger = logging.getLogger(__name__)

EVALUATE = "evaluate"
TRAINING_KINDS = ("pretrain", "sft", "grpo")  # runs whose checkpoints are worth evaluating
TRAINER_STATE_FILES = ("trainer_state.pt", "trainer_state.json")  # resume state: the evaluation needs none
LINK_TRIES = 5  # the checkpoint may be renamed from .tmp-step-N to step-N while it is being linked


def wants_evaluation(eval_every: int, step: int, checkpoint_path: str) -> bool:
    """A main-job checkpoint at a multiple of `eval_every`; the base stage's own checkpoints
    (<run_dir>/base/checkpoints/step-N, numbered by base steps) are not the run's steps."""
    folder = Path(checkpoint_path).parent
    in_base_stage = folder.name == "checkpoints" and folder.parent.name == "base"
    return eval_every > 0 and step > 0 and step % eval_every == 0 and not in_base_stage


def evaluation_config(parent_config: dict, *, source: str, benchmarks: list[str], name: str) -> dict:
    """The parent's validated RunConfig turned into an evaluate job of the checkpoint folder `source`:
    same datasets (the 'heldout' benchmark is their test split), template and evaluation settings; no
    base stage (the checkpoint is the model)."""
    evaluation = dict(parent_config.get("evaluation") or {})
    evaluation.update(benchmarks=list(benchmarks), interval=0, at_start=False)
    config = {key: value for key, value in parent_config.items() if key not in ("base", "model", "evaluation")}
    config.update(kind=EVALUATE, name=name, model={"source": source, "overrides": {}}, evaluation=evaluation,
                  total_steps=0)
    return validate_config(config)


def copy_checkpoint(path: Path, dest: Path) -> Path | None:
    """Hard-link (copy across file systems) the model files of checkpoint `path` into `dest`; the folder
    or None when the checkpoint is gone (rotated away, or never completed)."""
    candidates = (path, path.with_name(f".tmp-{path.name}"))
    for attempt in range(LINK_TRIES):
        source = next((c for c in candidates if (c / "config.json").is_file()), None)
        if source is None:
            return None
        try:
            _link_tree(source, dest)
            return dest
        except FileNotFoundError:  # renamed or deleted under us: look again
            shutil.rmtree(dest, ignore_errors=True)
            time.sleep(0.05 * (attempt + 1))
    return None


def _link_tree(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source):
        if not entry.is_file(follow_symlinks=False) or entry.name in TRAINER_STATE_FILES:
            continue
        target = dest / entry.name
        if target.exists():
            target.unlink()
        try:
            os.link(entry.path, target)
        except FileNotFoundError:  # the source went: the caller looks again
            raise
        except OSError:  # another file system, or hard links not allowed: a plain copy
            shutil.copy2(entry.path, target)


def schedule_evaluation(parent: Run, step: int, checkpoint_path: str) -> Run | None:
    """The evaluate child of `parent` at `step` (created, with its checkpoint copy, if it is not there yet);
    None when the parent does not ask for one at this step. Dispatched after the caller's commit."""
    if parent.kind not in TRAINING_KINDS or not parent.config or not wants_evaluation(parent.eval_every, step, checkpoint_path):
        return None
    existing = Run.objects.filter(parent=parent, parent_step=step, kind=EVALUATE).first()
    if existing is not None:
        return existing
    benchmarks = list(parent.eval_benchmarks or (parent.config.get("evaluation") or {}).get("benchmarks") or [])
    name = f"{parent.name} · eval @ step {step}"[:200]
    now = timezone.now()
    try:
        with transaction.atomic():  # a savepoint: a lost race leaves the caller's transaction usable
            child = Run.objects.create(
                team_id=parent.team_id, project_id=parent.project_id, name=name, kind=EVALUATE,
                config={}, queue=parent.queue, status=RunStatus.QUEUED, parent=parent, parent_step=step,
                created_by_id=parent.created_by_id, gpu_count=min(parent.gpu_count, 1), last_activity_at=now,
            )
            run_dir = Path(settings.RUNS_DIR) / f"run-{child.id}"
            source = Path(checkpoint_path)
            if not source.is_absolute() and parent.run_dir:
                source = Path(parent.run_dir) / source
            copied = copy_checkpoint(source, run_dir / INPUT_DIR)
            child.run_dir = str(run_dir)
            # the child reads its pinned copy; its config names the checkpoint, not a server path
            child.config = evaluation_config(parent.config, source=checkpoint_ref(parent.id, step),
                                             benchmarks=benchmarks, name=name)
            if copied is None:
                child.status, child.finished_at = RunStatus.FAILED, now
                child.message = f"checkpoint {checkpoint_ref(parent.id, step)} was gone before it could be copied for evaluation"
                logger.warning("run %s: %s", parent.id, child.message)
            child.save(update_fields=["run_dir", "config", "status", "finished_at", "message"])
    except IntegrityError:  # another ingester created it first
        return Run.objects.filter(parent=parent, parent_step=step, kind=EVALUATE).first()
    if child.status == RunStatus.QUEUED:
        transaction.on_commit(lambda: _dispatch(child.id))
        logger.info("run %s: evaluation of step %s queued as run %s", parent.id, step, child.id)
    return child


def _dispatch(run_id: int) -> None:
    from lab.services.dispatch import dispatch_run

    try:
        dispatch_run(run_id)
    except Exception:  # it stays queued; the workers' reconciler sends it again
        logger.exception("run %s: dispatch failed; it stays queued", run_id)
