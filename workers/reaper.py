"""Repair after faults, from the database alone; every worker runs it (workers/node.py), any number at once.

- reap: an active run whose heartbeat is older than WORKER_STALE_S lost its supervisor (worker killed,
  node gone, network cut). It goes back to the queue — the next attempt resumes from the last complete
  checkpoint — until max_attempts is spent, then it fails. A stale `cancelling` run becomes cancelled.
- resend: a queued run whose message was lost (broker restarted without persistence, a worker killed
  between receiving and claiming) is sent again. A worker that has had a free slot for WORKER_RECONCILE_S
  would have taken any message waiting in its queue, so a run queued there for that long has none.
  Duplicates are harmless: the claim (lab.services.dispatch.claim_run) lets only one through. A run
  needing more GPUs than any live worker has free is not resent (nobody could claim it); its message
  says why (note_unplaceable_runs), and it goes out again once a worker with enough GPUs is free.

Each repair is a conditional update on the state it saw, so two reapers never act twice on one run.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from lab.models import Run, RunStatus, Worker
from lab.services.chains import settle_stage_runs
from lab.services.dispatch import dispatch_run, free_gpus, note_gpu_shortages, requeue_run

logger = logging.getLogger(__name__)

RESEND_PER_PASS = 100


def reap_stale_runs(stale_s: float) -> list[tuple[int, str]]:
    """Requeue (or fail) active runs without a heartbeat for `stale_s`; returns (run id, new status)."""
    now = timezone.now()
    stale = Q(heartbeat_at__lt=now - timedelta(seconds=stale_s)) | Q(heartbeat_at__isnull=True)
    done = []
    # a chain's stage runs have no supervisor of their own: their chain run's supervisor keeps them (chain_stage)
    active = Run.objects.filter(stale, chain_stage="")
    for run in active.filter(status__in=(RunStatus.STARTING, RunStatus.RUNNING)).values("id", "attempt"):
        status = requeue_run(run["id"], run["attempt"], reason=f"no heartbeat for {stale_s:.0f}s")
        if status:
            logger.warning("run %s attempt %s: heartbeat stale; %s", run["id"], run["attempt"], status)
            done.append((run["id"], status))
            if status == RunStatus.FAILED:
                settle_stage_runs(run["id"], RunStatus.FAILED, "its chain run failed: no heartbeat")
    for run_id in active.filter(status=RunStatus.CANCELLING).values_list("id", flat=True):
        if Run.objects.filter(stale, id=run_id, status=RunStatus.CANCELLING).update(
            status=RunStatus.CANCELLED, finished_at=now, message="cancelled; its worker had stopped"
        ):
            Worker.objects.filter(current_run_id=run_id).update(current_run=None, idle_since=now)
            settle_stage_runs(run_id, RunStatus.CANCELLED)
            done.append((run_id, RunStatus.CANCELLED.value))
    return done


def requeue_orphans(worker: Worker) -> list[tuple[int, str]]:
    """At worker start: runs still held by an earlier life of this worker have no supervisor."""
    done = []
    for run in Run.objects.filter(worker=worker, status__in=(RunStatus.STARTING, RunStatus.RUNNING)).values(
        "id", "attempt"
    ):
        status = requeue_run(run["id"], run["attempt"], reason=f"worker {worker.name} restarted")
        if status:
            done.append((run["id"], status))
    now = timezone.now()
    for run_id in Run.objects.filter(worker=worker, status=RunStatus.CANCELLING).values_list("id", flat=True):
        if Run.objects.filter(id=run_id, status=RunStatus.CANCELLING).update(
            status=RunStatus.CANCELLED, finished_at=now, message=f"cancelled; worker {worker.name} restarted"
        ):
            done.append((run_id, RunStatus.CANCELLED.value))
    return done


def resend_lost_runs(worker_id: int, reconcile_s: float) -> list[int]:
    """If this worker has been idle for `reconcile_s`, resend its queues' runs queued (and not sent) as long."""
    worker = Worker.objects.filter(id=worker_id).values("queues", "current_run_id", "idle_since").first()
    if worker is None or worker["current_run_id"] is not None or worker["idle_since"] is None:
        return []
    cutoff = timezone.now() - timedelta(seconds=reconcile_s)
    if worker["idle_since"] > cutoff:
        return []
    most_free = max((free for _, free in free_gpus().values()), default=0)
    candidates = (
        Run.objects.filter(status=RunStatus.QUEUED, queue__in=worker["queues"], gpu_count__lte=most_free)
        .filter(Q(dispatched_at__lt=cutoff) | Q(dispatched_at__isnull=True))
        .order_by("created_at")
        .values_list("id", "dispatched_at")[:RESEND_PER_PASS]
    )
    sent = []
    for run_id, dispatched_at in candidates:
        # one resender per run: only the worker that moves dispatched_at on sends
        if Run.objects.filter(id=run_id, status=RunStatus.QUEUED, dispatched_at=dispatched_at).update(
            dispatched_at=timezone.now()
        ):
            dispatch_run(run_id)
            sent.append(run_id)
    if sent:
        logger.warning("resent %d queued run(s) whose messages were lost: %s", len(sent), sent)
    return sent


def note_unplaceable_runs() -> int:
    """Queued GPU runs that no live worker can take now say why in their message (lab.services.dispatch)."""
    return note_gpu_shortages()
