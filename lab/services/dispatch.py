"""A run's way to a worker: send its id to a queue, claim it exactly once, give it back.

The database is the source of truth: a Celery message only says "look at run N"; whoever receives it
claims the run with a conditional update (queued → starting), so a duplicated, redelivered or resent
message for a run that is claimed, cancelled or finished does nothing. That is what lets the reaper and
the reconciler (workers/reaper.py) resend freely after a crash or a broker restart.

GPUs: a run needs Run.gpu_count GPUs (0 = a CPU run). Workers announce theirs (Worker.capabilities
"gpus", refreshed by every heartbeat); a worker's free GPUs are its GPUs less those of the active runs it
holds. The claim goes through only on a worker with enough free GPUs; otherwise the run stays queued and
its message says why ("no worker with 4 free GPUs; largest has 1"), kept current by the reconciler
(note_gpu_shortages) until a worker can take it.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from lab.models import Run, RunStatus, Worker
from lab.models.runs import ACTIVE_STATUSES

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


GPU_NOTES = ("no worker with ", "waiting for ")  # the messages note_gpu_shortages writes (and may clear)


def worker_gpu_total(capabilities: dict | None) -> int:
    gpus = (capabilities or {}).get("gpus") or 0
    return len(gpus) if isinstance(gpus, list) else int(gpus)


def free_gpus(worker_ids=None) -> dict[int, tuple[int, int]]:
    """{worker id: (GPUs, free GPUs)} for the given workers (default: the live ones)."""
    workers = Worker.objects.filter(id__in=worker_ids) if worker_ids is not None else Worker.alive()
    total = {w["id"]: (worker_gpu_total(w["capabilities"]), w["queues"]) for w in workers.values("id", "capabilities", "queues")}
    used: dict[int, int] = {}
    for worker_id, gpus in Run.objects.filter(worker_id__in=list(total), status__in=ACTIVE_STATUSES).values_list(
            "worker_id", "gpu_count"):
        used[worker_id] = used.get(worker_id, 0) + gpus
    return {wid: (gpus, max(0, gpus - used.get(wid, 0))) for wid, (gpus, _) in total.items()}


def gpu_shortage(need: int, queue: str) -> str:
    """Why no live worker of `queue` can take a run needing `need` GPUs now; "" when one can."""
    if need <= 0:
        return ""
    live = {w["id"]: w["queues"] for w in Worker.alive().values("id", "queues")}
    state = [v for wid, v in free_gpus(list(live)).items() if queue in (live[wid] or [])]
    largest = max((total for total, _ in state), default=0)
    s = "" if need == 1 else "s"
    if largest < need:
        return f"no worker with {need} free GPU{s}; largest has {largest}"
    if max((free for _, free in state), default=0) < need:
        return f"waiting for {need} free GPU{s}: the workers that have them are busy"
    return ""


def note_gpu_shortages(limit: int = 200) -> int:
    """Queued GPU runs: their message says why no worker takes them (or is cleared once one can)."""
    changed = 0
    notes: dict[tuple[int, str], str] = {}
    for run_id, need, queue, message in (Run.objects.filter(status=RunStatus.QUEUED, gpu_count__gt=0)
                                         .order_by("created_at").values_list("id", "gpu_count", "queue", "message")[:limit]):
        if (need, queue) not in notes:
            notes[(need, queue)] = gpu_shortage(need, queue)
        note = notes[(need, queue)]
        if note and message != note:
            changed += Run.objects.filter(id=run_id, status=RunStatus.QUEUED, message=message).update(message=note)
        elif not note and message.startswith(GPU_NOTES):
            changed += Run.objects.filter(id=run_id, status=RunStatus.QUEUED, message=message).update(message="")
    return changed


def claim_run(run_id: int, worker: Worker) -> Run | None:
    """Queued → starting for `worker`, exactly once across all workers; None if someone else got it
    (or it was cancelled, or it is not queued any more), or if the worker lacks the free GPUs the run
    needs (the run stays queued; its message says why)."""
    now = timezone.now()
    need = Run.objects.filter(id=run_id, status=RunStatus.QUEUED).values_list("gpu_count", flat=True).first()
    if need is None:
        return None
    with transaction.atomic():
        if need > 0:
            # one claim at a time on this worker (a row lock on PostgreSQL): its free GPUs cannot be counted twice
            list(Worker.objects.select_for_update().filter(id=worker.id).values_list("id"))
            free = free_gpus([worker.id]).get(worker.id, (0, 0))[1]
            if free < need:
                note = gpu_shortage(need, Run.objects.filter(id=run_id).values_list("queue", flat=True).first() or "")
                if note:  # else a live worker has them free: the reconciler sends the run again for it
                    Run.objects.filter(id=run_id, status=RunStatus.QUEUED).update(message=note)
                logger.info("run %s: not claimed by %s: needs %s GPUs, %s free", run_id, worker.name, need, free)
                return None
        claimed = Run.objects.filter(id=run_id, status=RunStatus.QUEUED, gpu_count=need).update(
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
