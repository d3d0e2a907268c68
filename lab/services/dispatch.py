"""A run's way to a worker: send its id to a queue, claim it exactly once, give it back.

The database is the source of truth: a Celery message only says "look at run N"; whoever receives it
claims the run with a conditional update (queued → starting), so a duplicated, redelivered or resent
message for a run that is claimed, cancelled or finished does nothing. That is what lets the reaper and
the reconciler (workers/reaper.py) resend freely after a crash or a broker restart.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from lab.models import Run, RunStatus, Worker

logger = logging.getLogger(__name__)

RUN_JOB_TASK = "workers.tasks.run_job"
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def dispatch_run(run_id: int) -> bool:
    """Send run `run_id` to its queue if it is queued; True when the broker took the message.

    Never raises for a broker outage: the run stays queued and the reconciler sends it again.
    """
    queue = Run.objects.filter(id=run_id, status=RunStatus.QUEUED).values_list("queue", flat=True).first()
    if queue is None:
        return False
    Run.objects.filter(id=run_id).update(dispatched_at=timezone.now())
    from workers.celery_app import app  # the web process imports Celery only when it dispatches

    try:
        app.send_task(RUN_JOB_TASK, args=[run_id], queue=queue, retry=True, retry_policy=PUBLISH_RETRY)
    except Exception as exc:  # kombu raises many kinds for an unreachable broker
        logger.warning("run %s: broker did not take the message (%s); the reconciler will resend it", run_id, exc)
        return False
    return True


def claim_run(run_id: int, worker: Worker) -> Run | None:
    """Queued → starting for `worker`, exactly once across all workers; None if someone else got it
    (or it was cancelled, or it is not queued any more)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = Run.objects.filter(id=run_id, status=RunStatus.QUEUED).update(
            status=RunStatus.STARTING, worker=worker, attempt=F("attempt") + 1, heartbeat_at=now, message="",
            resumed_from_step=None,
        )
        if claimed != 1:
            return None
        Worker.objects.filter(id=worker.id).update(current_run_id=run_id, idle_since=None)
    return Run.objects.get(id=run_id)


def requeue_run(run_id: int, attempt: int, *, reason: str, statuses=(RunStatus.STARTING, RunStatus.RUNNING)) -> str:
    """Give an active run back: queued again while attempts remain, else failed. Returns the new status,
    or "" if the run moved on meanwhile (another attempt, a cancel, a finish): only attempt `attempt`
    in one of `statuses` is touched, so two reapers cannot both act on it."""
    run = Run.objects.filter(id=run_id).values("max_attempts").first()
    if run is None:
        return ""
    now = timezone.now()
    if attempt < run["max_attempts"]:
        changed = Run.objects.filter(id=run_id, attempt=attempt, status__in=statuses).update(
            status=RunStatus.QUEUED, worker=None, heartbeat_at=None, message=f"attempt {attempt}: {reason}; requeued",
            retry_reason=reason[:300],
        )
        if changed:
            Worker.objects.filter(current_run_id=run_id).update(current_run=None, idle_since=now)
            dispatch_run(run_id)
            return RunStatus.QUEUED.value
        return ""
    changed = Run.objects.filter(id=run_id, attempt=attempt, status__in=statuses).update(
        status=RunStatus.FAILED,
        finished_at=now,
        message=f"attempt {attempt} of {run['max_attempts']}: {reason}; no attempts left",
    )
    if changed:
        Worker.objects.filter(current_run_id=run_id).update(current_run=None, idle_since=now)
        return RunStatus.FAILED.value
    return ""
