"""Celery tasks. Each takes an id, loads the state from the database, and is safe to receive twice."""
from __future__ import annotations

import logging

from celery.worker import state as worker_state

from lab.models import Run, Worker
from lab.services.dispatch import claim_run
from workers import node  # noqa: F401  (connects the worker signals: registration, heartbeat, reaper)
from workers.celery_app import app
from workers.config import WorkerConfig
from workers.supervisor import Supervisor

logger = logging.getLogger(__name__)


def _shutting_down() -> bool:
    """True once the worker got SIGTERM/SIGINT (warm) or SIGQUIT (cold)."""
    return worker_state.should_stop is not None or worker_state.should_terminate is not None


@app.task(name="workers.tasks.run_job", bind=True, acks_late=True, ignore_result=True)
def run_job(self, run_id: int) -> str:
    """Claim run `run_id` and supervise one attempt of it to its end; a no-op unless the run is queued."""
    hostname = self.request.hostname or "local@" + __name__
    worker = Worker.objects.filter(name=hostname).first() or node.register_worker(hostname, ["cpu", "gpu"])
    run = claim_run(run_id, worker)
    if run is None:
        status = Run.objects.filter(id=run_id).values_list("status", flat=True).first()
        logger.info("run %s: not claimed (status %s): duplicate or stale message ignored", run_id, status)
        return "skipped"
    logger.info("run %s: claimed by %s, attempt %s", run_id, worker.name, run.attempt)
    return Supervisor(run, worker, WorkerConfig.from_env(), should_drain=_shutting_down).run()
