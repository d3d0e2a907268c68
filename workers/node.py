"""This worker node in the lab: what it can run, that it is alive, and the repairs it does while idle.

Celery's worker signals register the Worker row (queues and capabilities: cores, memory, GPUs from
nvidia-smi) and start one heartbeat thread. Every WORKER_HEARTBEAT_S the thread stamps the row and runs
the reaper and the reconciler (workers/reaper.py) — no celery beat needed, any number of workers.
"""
from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import threading

from celery import signals
from django.db import Error as DatabaseError
from django.db import connection
from django.utils import timezone

from lab.models import Worker
from workers.config import WorkerConfig
from workers.reaper import reap_stale_runs, requeue_orphans, resend_lost_runs

logger = logging.getLogger(__name__)


def gpu_inventory() -> list[dict]:
    """The node's GPUs as nvidia-smi lists them (name, memory in GiB); none without nvidia-smi."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        out = subprocess.run(
            [binary, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        logger.warning("nvidia-smi failed (%s); announcing no GPUs", exc)
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    wanted = None if visible is None else {v.strip() for v in visible.split(",") if v.strip()}
    gpus = []
    for line in out.strip().splitlines():
        index, name, memory = (part.strip() for part in line.split(",", 2))
        if wanted is None or index in wanted:
            gpus.append({"index": int(index), "name": name, "memory_gb": round(float(memory) / 1024, 1)})
    return gpus


def capabilities() -> dict:
    memory_kb = 0
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    memory_kb = int(line.split()[1])
    except OSError:
        pass
    gpus = gpu_inventory()
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "gpus": len(gpus),
        "gpu_models": sorted({g["name"] for g in gpus}),
        "gpu_memory_gb": sum(g["memory_gb"] for g in gpus),
        "host": platform.node(),
        "pid": os.getpid(),
        "python": platform.python_version(),
    }


def register_worker(name: str, queues: list[str]) -> Worker:
    """Create or refresh this worker's row; runs left active by its previous life go back to the queue."""
    worker, _ = Worker.objects.update_or_create(
        name=name, defaults={"queues": sorted(queues), "capabilities": capabilities(), "heartbeat_at": timezone.now()}
    )
    for run_id, status in requeue_orphans(worker):
        logger.warning("run %s was held by an earlier life of %s: now %s", run_id, name, status)
    Worker.objects.filter(id=worker.id).update(current_run=None, idle_since=timezone.now())
    worker.refresh_from_db()
    return worker


class NodeHeartbeat(threading.Thread):
    """Stamps the worker's heartbeat and runs the reaper and the reconciler, until stopped."""

    def __init__(self, worker_id: int, cfg: WorkerConfig):
        super().__init__(name="r1lab-node-heartbeat", daemon=True)
        self.worker_id, self.cfg = worker_id, cfg
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.cfg.heartbeat_s):
            self.beat()
        connection.close()

    def beat(self) -> None:
        try:
            Worker.objects.filter(id=self.worker_id).update(heartbeat_at=timezone.now())
            reap_stale_runs(self.cfg.stale_s)
            resend_lost_runs(self.worker_id, self.cfg.reconcile_s)
        except DatabaseError as exc:
            logger.warning("worker heartbeat: database unavailable (%s)", exc)
            connection.close()
        except Exception:  # the heartbeat must outlive any one bad pass
            logger.exception("worker heartbeat pass failed")


_node: dict = {}


@signals.worker_ready.connect
def _on_worker_ready(sender, **_) -> None:
    consumer = sender
    queues = list(consumer.app.amqp.queues.consume_from or {})
    if not queues:
        queues = [q.name for q in consumer.task_consumer.queues]
    worker = register_worker(consumer.hostname, queues)
    thread = NodeHeartbeat(worker.id, WorkerConfig.from_env())
    thread.start()
    _node.update(worker_id=worker.id, thread=thread)
    logger.info("worker %s ready: queues %s, capabilities %s", worker.name, worker.queues, worker.capabilities)


@signals.worker_shutdown.connect
def _on_worker_shutdown(sender, **_) -> None:
    thread = _node.get("thread")
    if thread is not None:
        thread.stopped.set()
        thread.join(timeout=10)
    if "worker_id" in _node:
        try:
            Worker.objects.filter(id=_node["worker_id"]).update(heartbeat_at=None, current_run=None)
        except DatabaseError:
            pass
        connection.close()
